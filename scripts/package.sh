#!/usr/bin/env bash
# `make package`: the release tarball dist/docker-worker-<version>-linux-<arch>.tar.gz, which
# runs on a machine with nothing but a Linux kernel and a Docker engine. It unpacks into
# docker-worker-<version>/ holding the worker (bin/, lib/, schemas/, examples/), deploy/ (the
# provisioning: deploy/provision.sh --package <this tarball>, with scripts/lib/apt.sh), its
# production node_modules (npm ci --omit=dev), build-info.json (version, commit, Node.js) and
# a pinned Node.js 24 under node/ (the npm registry's node-linux-<arch> package, the source
# scripts/node-env.sh uses), which bin/worker runs when it is there.
#
# PACKAGE_ARCH=x64|arm64 (default: this machine's) picks the Node.js binary; the rest of the
# package is the same on both but for native/build/malloc-trim.node (glibc's malloc_trim for the
# idle worker, see native/malloc-trim.c), which is built for this machine's architecture only: a
# package for the other one runs without it. No npm package's native module is built (--ignore-scripts).
# Prints the tarball's path on stdout.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

# The Node.js release the package carries. Change it here, on purpose, with a test run.
NODE_VERSION=24.21.0

case "${PACKAGE_ARCH:-$(uname -m)}" in
  x86_64|amd64|x64) arch=x64 ;;
  aarch64|arm64) arch=arm64 ;;
  *) echo "package: no Node.js package for ${PACKAGE_ARCH:-$(uname -m)}; set PACKAGE_ARCH=x64 or arm64" >&2; exit 1 ;;
esac
version="$(node -p 'require("./package.json").version')"
commit="$(git rev-parse HEAD 2>/dev/null)" || { echo "package: make package packs the files git tracks: run it in a git checkout of docker-worker" >&2; exit 1; }
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then commit="$commit-dirty"; fi
name="docker-worker-$version"
dist="$root/dist"
tarball="$dist/$name-linux-$arch.tar.gz"
work="$(mktemp -d "$dist.XXXXXX")"
trap 'rm -rf "$work"' EXIT
stage="$work/$name"
mkdir -p "$stage" "$dist"

# The worker's own files: what git tracks (or would: new files not ignored), working-tree copies.
git ls-files -z --cached --others --exclude-standard -- bin lib schemas examples deploy \
    scripts/lib/apt.sh package.json package-lock.json README.md ARCHITECTURE.md |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar --null -T - -cf - | tar -xf - -C "$stage"

# Production dependencies exactly as package-lock.json pins them.
(cd "$stage" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >&2)

# Node.js: the npm registry's platform package (npm checks its integrity against the registry).
node_cache="$dist/.cache"
node_pkg="$node_cache/node-linux-$arch-$NODE_VERSION.tgz"
if [ ! -s "$node_pkg" ]; then
  mkdir -p "$node_cache"
  packed="$(cd "$node_cache" && npm pack --silent "node-linux-$arch@$NODE_VERSION")"
  [ "$node_cache/$packed" = "$node_pkg" ] || mv "$node_cache/$packed" "$node_pkg"
fi
mkdir -p "$work/node" "$stage/node/bin"
tar -xzf "$node_pkg" -C "$work/node"
install -m 0755 "$work/node/package/bin/node" "$stage/node/bin/node"
for f in LICENSE README.md; do [ -f "$work/node/package/$f" ] && cp "$work/node/package/$f" "$stage/node/$f"; done
if [ "$arch" = "$(case "$(uname -m)" in x86_64) echo x64 ;; aarch64) echo arm64 ;; esac)" ]; then
  got="$("$stage/node/bin/node" --version)"
  [ "$got" = "v$NODE_VERSION" ] || { echo "package: the bundled node says $got, expected v$NODE_VERSION" >&2; exit 1; }
fi

host_arch="$(case "$(uname -m)" in x86_64) echo x64 ;; aarch64) echo arm64 ;; esac)"
if [ "$arch" = "$host_arch" ]; then
  "$root/scripts/build-native.sh" "$stage/native/build/malloc-trim.node"
else
  echo "package: native/build/malloc-trim.node is built for $host_arch only; the $arch package runs without it" >&2
fi

printf '{\n  "version": "%s",\n  "commit": "%s",\n  "node": "%s",\n  "arch": "%s"\n}\n' \
  "$version" "$commit" "$NODE_VERSION" "$arch" > "$stage/build-info.json"

# Owned by root, files in name order, dated at the commit: the same tree gives the same listing.
mtime="@$(git log -1 --format=%ct)"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" -C "$work" -czf "$tarball.tmp" "$name"
mv "$tarball.tmp" "$tarball"
echo "package: $tarball ($(du -h "$tarball" | cut -f1))" >&2
echo "$tarball"
