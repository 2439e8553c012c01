#!/usr/bin/env bash
# Install (scripts/setup.sh), then run the unit tests and every notebook (nbmake) in fast mode.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k densities`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source "${VENV:-.venv}/bin/activate"
export SCORETUTOR_FAST=${SCORETUTOR_FAST:-1}
export MPLBACKEND=Agg
echo "[test] ruff"
ruff check .
echo "[test] pytest: unit tests + notebooks (SCORETUTOR_FAST=$SCORETUTOR_FAST)"
exec python -m pytest tests notebooks --nbmake --nbmake-timeout=900 --durations=15 "$@"
