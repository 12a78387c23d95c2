#!/usr/bin/env bash
# Makes sure a Docker engine answers on this machine (make docker).
#
# Fast path: `docker info` answers -> nothing to do.
# Otherwise, as root: install Debian's docker.io when dockerd is missing, then start the engine
# (the docker service when systemd runs, else a background `dockerd` logging to
# /var/log/dockerd.log) and wait up to DOCKER_START_TIMEOUT seconds (default 60) for the socket.
# Safe to re-run.
set -euo pipefail

socket="${DOCKER_SOCKET:-/var/run/docker.sock}"
timeout="${DOCKER_START_TIMEOUT:-60}"
log_file="${DOCKERD_LOG:-/var/log/dockerd.log}"

say() { echo "setup-docker: $*" >&2; }
engine_answers() { docker -H "unix://$socket" info >/dev/null 2>&1; }
# dockerd processes serving the default socket: a private engine (-H elsewhere, as the fault
# suite starts) is not the machine's engine, and waiting for it would wait forever.
default_dockerd() {
  local pid
  for pid in $(pidof dockerd 2>/dev/null); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE -- '(^| )(-H|--host)( |=)' || echo "$pid"
  done
}

if command -v docker >/dev/null 2>&1 && engine_answers; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  say "no Docker engine answers at $socket; install and start it as root: 'sudo make docker' (apt-get install docker.io, then dockerd)"
  exit 1
fi

# shellcheck source=scripts/lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  say "installing Debian's docker.io package"
  apt_install docker.io
fi

if pidof systemd >/dev/null 2>&1 && command -v systemctl >/dev/null 2>&1; then
  say "starting the docker service (systemd)"
  systemctl start docker.service || true
elif [ -n "$(default_dockerd)" ]; then
  say "dockerd is running (pid $(default_dockerd | tr '\n' ' ')) but not answering yet; waiting"
else
  say "starting dockerd in the background (log: $log_file)"
  mkdir -p "$(dirname "$log_file")"
  setsid nohup dockerd >>"$log_file" 2>&1 </dev/null &
fi

for ((i = 0; i < timeout; i++)); do
  if engine_answers; then
    say "Docker engine is up at $socket"
    exit 0
  fi
  sleep 1
done

say "the Docker engine did not answer at $socket within ${timeout}s; see $log_file (or 'journalctl -u docker' under systemd)"
tail -n 20 "$log_file" 2>/dev/null >&2 || true
exit 1
