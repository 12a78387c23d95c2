#!/usr/bin/env bash
# Builds native/malloc-trim.node (see native/malloc-trim.c) with the C compiler and the
# Node-API headers of node_modules/node-api-headers: `make deps` runs it. Usage:
#   scripts/build-native.sh [OUTPUT]   (default native/build/malloc-trim.node)
# The worker runs without it (it then keeps freed heap pages resident after work); on a glibc
# system with root and no C compiler, gcc is installed from Debian's packages.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/native/build/malloc-trim.node}"
headers="$root/node_modules/node-api-headers/include"
[ -f "$headers/node_api.h" ] || { echo "build-native: $headers/node_api.h is missing: run npm ci first" >&2; exit 1; }
if ! ldd --version 2>&1 | grep -qiE 'glibc|gnu libc'; then
  echo "build-native: not a glibc system; malloc-trim is glibc's, skipped" >&2
  exit 0
fi
if ! command -v cc >/dev/null 2>&1; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "build-native: no C compiler; as root run: apt-get install -y gcc libc6-dev (the worker runs without native/malloc-trim.node)" >&2
    exit 0
  fi
  # shellcheck source=scripts/lib/apt.sh
  source "$root/scripts/lib/apt.sh"
  echo "build-native: installing gcc" >&2
  apt_install gcc libc6-dev
fi
mkdir -p "$(dirname "$out")"
cc -O2 -shared -fPIC -Wall -Werror -I "$headers" -o "$out.tmp" "$root/native/malloc-trim.c"
mv "$out.tmp" "$out"
