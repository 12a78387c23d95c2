#!/usr/bin/env bash
# Starts the real Taskcluster services (auth, queue, object, index, purge-cache v106 with
# PostgreSQL, RabbitMQ and an S3 store, all on loopback) for the tests: make realtc.
#
# The recipe is the shared one beside this repository (../shared/realtc, or REALTC_RECIPE); it
# installs what is missing (apt packages, a Node for the services), starts what is stopped and
# waits for every service to answer. The first start takes about a minute (longer when apt has
# to install PostgreSQL and RabbitMQ), a running set 2 s.
#
#   REALTC_DIR      where the services keep their data (default /var/cache/docker-worker/realtc;
#                   PostgreSQL runs as its own user, so not under a private home directory)
#   REALTC_CLAIM_TIMEOUT   the queue's claim timeout in seconds (default 10: the worker's reclaim
#                   tests then take seconds; the real default is 1200)
#
# Writes the deployment's rootUrl and root credentials to $REALTC_DIR/env/root-client.env
# (TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN) and $REALTC_DIR-root.json.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
recipe="${REALTC_RECIPE:-$root/../shared/realtc}"
dir="${REALTC_DIR:-/var/cache/docker-worker/realtc}"
claim_timeout="${REALTC_CLAIM_TIMEOUT:-10}"

say() { echo "setup-realtc: $*" >&2; }

if [ ! -x "$recipe/start.sh" ]; then
  say "the real Taskcluster recipe is not at $recipe (set REALTC_RECIPE to the folder holding start.sh)"
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  say "the real Taskcluster services need root to install and start (PostgreSQL, RabbitMQ, nginx): run 'sudo make realtc'"
  exit 1
fi
mkdir -p "$(dirname "$dir")"
log="$(dirname "$dir")/realtc-start.log"
say "starting the real Taskcluster services in $dir (claim timeout ${claim_timeout} s; log: $log)"
if ! REALTC="$dir" TASK_CLAIM_TIMEOUT="$claim_timeout" "$recipe/start.sh" >"$log" 2>&1; then
  say "the real Taskcluster services did not start; the end of $log:"
  tail -n 30 "$log" >&2
  exit 1
fi
tail -n 3 "$log" >&2
