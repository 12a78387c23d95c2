#!/usr/bin/env bash
# Runs two local image registries for the tests (make registry) and pushes the test images:
#
#   127.0.0.1:5480   open registry            127.0.0.1:5480/taskenv_pass:latest, .../taskenv_fail:latest
#   127.0.0.1:5481   htpasswd basic auth      127.0.0.1:5481/taskenv_pass:latest, .../taskenv_fail:latest
#                    user docker-worker-test, password docker-worker-test-password
#
# Both are Debian's docker-registry (distribution 2.x) over plain HTTP: the Docker daemon treats
# 127.0.0.0/8 registries as insecure, and the registry accepts htpasswd auth without TLS. These
# values are mirrored in test/support/registry.ts. State (config, data, pid, log) lives under
# /var/lib/docker-worker/registry as root, else under $TMPDIR. Safe to re-run: running
# registries are kept, a changed config restarts them, images are pushed only when the
# registry does not hold the local build.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
host=127.0.0.1
open_port=5480
auth_port=5481
user=docker-worker-test
password=docker-worker-test-password
images=(taskenv_pass:latest taskenv_fail:latest)
if [ "$(id -u)" -eq 0 ]; then
  state="${REGISTRY_STATE_DIR:-/var/lib/docker-worker/registry}"
else
  state="${REGISTRY_STATE_DIR:-${TMPDIR:-/tmp}/docker-worker-registry-$(id -u)}"
fi

say() { echo "setup-registry: $*" >&2; }
fail() { say "$*"; exit 1; }

# shellcheck source=scripts/lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" -eq 0 ] || fail "missing Debian packages; as root run: apt-get install -y ${missing[*]}"
  say "installing Debian packages: ${missing[*]}"
  apt_install "${missing[@]}"
fi

docker info >/dev/null 2>&1 || fail "no Docker engine answers; run 'make docker' first"
"$here/build-test-images.sh"

# HTTP status of GET /v2/ on a port, or 000 when nothing answers.
v2_status() { curl -s -o /dev/null -m 5 -w '%{http_code}' "http://$host:$1/v2/" || true; }

# True when the pid in a pid file is a live docker-registry process.
registry_running() {
  local pid
  pid="$(cat "$1" 2>/dev/null || true)"
  [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q docker-registry
}

write_config() {
  local dir="$1" port="$2" auth="$3"
  cat <<EOF
# Written by scripts/setup-registry.sh
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $host:$port
  secret: docker-worker-test-registry
EOF
  if [ "$auth" = auth ]; then
    cat <<EOF
auth:
  htpasswd:
    realm: docker-worker-test
    path: $dir/htpasswd
EOF
  fi
}

# start_registry NAME PORT open|auth EXPECTED_V2_STATUS
start_registry() {
  local name="$1" port="$2" auth="$3" expect="$4"
  local dir="$state/$name" pidfile="$state/$name/registry.pid"
  mkdir -p "$dir/data"
  if [ "$auth" = auth ] && ! htpasswd -vb "$dir/htpasswd" "$user" "$password" >/dev/null 2>&1; then
    htpasswd -Bbc "$dir/htpasswd" "$user" "$password" 2>/dev/null
  fi
  local config
  config="$(write_config "$dir" "$port" "$auth")"
  if registry_running "$pidfile"; then
    if [ "$config" = "$(cat "$dir/config.yml" 2>/dev/null)" ] && [ "$(v2_status "$port")" = "$expect" ]; then
      return 0
    fi
    say "restarting the $name registry (config changed or not answering)"
    kill "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 50); do registry_running "$pidfile" || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
  local status
  status="$(v2_status "$port")"
  if [ "$status" != 000 ]; then
    fail "port $host:$port already answers (HTTP $status) but not from the registry started here ($pidfile); stop that process and re-run"
  fi
  printf '%s\n' "$config" >"$dir/config.yml"
  say "starting the $name registry on $host:$port (log: $dir/registry.log)"
  setsid nohup docker-registry serve "$dir/config.yml" >>"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  for _ in $(seq 100); do
    [ "$(v2_status "$port")" = "$expect" ] && return 0
    registry_running "$pidfile" || break
    sleep 0.1
  done
  tail -n 20 "$dir/registry.log" >&2 || true
  fail "the $name registry did not come up on $host:$port; see $dir/registry.log"
}

# Digest the registry serves for repo:tag, empty when unknown.
remote_digest() {
  local port="$1" repo="$2" tag="$3"
  curl -sI -m 5 -u "$user:$password" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$host:$port/v2/$repo/manifests/$tag" |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }'
}

# push_images PORT: tags and pushes each test image unless the registry already holds it.
push_images() {
  local port="$1" image repo tag target digest
  for image in "${images[@]}"; do
    repo="${image%%:*}" tag="${image##*:}" target="$host:$port/$image"
    digest="$(remote_digest "$port" "$repo" "$tag")"
    if [ -n "$digest" ] && docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$image" |
      grep -qx "$host:$port/$repo@$digest"; then
      continue
    fi
    docker tag "$image" "$target"
    docker push "$target" >/dev/null
    say "pushed $target"
  done
}

start_registry open "$open_port" open 200
start_registry auth "$auth_port" auth 401

push_images "$open_port"

# Log in with a throwaway client config so no credentials are left in ~/.docker.
DOCKER_CONFIG="$(mktemp -d)"
export DOCKER_CONFIG
trap 'rm -rf "$DOCKER_CONFIG"' EXIT
printf '%s' "$password" | docker login -u "$user" --password-stdin "$host:$auth_port" >/dev/null 2>&1 ||
  fail "docker login to $host:$auth_port failed; see $state/auth/registry.log"
push_images "$auth_port"
