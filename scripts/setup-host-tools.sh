#!/usr/bin/env bash
# Host programs the worker runs itself: lz4 (to load `.tar.lz4` image artifacts) and zstd
# (`.tar.zst` ones: faster than Node's zlib, which is the fallback; the benchmarks' raw
# pipeline uses it too). gzip is done in-process. Installed from Debian's packages when missing.
set -euo pipefail
source "$(dirname "$0")/lib/apt.sh"
missing=()
command -v lz4 >/dev/null 2>&1 || missing+=(lz4)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host-tools: missing ${missing[*]}; as root run: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "setup-host-tools: installing ${missing[*]}" >&2
apt_install "${missing[@]}"
