#!/usr/bin/env bash
# A newcomer's first run: no database configured, so Dispatch starts its embedded PostgreSQL.
# Create a task, restart Dispatch, and read the task back from the same data folder.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
chmod 755 "$work"  # the embedded server runs as the postgres user when CI is root
export DISPATCH_DATA_DIR="$work/postgres" DISPATCH_PORT=18610 DISPATCH_METRICS_PORT=18611 DISPATCH_EMBEDDED_PORT=54340 DISPATCH_HERMES_URL=""
unset DISPATCH_DATABASE_URL
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

npm run build --silent
start() {
  # What `npm start` runs after building; started directly so SIGTERM reaches Dispatch itself.
  node --enable-source-maps dist/src/main.js >>"$work/dispatch.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 120); do
    curl -fs "http://127.0.0.1:$DISPATCH_METRICS_PORT/ready" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "dispatch did not become ready"; cat "$work/dispatch.log"; exit 1
}
stop() {
  kill -TERM "$pid"
  wait "$pid" || { echo "dispatch did not exit cleanly on SIGTERM"; cat "$work/dispatch.log"; exit 1; }
  pid=""
}

start
id=$(curl -fs -X POST "http://127.0.0.1:$DISPATCH_PORT/api/v1/tasks" -H 'X-Agent-ID: smoke' \
  -H 'Content-Type: application/json' -d '{"title":"smoke test","scope":"smoke"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')
stop
start
status=$(curl -fs "http://127.0.0.1:$DISPATCH_PORT/api/v1/tasks/$id" -H 'X-Agent-ID: smoke' | node -pe 'JSON.parse(require("fs").readFileSync(0)).title')
stop
[ "$status" = "smoke test" ] || { echo "task $id not read back after restart (got: $status)"; exit 1; }
grep -q 'embedded PostgreSQL' "$work/dispatch.log" || { echo "no log line says where the embedded database lives"; exit 1; }
echo "smoke: task $id survived a restart on the embedded database: 1 passed, 0 failed"
