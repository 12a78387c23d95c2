#!/usr/bin/env bash
# At boot, before Docker and the worker start (docker-worker-instance-storage.service):
# assembles the instance's local disks (EC2 instance store) into one LVM logical volume,
# formats it ext4 the first time, mounts it on /mnt/instance-storage and bind-mounts
#   /mnt/instance-storage/docker         on /var/lib/docker         (Docker's root: images, containers)
#   /mnt/instance-storage/docker-worker  on /var/lib/docker-worker  (the worker's state: caches, logs)
# as docker-worker's instance-storage.sh did. Workers are disposable, so the file system trades
# durability for speed (no barriers, writeback journal, 60 s commits) and panics on errors
# rather than run tasks on a read-only disk.
#
# Disks used: NVMe instance-store volumes (model "Amazon EC2 NVMe Instance Storage"), or, on
# Xen instances, whole xvd/sd disks that hold no partition, no file system and nothing
# mounted. INSTANCE_STORAGE_DEVICES="/dev/x /dev/y" names them instead. No such disk: nothing
# to do (Docker and the worker stay on the root disk), exit 0.
set -euo pipefail
vg=instance_storage
lv=all
mnt=/mnt/instance-storage
log() { echo "instance-storage: $*"; }

candidates() {
  local dev model
  if [ -n "${INSTANCE_STORAGE_DEVICES:-}" ]; then
    local named
    read -r -a named <<< "$INSTANCE_STORAGE_DEVICES"
    printf '%s\n' "${named[@]}"
    return
  fi
  for dev in /sys/block/nvme*n*; do
    [ -e "$dev/device/model" ] || continue
    model="$(tr -s ' ' < "$dev/device/model")"
    case "$model" in *"Instance Storage"*) echo "/dev/$(basename "$dev")" ;; esac
  done
  for dev in /sys/block/xvd* /sys/block/sd*; do
    [ -e "$dev" ] || continue
    dev="/dev/$(basename "$dev")"
    # A blank disk: no partitions, no signature (file system, LVM, RAID), not mounted.
    [ "$(lsblk -nro NAME "$dev" | wc -l)" = 1 ] || continue
    [ -z "$(lsblk -nro FSTYPE "$dev")" ] || continue
    [ -z "$(lsblk -nro MOUNTPOINT "$dev")" ] || continue
    echo "$dev"
  done
}

if ! vgs "$vg" >/dev/null 2>&1; then
  mapfile -t devices < <(candidates)
  if [ "${#devices[@]}" = 0 ]; then
    log "no instance-store disks; Docker and the worker use the root disk"
    exit 0
  fi
  log "creating volume group $vg on ${devices[*]}"
  for d in "${devices[@]}"; do umount "$d" 2>/dev/null || true; done
  pvcreate -ff -y "${devices[@]}"
  vgcreate "$vg" "${devices[@]}"
  lvcreate -y -l 100%VG -n "$lv" "$vg"
else
  log "volume group $vg exists"
fi

vgchange -ay "$vg" >/dev/null
dev="/dev/$vg/$lv"
if [ "$(blkid -o value -s TYPE "$dev" || true)" != ext4 ]; then
  log "formatting $dev (ext4)"
  mkfs.ext4 -q -E nodiscard "$dev"
fi
mkdir -p "$mnt"
if ! mountpoint -q "$mnt"; then
  mount -o rw,relatime,errors=panic,data=writeback,nobarrier,commit=60 "$dev" "$mnt"
fi
for dir in docker docker-worker; do
  mkdir -p "$mnt/$dir" "/var/lib/$dir"
  if ! mountpoint -q "/var/lib/$dir"; then mount --bind "$mnt/$dir" "/var/lib/$dir"; fi
done
chmod 0700 "$mnt/docker-worker"
log "$dev mounted on $mnt ($(df -h --output=size "$mnt" | tail -1 | tr -d ' ')); /var/lib/docker and /var/lib/docker-worker are on it"
