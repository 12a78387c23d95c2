#!/usr/bin/env bash
# `make start`: run the worker on the embedded deployment, submit examples/hello-world.yml,
# show its log, then keep the worker running (Ctrl-C stops it cleanly).
# START_ONCE=1 (`make start START_ONCE=1`) stops the worker after the hello-world task and exits
# with the task's result (0: completed): a CI-safe check of this script (test/worker/cli.test.ts).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export WORKER_STATE_DIR="${WORKER_STATE_DIR:-$root/.state}"
mkdir -p "$WORKER_STATE_DIR"
log="$WORKER_STATE_DIR/worker.log"
rm -f "$WORKER_STATE_DIR/embedded/credentials.json"
./bin/worker start --provisioner-id local --worker-type docker-worker "$@" >"$WORKER_STATE_DIR/worker.out" 2>"$log" &
worker=$!
trap 'kill -TERM $worker 2>/dev/null; wait $worker 2>/dev/null' INT TERM
for _ in $(seq 1 100); do
  [ -s "$WORKER_STATE_DIR/embedded/credentials.json" ] && grep -q '^credentials:' "$WORKER_STATE_DIR/worker.out" && break
  if ! kill -0 $worker 2>/dev/null; then echo "The worker did not start; its log ($log) says:" >&2; tail -20 "$log" >&2; exit 1; fi
  sleep 0.1
done
cat "$WORKER_STATE_DIR/worker.out"
echo "worker log (JSON lines): $log"
echo "submitting examples/hello-world.yml ..."
status=0
./bin/worker submit examples/hello-world.yml --follow || status=$?
if [ "${START_ONCE:-}" = 1 ]; then
  kill -TERM $worker; wait $worker || true
  if [ $status -ne 0 ]; then echo "The hello-world task did not complete; the worker log ($log) ends with:" >&2; tail -20 "$log" >&2; fi
  exit $status
fi
cat <<MSG

The worker is running on the embedded deployment (state in $WORKER_STATE_DIR).
Submit more tasks from another shell:
  WORKER_STATE_DIR=$WORKER_STATE_DIR ./bin/worker submit examples/hello-world.yml --follow
Ctrl-C stops the worker.
MSG
wait $worker
