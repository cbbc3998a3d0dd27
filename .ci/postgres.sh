#!/usr/bin/env bash
# Starts a PostgreSQL on 127.0.0.1:5432 with role/database "portal" unless one already answers.
set -euo pipefail
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  :
else
  ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  if ! pg_lsclusters 2>/dev/null | awk 'NR>1{print $1" "$2}' | grep -q "^$ver main$"; then
    pg_createcluster "$ver" main >/dev/null
  fi
  pg_ctlcluster "$ver" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432
run_psql() { if [ "$(id -u)" = 0 ]; then su postgres -c "psql -qtAc \"$1\""; else psql -qtAc "$1" postgres; fi; }
if [ "$(run_psql "SELECT 1 FROM pg_roles WHERE rolname='portal'")" != 1 ]; then
  run_psql "CREATE ROLE portal LOGIN PASSWORD 'portal' CREATEDB"
fi
if [ "$(run_psql "SELECT 1 FROM pg_database WHERE datname='portal'")" != 1 ]; then
  run_psql "CREATE DATABASE portal OWNER portal"
fi
