#!/usr/bin/env bash
# The last step of an image build (packer/docker-worker.pkr.hcl), after deploy/provision.sh:
# removes what every instance must make for itself, and refuses to seal a machine whose
# worker keys would end up in the image (docker-worker-keys.service makes them at first boot).
set -euo pipefail
say() { echo "seal-image: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "run as root"; exit 1; }

keys="$(find /var/lib/docker-worker -path '*/keys/*' -type f 2>/dev/null || true)"
if [ -n "$keys" ]; then
  say "refusing: the image would carry the worker's private keys ($(echo "$keys" | tr '\n' ' ')); remove /var/lib/docker-worker/keys (instances make their own at first boot)"
  exit 1
fi
# The worker's state: an image starts with none (no caches, no embedded deployment, no journal).
find /var/lib/docker-worker -mindepth 1 -delete 2>/dev/null || true
# Each instance its own identity: machine-id (systemd makes one at first boot), cloud-init's
# per-instance state (it then makes new SSH host keys and runs the first-boot steps again).
truncate -s 0 /etc/machine-id
rm -f /var/lib/dbus/machine-id
if command -v cloud-init >/dev/null 2>&1; then cloud-init clean --logs >&2; fi
# Smaller images: package lists and downloaded packages come back with the next apt-get update.
apt-get clean
rm -rf /var/lib/apt/lists/*
if [ -d /run/systemd/system ]; then journalctl --rotate --vacuum-time=1s >/dev/null 2>&1 || true; fi
say "sealed"
