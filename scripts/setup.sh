#!/usr/bin/env bash
# Create ./.venv (if needed) and install scoretutor with its dev extra into it.
# torch is installed first and pinned (TORCH_SPEC, default torch==2.13.0): a bare `torch`
# requirement on an empty environment would pull a multi-GB CUDA build. An existing torch is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtual environment in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install --quiet --upgrade pip
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "[setup] installing $TORCH_SPEC"
  "$PY" -m pip install --quiet "$TORCH_SPEC"
fi
# EXTRAS: dev (tests), browser (Playwright for tests/browser), explore (Voilà for the explorer page),
# lecture (scoretutor export: nbclient/nbconvert)
EXTRAS=${EXTRAS:-dev,browser,explore,lecture}
echo "[setup] installing scoretutor[$EXTRAS] (editable)"
"$PY" -m pip install --quiet -e ".[$EXTRAS]"
"$PY" -c "import torch, scoretutor; print(f'[setup] scoretutor {scoretutor.__version__}, torch {torch.__version__}, device {scoretutor.get_device()}')"
