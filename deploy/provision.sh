#!/usr/bin/env bash
# Makes a Debian machine a docker-worker host. Run as root; safe to run again. The packer
# template (packer/docker-worker.pkr.hcl), the Vagrant VM (Vagrantfile) and the provisioning
# test (test/deploy/provision.test.ts) all run this script.
#
#   deploy/provision.sh [--package TARBALL] [--host local|aws|worker-runner]
#                       [--start-worker FILE] [--no-kernel-modules]
#
# Always: Debian's Docker engine (docker.io) configured by deploy/docker/daemon.json, AppArmor
# (apparmor_parser, and apparmor=1 on the kernel command line), LVM, lz4, the sysctls and the
# loopback modules' configuration (deploy/system/), and, unless --no-kernel-modules, Debian's
# standard kernel with its headers and v4l2loopback-dkms (the cloud kernel has no sound
# modules, so snd-aloop needs the standard one; a container has no kernel of its own).
#
# With --package (the tarball `make package` builds): the worker, unpacked into
# /opt/docker-worker-<version> with /opt/docker-worker linking to it; its units, enabled:
# docker-worker-keys.service (the keys are made at first boot, never here) and, by --host,
#   local          docker-worker.service, /etc/docker-worker/worker.yml from deploy/config/local.yml
#   aws            the same with aws.yml and DOCKER_WORKER_OPTS="--host aws" (/etc/default/docker-worker),
#                  plus docker-worker-instance-storage.service
#   worker-runner  docker-worker-runner.service running Taskcluster's start-worker (--start-worker
#                  FILE installs it as /usr/local/bin/start-worker) with
#                  /etc/docker-worker/start-worker.yml from worker-runner.yml, plus instance storage
# An existing /etc/docker-worker/worker.yml or start-worker.yml is kept.
set -euo pipefail
deploy="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
# shellcheck source=scripts/lib/apt.sh
. "$deploy/../scripts/lib/apt.sh"

say() { echo "provision: $*" >&2; }
die() { say "$*"; exit 1; }

package=""
host=local
start_worker=""
kernel_modules=1
while [ $# -gt 0 ]; do
  case "$1" in
    --package) package="${2:?--package needs a file}"; shift 2 ;;
    --host) host="${2:?--host needs local, aws or worker-runner}"; shift 2 ;;
    --start-worker) start_worker="${2:?--start-worker needs a file}"; shift 2 ;;
    --no-kernel-modules) kernel_modules=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see $0 --help)" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "run as root: sudo $0 $*"
case "$host" in local|aws|worker-runner) ;; *) die "--host is local, aws or worker-runner, not $host" ;; esac
if [ -n "$package" ]; then
  [ -s "$package" ] || die "no package at $package (make package builds it)"
  if [ "$host" = worker-runner ] && [ -z "$start_worker" ] && [ ! -x /usr/local/bin/start-worker ]; then
    die "--host worker-runner needs Taskcluster's start-worker binary: give it with --start-worker FILE (from the Taskcluster release your deployment runs)"
  fi
fi
[ -z "$start_worker" ] || [ -x "$start_worker" ] || die "--start-worker $start_worker is not an executable file"
# systemd runs (a booted machine, not an image being built in a container): apply at once too.
booted=0
[ -d /run/systemd/system ] && booted=1

# 1. Packages, all from Debian.
arch="$(dpkg --print-architecture)"
packages=(ca-certificates docker.io lvm2 e2fsprogs util-linux apparmor lz4 kmod procps systemd)
if [ "$kernel_modules" = 1 ]; then
  packages+=("linux-image-$arch" "linux-headers-$arch" v4l2loopback-dkms)
  # Headers of the running kernel too, so that the modules load before the next boot (not for
  # a cloud kernel: it goes below).
  case "$(uname -r)" in
    *cloud*) ;;
    *) if [ "$booted" = 1 ] && apt-cache show "linux-headers-$(uname -r)" >/dev/null 2>&1; then packages+=("linux-headers-$(uname -r)"); fi ;;
  esac
fi
say "installing ${packages[*]}"
apt_install "${packages[@]}"
if [ "$kernel_modules" = 1 ]; then
  # Debian's cloud images boot linux-image-cloud-*, which has no sound modules (snd-aloop).
  mapfile -t cloud_kernels < <(dpkg-query -W -f '${Package} ${Status}\n' 'linux-image-cloud-*' 'linux-image-*-cloud-*' 2>/dev/null | awk '/ installed$/ {print $1}')
  if [ "${#cloud_kernels[@]}" -gt 0 ]; then
    say "removing the cloud kernel (${cloud_kernels[*]}): the standard kernel boots next"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 purge -y -q "${cloud_kernels[@]}" >&2
  fi
fi

# 2. The Docker engine's configuration (storage driver, container log limits, icc off).
install -D -m 0644 "$deploy/docker/daemon.json" /etc/docker/daemon.json

# 3. Kernel settings and the loopback devices' modules.
install -D -m 0644 "$deploy/system/sysctl.conf" /etc/sysctl.d/90-docker-worker.conf
install -D -m 0644 "$deploy/system/modules-load.conf" /etc/modules-load.d/docker-worker.conf
install -D -m 0644 "$deploy/system/modprobe.conf" /etc/modprobe.d/docker-worker.conf

# 4. AppArmor: Debian's kernels enable it unless the command line says otherwise; say so explicitly.
if [ -d /etc/default/grub.d ] || [ -f /etc/default/grub ]; then
  mkdir -p /etc/default/grub.d
  # shellcheck disable=SC2016 # grub expands it when it reads the file
  echo 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX apparmor=1"' > /etc/default/grub.d/90-docker-worker-apparmor.cfg
  if command -v update-grub >/dev/null 2>&1; then update-grub >&2 || say "update-grub failed; AppArmor stays as the kernel command line has it"; fi
fi
systemctl enable apparmor.service docker.service >&2

# 5. The worker.
if [ -n "$package" ]; then
  unpack="$(mktemp -d /opt/.docker-worker.XXXXXX)"
  tar -xzf "$package" -C "$unpack"
  tops=("$unpack"/*)
  if [ "${#tops[@]}" != 1 ] || [ ! -x "${tops[0]}/bin/worker" ]; then die "$package is not a docker-worker package (one docker-worker-<version>/ directory with bin/worker)"; fi
  name="$(basename "${tops[0]}")"
  rm -rf "/opt/${name:?}"
  mv "${tops[0]}" "/opt/$name"
  rmdir "$unpack"
  ln -sfn "/opt/$name" /opt/docker-worker
  say "installed $(/opt/docker-worker/bin/worker --version) in /opt/$name"

  install -d -m 0755 /etc/docker-worker
  install -d -m 0700 /var/lib/docker-worker
  install -D -m 0755 "$deploy/bin/instance-storage.sh" /usr/local/lib/docker-worker/instance-storage.sh
  for unit in docker-worker.service docker-worker-keys.service docker-worker-instance-storage.service docker-worker-runner.service; do
    install -m 0644 "$deploy/systemd/$unit" "/etc/systemd/system/$unit"
  done
  config() { # template destination: the operator's own file wins
    if [ -e "$2" ]; then say "keeping $2"; else install -m 0600 "$1" "$2"; say "wrote $2 from $1"; fi
  }
  case "$host" in
    local|aws)
      config "$deploy/config/$host.yml" /etc/docker-worker/worker.yml
      opts=""
      [ "$host" = aws ] && opts="--host aws"
      printf '# Flags docker-worker.service adds to "worker start" (deploy/provision.sh --host %s).\nDOCKER_WORKER_OPTS="%s"\n' "$host" "$opts" > /etc/default/docker-worker
      systemctl disable docker-worker-runner.service >&2 2>/dev/null || true
      systemctl enable docker-worker.service docker-worker-keys.service >&2
      ;;
    worker-runner)
      [ -z "$start_worker" ] || install -m 0755 "$start_worker" /usr/local/bin/start-worker
      config "$deploy/config/worker-runner.yml" /etc/docker-worker/start-worker.yml
      # For docker-worker-keys.service: where the keys go (worker-runner's config has the rest).
      [ -e /etc/docker-worker/worker.yml ] || printf 'stateDir: /var/lib/docker-worker\n' > /etc/docker-worker/worker.yml
      systemctl disable docker-worker.service >&2 2>/dev/null || true
      systemctl enable docker-worker-runner.service docker-worker-keys.service >&2
      ;;
  esac
  # Instance-store disks are a cloud's: on a machine of your own a blank disk is not ours to take.
  if [ "$host" = local ]; then
    systemctl disable docker-worker-instance-storage.service >&2 2>/dev/null || true
  else
    systemctl enable docker-worker-instance-storage.service >&2
  fi
  if [ -n "$(find /var/lib/docker-worker -path '*/keys/*' -type f 2>/dev/null)" ]; then
    say "warning: /var/lib/docker-worker holds keys already; an image made from this machine would carry them"
  fi
fi

if [ "$booted" = 1 ]; then
  systemctl daemon-reload
  sysctl --system >/dev/null
  if [ "$kernel_modules" = 1 ]; then modprobe -a v4l2loopback snd-aloop || say "the loopback modules load at the next boot (the running kernel has no build of them yet)"; fi
  systemctl restart docker.service
fi
say "done"
