#!/usr/bin/env bash
# Host programs the worker runs itself: lz4 (to load `.tar.lz4` image artifacts; zstd and
# gzip are done in-process by Node's zlib) and apparmor_parser (allowPtrace's per-task AppArmor
# profile; its tests check the profile with `apparmor_parser -Q` even where the kernel has no
# AppArmor), and chromium (the interactive shell page's browser test, driven by playwright-core;
# never a browser download); ip from iproute2 (the fault suite's private Docker engine gets a
# bridge of its own: test/support/private-engine.ts). Installed from Debian's packages when missing.
set -euo pipefail
# shellcheck source=scripts/lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
missing=()
command -v lz4 >/dev/null 2>&1 || missing+=(lz4)
command -v zstd >/dev/null 2>&1 || missing+=(zstd)   # used by the benchmarks' raw pipeline
command -v apparmor_parser >/dev/null 2>&1 || [ -x /usr/sbin/apparmor_parser ] || [ -x /sbin/apparmor_parser ] || missing+=(apparmor)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)   # test/worker/interactive-page.test.ts
command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || missing+=(iproute2)   # test/faults/engine-faults.test.ts
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-host-tools: missing ${missing[*]}; as root run: apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "setup-host-tools: installing ${missing[*]}" >&2
apt_install "${missing[@]}"
