#!/usr/bin/env bash
# Debian's stock PostgreSQL, as users deploy it: the distribution's package and the
# postgresql.conf its pg_createcluster writes (JIT on, shared_buffers and max_connections at their
# defaults), started as a cluster of its own on a free port, so a run never touches a `main`
# cluster that may serve something else.
#
#   scripts/stock-postgres.sh start [MAJOR]   installs postgresql-MAJOR (default 15) with apt-get
#                                             when missing, creates and starts a cluster; prints
#                                             `export DATABASE_URL=…` and `export STOCK_PG_CLUSTER=…`
#   scripts/stock-postgres.sh stop CLUSTER    stops and drops it (CLUSTER as printed: MAJOR/NAME)
#
# One change to the stock configuration: pg_stat_statements is preloaded, so that tests can read
# which statements were JIT-compiled (test/plans.test.ts). It observes; it changes no plan.
#
#   eval "$(scripts/stock-postgres.sh start)"; npm test; scripts/stock-postgres.sh stop "$STOCK_PG_CLUSTER"
set -euo pipefail

PASSWORD=orchestrator
cmd=${1:-}
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

case "$cmd" in
start)
  major=${2:-15}
  if [ ! -x "/usr/lib/postgresql/$major/bin/postgres" ]; then
    echo "installing postgresql-$major with apt-get" >&2
    as_root apt-get update >&2
    # The package's own `main` cluster is not needed; policy-rc.d may refuse to start it anyway.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "postgresql-$major" >&2
  fi
  port=$(node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
  name="orch$port"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/stock-pg-XXXXXX")
  as_root chown postgres:postgres "$dir"
  chmod 700 "$dir"
  as_root pg_createcluster "$major" "$name" -d "$dir/data" -p "$port" \
    -o shared_preload_libraries=pg_stat_statements >&2
  as_root pg_ctlcluster "$major" "$name" start >&2
  as_root runuser -u postgres -- psql -q -p "$port" -d postgres \
    -c "ALTER USER postgres PASSWORD '$PASSWORD'" >&2
  echo "export DATABASE_URL=postgres://postgres:$PASSWORD@127.0.0.1:$port/postgres"
  echo "export STOCK_PG_CLUSTER=$major/$name"
  ;;
stop)
  cluster=${2:?usage: stock-postgres.sh stop MAJOR/NAME}
  major=${cluster%%/*}
  name=${cluster#*/}
  dir=$(pg_conftool -s "$major" "$name" show data_directory 2>/dev/null || true)
  as_root pg_dropcluster --stop "$major" "$name" >&2 || true
  [ -n "$dir" ] && as_root rm -rf "$(dirname "$dir")"
  ;;
*)
  echo "usage: $0 start [MAJOR] | stop MAJOR/NAME" >&2
  exit 2
  ;;
esac
