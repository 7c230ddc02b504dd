#!/usr/bin/env bash
# Headless unit checks of the Neovim plugin (no server needed). NVIM=/path/to/nvim picks a binary.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"${NVIM:-nvim}" --headless -u NONE -i NONE --cmd "set rtp+=$here" -c "luafile $here/tests/unit.lua"
