#!/usr/bin/env bash
# Install (scripts/setup.sh), then open JupyterLab on notebooks/ (full mode unless SCORETUTOR_FAST=1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source "${VENV:-.venv}/bin/activate"
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)
exec jupyter lab --notebook-dir=notebooks "${extra[@]}" "$@"
