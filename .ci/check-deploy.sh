#!/usr/bin/env bash
# CI: the reference deployment in deploy/ is valid and matches the code. Its vitest file checks
# the JSON and YAML parse and that every metric the Grafana dashboard and the alert rules query is
# exported by a running Dispatch (started in-process on a test database); promtool and haproxy
# check their own files when installed (Debian: apt-get install prometheus haproxy).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v promtool >/dev/null; then
  promtool check rules deploy/prometheus/alerts.yml
  promtool check config deploy/prometheus/prometheus.yml
else
  echo "promtool not installed: alert rules checked as YAML only" >&2
fi
if command -v haproxy >/dev/null; then
  # Replica names resolve only inside compose's network: init-addr none lets the check pass.
  haproxy -c -q -f deploy/haproxy.cfg
fi

DISPATCH_TEST_DATABASE_URL="${DISPATCH_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}" \
  npx vitest run --project core test/integration/deploy-config.test.ts
