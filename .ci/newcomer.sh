#!/usr/bin/env bash
# The README's two commands, run the way a newcomer runs them: a fresh clone in a private (0700)
# folder, as whoever CI runs as (root here), with no DISPATCH_* variable set, so Dispatch and the
# tests start their embedded PostgreSQL.
#   1. `npm install && npm start`: start, create a task, stop, start again, read the task back.
#   2. `npm test`: the whole suite (core and swarm projects) on the embedded server.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"

for name in $(compgen -e | grep '^DISPATCH_' || true); do unset "$name"; done

work=$(mktemp -d)   # mode 0700: the postgres user cannot enter it
clone="$work/dispatch"
group=""
stops=0
cleanup() {
  [ -n "$group" ] && kill -TERM -- "-$group" 2>/dev/null || true
  wait 2>/dev/null || true
  data="$clone/.dispatch/postgres/data"
  if [ -f "$data/postmaster.pid" ]; then kill -INT "$(head -n 1 "$data/postmaster.pid")" 2>/dev/null || true; sleep 1; fi
  # As root the data lives outside the private folder (see src/db/embedded-access.ts).
  if [ -L "$data" ]; then rm -rf "$(dirname "$(readlink -f "$data")")"; fi
  rm -rf "$work"
}
trap cleanup EXIT

git clone --quiet "$repo" "$clone"
cd "$clone"

log="$work/dispatch.log"
start() {
  # Its own session, so stopping it signals npm, the shell and Dispatch together, as Ctrl-C does.
  setsid npm start >>"$log" 2>&1 &
  group=$!
  for _ in $(seq 1 240); do
    curl -fs http://127.0.0.1:8601/ready >/dev/null 2>&1 && return 0
    kill -0 "$group" 2>/dev/null || break
    sleep 0.5
  done
  echo "newcomer: dispatch did not become ready"; cat "$log"; exit 1
}
stop() {
  kill -TERM -- "-$group"
  for _ in $(seq 1 60); do
    # Down means the API and the embedded server's port are both closed.
    if ! (exec 3<>/dev/tcp/127.0.0.1/8600) 2>/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/54329) 2>/dev/null; then
      wait "$group" 2>/dev/null || true
      group=""
      stops=$((stops + 1))
      [ "$(grep -c '"msg":"stopped"' "$log")" -eq "$stops" ] || { echo "newcomer: dispatch did not stop cleanly"; cat "$log"; exit 1; }
      return 0
    fi
    sleep 0.5
  done
  echo "newcomer: dispatch or its embedded PostgreSQL still running after SIGTERM"; cat "$log"; exit 1
}

npm install --no-audit --no-fund
start
# Listening beyond loopback, Dispatch runs in token mode; the README's first step reads the
# bootstrap admin's token from this file and issues credentials with it.
[ "$(stat -c %a .dispatch/admin-token)" = "600" ] || { echo "newcomer: .dispatch/admin-token missing or readable by others"; exit 1; }
admin="Authorization: Bearer $(cat .dispatch/admin-token)"
planner=$(curl -fs -X POST http://127.0.0.1:8600/api/v1/agents/planner/credentials -H "$admin" \
  -H 'Content-Type: application/json' -d '{"role":"requester"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).token')
id=$(curl -fs -X POST http://127.0.0.1:8600/api/v1/tasks -H "Authorization: Bearer $planner" \
  -H 'Content-Type: application/json' -d '{"title":"first task","scope":"smoke"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8600/api/v1/tasks/$id -H 'X-Agent-ID: planner')" = "401" ] \
  || { echo "newcomer: a call without a credential was not refused"; exit 1; }
stop
start
title=$(curl -fs "http://127.0.0.1:8600/api/v1/tasks/$id" -H "Authorization: Bearer $planner" | node -pe 'JSON.parse(require("fs").readFileSync(0)).title')
stop
[ "$title" = "first task" ] || { echo "newcomer: task $id not read back after a restart (got: $title)"; exit 1; }
grep -q 'using the embedded PostgreSQL' "$log" || { echo "newcomer: no log line says where the embedded database lives"; exit 1; }
echo "newcomer: npm install && npm start: task $id survived a restart on the embedded database"

npm test
