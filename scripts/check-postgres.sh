#!/usr/bin/env bash
# Fails, with a clear message, when the PostgreSQL the API tests need is not
# reachable. The tests never skip: a run without PostgreSQL is a failed run.
set -euo pipefail

url="${1:?usage: check-postgres.sh POSTGRES_URL}"
hostport="${url#*://}"
hostport="${hostport#*@}"
hostport="${hostport%%/*}"
hostport="${hostport%%\?*}"
host="${hostport%%:*}"
port=5432
[[ "$hostport" == *:* ]] && port="${hostport##*:}"
[ -n "$host" ] || host=127.0.0.1

if ! timeout 5 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null; then
  echo "check-postgres: PostgreSQL is not reachable at $host:$port." >&2
  echo "  The API tests run on SQLite and on PostgreSQL; start PostgreSQL, or point" >&2
  echo "  MEDSEC_TEST_DATABASE_URL at one (a user allowed to create databases)." >&2
  exit 1
fi
