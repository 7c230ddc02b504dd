#!/usr/bin/env bash
# The extension's CI: clean install from the lockfile, type-check/compile, lint, unit tests
# (plain Node, no VS Code), and the .vsix package. Called by the repository's .ci/run.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm run compile
npm run lint
npm test
npm run package
ls -l sleepy-coder.vsix
