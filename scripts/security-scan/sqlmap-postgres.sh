#!/usr/bin/env bash
# V15 on PostgreSQL: sqlmap's time-based payloads (pg_sleep and heavy queries; the SQLite pass in
# scripts/security-scan.sh uses boolean ones) against a throwaway Portcullis on a throwaway PostgreSQL cluster
# (scripts/pg-cluster.sh), set up as docs/deployment.md says: migrated by the owner role, served by the
# least-privilege app role. Called by scripts/security-scan.sh; runs on its own too:
#
#   scripts/security-scan/sqlmap-postgres.sh OUT_DIR     (the project must be built in Release)
#
# Prints one verdict line per target, "PASS <name> <reason>" or "FAIL <name> <reason>", and exits non-zero when
# a target failed or the set-up did. Only 127.0.0.1 is used. Nothing secret is printed.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: scripts/security-scan/sqlmap-postgres.sh OUT_DIR}
mkdir -p "$out"
work=$(mktemp -d /tmp/portcullis-scan-pg.XXXXXX); chmod 700 "$work"
server_pid=""; PORTCULLIS_PG_DIR=""; bg_pids=()
cleanup() {
  local pid
  for pid in "${bg_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  if [ -n "$server_pid" ]; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  if [ -n "$PORTCULLIS_PG_DIR" ]; then scripts/pg-cluster.sh stop "$PORTCULLIS_PG_DIR" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
setup_failed() { echo "FAIL sqlmap-pg set-up: $1"; exit 1; }

env_lines=$(scripts/pg-cluster.sh start 2>"$out/pg-cluster.log") || setup_failed "PostgreSQL did not start: $(tail -n 3 "$out/pg-cluster.log" | tr '\n' ' ')"
eval "$env_lines"
# The cluster's Npgsql connection strings ("Host=…;Port=…;Username=…;Password=…") as psql's libpq form.
field() { tr ';' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
pg_bin=$(dirname "$(ls /usr/lib/postgresql/*/bin/psql | head -1)")
psql_as() { # psql_as NPGSQL-CONNECTION DATABASE  (SQL on stdin)
  PGPASSWORD=$(field "$1" Password) "$pg_bin/psql" -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(field "$1" Port)" \
    -U "$(field "$1" Username)" -d "$2" >>"$out/psql.log" 2>&1
}
db=portcullis_scan
psql_as "$PORTCULLIS_TEST_PG_ADMIN" postgres <<<"CREATE DATABASE $db OWNER portcullis_owner;" || setup_failed "CREATE DATABASE failed"
psql_as "$PORTCULLIS_TEST_PG_ADMIN" "$db" <<SQL || setup_failed "the superuser's grants failed"
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE $db FROM PUBLIC;
GRANT CONNECT ON DATABASE $db TO portcullis_app;
SQL

portcullis() { dotnet run --project src/Portcullis -c Release --no-build -- "$@"; }
data="$work/data"; mkdir -p "$data"
portcullis keys new-kek --out "$work/kek.pem" >"$out/new-kek.log" 2>&1 </dev/null || setup_failed "keys new-kek failed"
export Portcullis__Storage__Provider=Postgres Portcullis__KeyEncryption__CertificatePath="$work/kek.pem"
Portcullis__Storage__ConnectionString="$PORTCULLIS_TEST_PG_OWNER;Database=$db" portcullis migrate --data-dir "$data" \
  >"$out/migrate.log" 2>&1 </dev/null || setup_failed "portcullis migrate failed: $(tail -n 3 "$out/migrate.log" | tr '\n' ' ' | cut -c1-200)"
psql_as "$PORTCULLIS_TEST_PG_OWNER" "$db" <<'SQL' || setup_failed "the owner's grants failed"
GRANT USAGE ON SCHEMA public TO portcullis_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO portcullis_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO portcullis_app;
REVOKE UPDATE, DELETE, TRUNCATE ON "AuditEvents", "AuditSeals" FROM portcullis_app;
SQL

port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()')
H="https://127.0.0.1:$port"
# As in scripts/security-scan.sh: limits relaxed so every probe is evaluated, not 429ed.
for policy in authenticated:User credentials:ClientIp anonymous:ClientIp; do
  export "Portcullis__RateLimits__Policies__${policy%%:*}__Algorithm=FixedWindow"
  export "Portcullis__RateLimits__Policies__${policy%%:*}__PermitLimit=100000000"
  export "Portcullis__RateLimits__Policies__${policy%%:*}__Window=00:01:00"
  export "Portcullis__RateLimits__Policies__${policy%%:*}__PartitionBy=${policy#*:}"
done
Portcullis__Storage__ConnectionString="$PORTCULLIS_TEST_PG_APP;Database=$db" \
Portcullis__LoginThrottle__AttemptsPerIp=100000000 Portcullis__LoginThrottle__FreeFailuresPerAccount=100000000 \
  setsid dotnet run --project src/Portcullis -c Release --no-build -- serve --urls "$H" --data-dir "$data" \
  >"$out/server-pg.log" 2>&1 </dev/null &
# Its own process group (setsid, started directly so that $! is the group): `dotnet run` and the server stop together.
server_pid=$!
ready=0
for _ in $(seq 1 120); do
  kill -0 "$server_pid" 2>/dev/null || break
  if curl -skf -m 2 "$H/health/ready" >/dev/null 2>&1; then ready=1; break; fi
  sleep 1
done
[ "$ready" -eq 1 ] || setup_failed "Portcullis on PostgreSQL did not become ready: $(tail -n 3 "$out/server-pg.log" | tr '\n' ' ' | cut -c1-200)"

# The token target's username exists (the baseline is a wrong password: 400 invalid_grant); the registration
# target's account exists too, so every probe compares against the same 409.
reg_body='{"username":"sqlmap-probe","email":"sqlmap-probe@example.com","password":"sqlmap probe passphrase 2f9c"}'
code=$(curl -sk -m 30 -o /dev/null -w '%{http_code}' -X POST "$H/api/accounts" -H 'Content-Type: application/json' --data-binary "$reg_body" || true)
[ "$code" = 201 ] || setup_failed "registering the probe account on PostgreSQL answered HTTP $code"

# Time-based only (--technique T), at the SQLite pass's level and risk; --time-sec 2 keeps a sleeping probe short
# while staying well above the endpoints' own response times.
common=(--batch --level 3 --risk 3 --dbms postgresql --technique T --time-sec 2 --flush-session
  --ignore-code 400,401,409,415,429 --timeout 30 --retries 1 --disable-coloring)
( exec timeout 300 sqlmap -u "$H/connect/token" \
    --data "grant_type=password&username=sqlmap-probe*&password=not-the-password-0000*&client_id=portcullis&scope=openid%20offline_access" \
    "${common[@]}" --output-dir "$out/sqlmap-pg-token" >"$out/sqlmap-pg-token.log" 2>&1 ) &
sq1=$!; bg_pids+=("$sq1")
( exec timeout 300 sqlmap -u "$H/api/accounts" -H 'Content-Type: application/json' \
    --data '{"username":"sqlmap-probe*","email":"sqlmap-probe@example.com*","password":"sqlmap probe passphrase 2f9c*"}' \
    "${common[@]}" --output-dir "$out/sqlmap-pg-register" >"$out/sqlmap-pg-register.log" 2>&1 ) &
sq2=$!; bg_pids+=("$sq2")
wait "$sq1" || true; wait "$sq2" || true

failed=0
for run in token register; do
  log="$out/sqlmap-pg-$run.log"
  tested=$(grep -acE "parameter '[^']+' (does not seem to be injectable|is vulnerable)" "$log" || true)
  # A verdict without one PostgreSQL time-based test behind it (say, the payloads were filtered out) proves nothing.
  probes=$(grep -acE "testing 'PostgreSQL .*time-based" "$log" || true)
  if grep -aqE 'is vulnerable|appears to be injectable|sqlmap identified the following injection point' "$log"; then
    echo "FAIL sqlmap-pg-$run INJECTABLE: $(grep -aE 'is vulnerable|appears to be injectable' "$log" | head -3 | tr '\n' ' ' | cut -c1-300)"; failed=1
  elif grep -aq 'Too Many Requests' "$log"; then
    echo "FAIL sqlmap-pg-$run inconclusive: the server answered 429 during the run"; failed=1
  elif [ "${probes:-0}" -eq 0 ]; then
    echo "FAIL sqlmap-pg-$run no PostgreSQL time-based test ran: $(grep -aE 'CRITICAL|ERROR' "$log" | tail -2 | tr '\n' ' ' | cut -c1-300)"; failed=1
  elif grep -aq 'all tested parameters do not appear to be injectable' "$log"; then
    echo "PASS sqlmap-pg-$run all $tested marked fields 'do not appear to be injectable' ($probes PostgreSQL time-based tests)"
  else
    echo "FAIL sqlmap-pg-$run no verdict line (timeout or error): $(grep -aE 'CRITICAL|ERROR' "$log" | tail -2 | tr '\n' ' ' | cut -c1-300)"; failed=1
  fi
done
if grep -aqE '"LogLevel": ?"(Error|Critical)"|Unhandled exception' "$out/server-pg.log"; then
  echo "FAIL sqlmap-pg-server-log the PostgreSQL-backed server logged errors during the scan"; failed=1
fi
exit "$failed"
