#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite: 127.0.0.1 only, a free port, a temporary directory, a
# non-root server process, passwords (SCRAM) on TCP, fsync off (test data only).
#
#   eval "$(scripts/pg-cluster.sh start)"   # prints export lines: PORTCULLIS_PG_DIR, PORTCULLIS_TEST_PG_*
#   scripts/pg-cluster.sh pause  "$PORTCULLIS_PG_DIR"   # stop the server, keep the data (outage tests)
#   scripts/pg-cluster.sh resume "$PORTCULLIS_PG_DIR"   # start it again on the same port
#   scripts/pg-cluster.sh stop   "$PORTCULLIS_PG_DIR"   # stop the server and delete the directory
#
# Roles: the bootstrap superuser 'postgres' (test infrastructure only: creates and drops databases),
# 'portcullis_owner' (owns the schema, runs migrations) and 'portcullis_app' (what Portcullis connects as:
# data rights only). Neither of the last two is a superuser or may create databases or roles.
# When PostgreSQL is missing and this runs as root, the Debian 'postgresql' package is installed; otherwise a
# missing PostgreSQL is an error (CI never skips the PostgreSQL run).
set -euo pipefail

PG_VERSION=${PG_VERSION:-15}
bin_dir() {
  local d
  for d in "/usr/lib/postgresql/$PG_VERSION/bin" /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

ensure_installed() {
  if bin_dir >/dev/null; then return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "pg-cluster: PostgreSQL (initdb, pg_ctl) is not installed; install the Debian 'postgresql' package." >&2
    exit 1
  fi
  echo "pg-cluster: installing the Debian 'postgresql' package" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bin_dir >/dev/null || { echo "pg-cluster: PostgreSQL is still missing after installing it." >&2; exit 1; }
}

# Runs a command as the cluster's owner: the 'postgres' system user when we are root (PostgreSQL refuses root).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  local p i
  for i in $(seq 1 50); do
    # Below Linux's ephemeral range (32768-60999 by default): a port there can be held by an outgoing connection,
    # which a connect test does not see but which makes the server's bind fail.
    p=$(( 20000 + RANDOM % 12000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "pg-cluster: no free port found" >&2
  return 1
}

start_server() { # dir port
  local dir=$1 port=$2 bin
  bin=$(bin_dir)
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $dir/socket -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB" \
    start >&2 || { cat "$dir/server.log" >&2; return 1; }
}

wait_ready() { # dir port
  local i bin
  bin=$(bin_dir)
  for i in $(seq 1 60); do
    if "$bin/pg_isready" -q -h 127.0.0.1 -p "$2"; then return 0; fi
    sleep 0.5
  done
  echo "pg-cluster: PostgreSQL did not become ready on port $2" >&2
  cat "$1/server.log" >&2
  return 1
}

secret() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }

cmd_start() {
  ensure_installed
  local bin dir port admin_pw owner_pw app_pw
  bin=$(bin_dir)
  dir=${1:-$(mktemp -d -t portcullis-pg.XXXXXX)}
  mkdir -p "$dir/socket"
  chmod 755 "$dir"
  admin_pw=$(secret); owner_pw=$(secret); app_pw=$(secret)
  printf '%s\n' "$admin_pw" >"$dir/pwfile"
  if [ "$(id -u)" -eq 0 ]; then chown -R postgres:postgres "$dir"; fi
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" --auth-host=scram-sha-256 --auth-local=peer \
    -E UTF8 --locale=C.UTF-8 >/dev/null 2>"$dir/initdb.log" || { cat "$dir/initdb.log" >&2; exit 1; }
  rm -f "$dir/pwfile"
  # A port free when probed can be taken before PostgreSQL binds it: try another one a few times.
  local attempt
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    echo "$port" >"$dir/port"
    if start_server "$dir" "$port"; then break; fi
    if [ "$attempt" -eq 5 ]; then exit 1; fi
    echo "pg-cluster: port $port was taken; trying another" >&2
  done
  wait_ready "$dir" "$port"
  PGPASSWORD=$admin_pw "$bin/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres >&2 <<SQL
CREATE ROLE portcullis_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '$owner_pw';
CREATE ROLE portcullis_app LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD '$app_pw';
SQL
  local base="Host=127.0.0.1;Port=$port"
  echo "export PORTCULLIS_PG_DIR='$dir'"
  echo "export PORTCULLIS_TEST_PG_ADMIN='$base;Username=postgres;Password=$admin_pw'"
  echo "export PORTCULLIS_TEST_PG_OWNER='$base;Username=portcullis_owner;Password=$owner_pw'"
  echo "export PORTCULLIS_TEST_PG_APP='$base;Username=portcullis_app;Password=$app_pw'"
  echo "pg-cluster: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port in $dir" >&2
}

check_dir() {
  [ -n "${1:-}" ] && [ -f "$1/data/PG_VERSION" ] || { echo "pg-cluster: '$1' is not a cluster made by this script" >&2; exit 2; }
}

cmd_pause() {
  check_dir "${1:-}"
  as_owner "$(bin_dir)/pg_ctl" -D "$1/data" -m fast -w stop >&2
}

cmd_resume() {
  check_dir "${1:-}"
  start_server "$1" "$(cat "$1/port")"
  wait_ready "$1" "$(cat "$1/port")"
}

cmd_stop() {
  check_dir "${1:-}"
  if [ -f "$1/data/postmaster.pid" ]; then
    as_owner "$(bin_dir)/pg_ctl" -D "$1/data" -m fast -w stop >&2 || true
  fi
  rm -rf "$1"
}

case "${1:-}" in
  start) shift; cmd_start "$@" ;;
  pause) shift; cmd_pause "$@" ;;
  resume) shift; cmd_resume "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) echo "usage: $0 start [DIR] | pause DIR | resume DIR | stop DIR" >&2; exit 2 ;;
esac
