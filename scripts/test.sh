#!/usr/bin/env bash
# The test command: set up (with dev tools), lint and type-check, build and test the VS Code
# extension, then run the whole pytest suite (real cargo, real SQLite, real server over stdio,
# a tiny model built in the tests, and the embedded model for the few integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
# shellcheck disable=SC1091
. .venv/bin/activate
ruff check .
ruff format --check .
mypy
if [[ -f vscode-extension/ci.sh ]]; then bash vscode-extension/ci.sh; fi
if command -v nvim >/dev/null 2>&1 && [[ -f neovim/tests/run.sh ]]; then bash neovim/tests/run.sh; fi
# -rs prints why each skipped test was skipped (a missing tool is never a silent pass).
python -m pytest -q -rs -p no:cacheprovider --durations=15 "$@"
