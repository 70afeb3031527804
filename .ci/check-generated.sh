#!/usr/bin/env bash
# CI: db/schema.sql and src/db/generated/database.ts are what a freshly migrated database gives
# (db/dump-schema.ts creates and drops a throwaway database on the server at 127.0.0.1:5432).
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent schema:check
# openapi.json is what the routes' declarations generate (src/routes.ts, npm run openapi).
npm run --silent openapi:check
