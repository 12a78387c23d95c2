#!/usr/bin/env bash
# Builds the local test images with no network (make images):
#
#   taskenv_pass:latest   static busybox rootfs; `taskhost-who a b` prints "a b" and exits 0
#   taskenv_fail:latest   same base; `taskhost-who` prints its arguments to stderr and exits 1
#   taskenv_sidecar:latest   same base; a stand-in for a sidecar (balrogVPNProxy): run as
#                         `httpd -f -p 80 -h /www -c /etc/httpd.conf` it answers 401 without credentials
#
# Each image is a busybox-static rootfs (every applet linked at its usual path, /bin/sh
# included) plus the files under <image>/rootfs/, imported with `docker import`. The hash of
# the build inputs is stored in the image label below; an image whose label matches is not
# rebuilt. Set FORCE=1 to rebuild anyway. Safe to re-run.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
images=(taskenv_pass taskenv_fail taskenv_sidecar)
tag=latest
label=org.taskcluster.docker-worker.test-image-inputs

say() { echo "build-test-images: $*" >&2; }
fail() { say "$*"; exit 1; }

# shellcheck source=scripts/lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

docker info >/dev/null 2>&1 || fail "no Docker engine answers; run 'make docker' first"

if [ "$(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null)" != "install ok installed" ]; then
  [ "$(id -u)" -eq 0 ] || fail "Debian's busybox-static package is needed; as root run: apt-get install -y busybox-static"
  say "installing Debian's busybox-static package"
  apt_install busybox-static
fi
busybox="$(dpkg -L busybox-static | grep -E '/bin/busybox$' | head -1)"
[ -x "$busybox" ] || fail "busybox-static is installed but its binary was not found (dpkg -L busybox-static)"

# Hash of everything that goes into an image: this script, the busybox binary and the overlay.
inputs_hash() {
  local overlay="$root/$1/rootfs"
  {
    sha256sum "$0" "$busybox" | cut -d' ' -f1
    (cd "$overlay" && find . \( -type f -o -type l \) -print0 | sort -z |
      xargs -0 -r stat -c '%n %a' && find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
  } | sha256sum | cut -d' ' -f1
}

build_rootfs() {
  local dir="$1" overlay="$2" applet
  mkdir -p "$dir"/{bin,sbin,usr/bin,usr/sbin,etc,root,home,tmp,var/tmp,proc,sys,dev}
  chmod 1777 "$dir/tmp" "$dir/var/tmp"
  chmod 700 "$dir/root"
  cp "$busybox" "$dir/bin/busybox"
  while read -r applet; do
    [ "$applet" = bin/busybox ] || ln -sf /bin/busybox "$dir/$applet"
  done < <("$busybox" --list-full)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir/etc/group"
  cp -a "$overlay/." "$dir/"
}

for image in "${images[@]}"; do
  ref="$image:$tag"
  [ -d "$root/$image/rootfs" ] || fail "missing build inputs: $root/$image/rootfs"
  want="$(inputs_hash "$image")"
  have="$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$ref" 2>/dev/null || true)"
  if [ "$have" = "$want" ] && [ "${FORCE:-0}" != 1 ]; then
    continue
  fi
  old_id="$(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || true)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  build_rootfs "$work/rootfs" "$root/$image/rootfs"
  tar -C "$work/rootfs" --numeric-owner --owner=0 --group=0 -cf - . |
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/sh"]' \
      --change "LABEL $label=$want" \
      - "$ref" >/dev/null
  rm -rf "$work"
  trap - EXIT
  # The previous build is now untagged; drop it unless something still uses it.
  if [ -n "$old_id" ]; then docker rmi "$old_id" >/dev/null 2>&1 || true; fi
  say "built $ref"
done
