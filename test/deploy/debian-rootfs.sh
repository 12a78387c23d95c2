#!/usr/bin/env bash
# Prints the name of a Docker image holding a fresh, minimal Debian root file system
# (`debootstrap --variant=minbase`, from Debian's packages), the machine the provisioning test
# installs the worker on. Made once, then kept: the root file system's tarball is cached under
# /var/cache/docker-worker/debootstrap/ and the image tagged, both keyed by this script's hash,
# so a rerun costs a `docker image inspect` (the first run on a fresh machine a few minutes).
#
# DEBIAN_SUITE (default trixie, the packer template's base) and DEBIAN_MIRROR pick the release.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
suite="${DEBIAN_SUITE:-trixie}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
key="$( (cat "$0"; echo "$suite $mirror") | sha256sum | cut -c1-12)"
image="docker-worker-deploy-test/debian-$suite:$key"
if docker image inspect "$image" >/dev/null 2>&1; then echo "$image"; exit 0; fi

cache=/var/cache/docker-worker/debootstrap
tarball="$cache/debian-$suite-$key.tar.gz"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [ ! -s "$tarball" ]; then
  if ! command -v debootstrap >/dev/null 2>&1; then
    # shellcheck source=scripts/lib/apt.sh
    . "$root/scripts/lib/apt.sh"
    apt_install debootstrap
  fi
  dir="$(mktemp -d "$cache/rootfs.XXXXXX")"
  trap 'rm -rf "$dir"' EXIT
  echo "debian-rootfs: debootstrap --variant=minbase $suite from $mirror (a few minutes, once)" >&2
  debootstrap --variant=minbase "$suite" "$dir" "$mirror" >&2
  tar --numeric-owner -C "$dir" -czf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
fi
docker import --change 'CMD ["/bin/bash"]' --change 'LABEL org.taskcluster.docker-worker.test=deploy' \
  "$tarball" "$image" >/dev/null
# What an earlier version of this script made is not used again.
docker image ls --filter label=org.taskcluster.docker-worker.test=deploy --format '{{.Repository}}:{{.Tag}}' |
  grep "^docker-worker-deploy-test/debian-$suite:" | grep -v ":$key\$" | xargs -r docker rmi >/dev/null 2>&1 || true
find "$cache" -maxdepth 1 -name "debian-$suite-*.tar.gz" ! -name "debian-$suite-$key.tar.gz" -delete
echo "$image"
