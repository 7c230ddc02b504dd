#!/usr/bin/env bash
# Install code-server (VS Code in a browser) for the extension's end-to-end test, into
# .tools/code-server at the repository root (ignored by git; outside the extension's folder, which
# vsce packages). code-server 4.139.1 needs Node 24, which the npm
# package node@24 provides; its native modules need Debian's libkrb5-dev. Prints where it is.
#   vscode-extension/e2e/install-code-server.sh     (about 10-15 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .tools/code-server
cd .tools/code-server
if [[ -x node_modules/.bin/code-server ]] && node_modules/.bin/node node_modules/.bin/code-server --version >/dev/null 2>&1; then
  echo "code-server already installed: $PWD/node_modules/.bin/code-server"
  exit 0
fi
[[ -f package.json ]] || echo '{"name": "sleepy-coder-e2e-tools", "private": true}' > package.json
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
npm install --loglevel=error node@24
# code-server's install scripts build native modules for the node that runs them.
PATH="$PWD/node_modules/.bin:$PATH" npm install --loglevel=error code-server@4.139.1
PATH="$PWD/node_modules/.bin:$PATH" code-server --version
echo "code-server installed: $PWD/node_modules/.bin/code-server"
