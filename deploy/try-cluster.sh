#!/usr/bin/env bash
# The load-balanced set-up on this machine: nginx (TLS, self-signed) in front of 3 Latchkey instances on a
# throw-away PostgreSQL database. Ctrl-C stops everything and drops the database.
#   deploy/try-cluster.sh [--port 8443] [--first-instance-port 3101] [--keep] [postgres://user@host:5432/postgres]
# Needs: nginx (Debian's /usr/sbin/nginx, or LATCHKEY_NGINX), openssl, a PostgreSQL server whose user may
# create databases, and the project's dependencies (npm ci). dist/ is built first.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
command -v "${LATCHKEY_NGINX:-/usr/sbin/nginx}" >/dev/null || { echo "try-cluster: nginx not found (apt-get install nginx)" >&2; exit 1; }
command -v openssl >/dev/null || { echo "try-cluster: openssl not found" >&2; exit 1; }
exec node --import tsx deploy/try-cluster.ts "$@"
