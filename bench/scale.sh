#!/usr/bin/env bash
# bench/scale.sh - the scale scenario of issue 8: Portcullis on SQLite with many users and audit events.
#
#   ./bench/scale.sh                                  # 1,000,000 users, 10,000,000 audit events (long: the seeding)
#   USERS=100000 EVENTS=1000000 DUR=8s ./bench/scale.sh
#
# Seeds a fresh data directory offline with `Portcullis.Bench seed` (bench/Portcullis.Bench; bulk inserts, not the HTTP API: users share one
# real Argon2id hash, audit events are sealed into the hash chain), adds an administrator, starts the server
# (127.0.0.1 only) and measures: start to ready, idle RSS, the audit query's first page through
# GET /api/admin/audit (unfiltered, by actor, by type, by a time range; median of QUERY_N, target < 100 ms),
# `/api/me` with a seeded user's token and the password grant of a seeded user under wrk, and `audit verify`.
# Writes bench/results/<date>-scale.md. The server is stopped by PID on exit.
# Knobs (env): USERS EVENTS DAYS=365 DUR=10s WARM=3s CONN=32 LOGIN_CONN=8 QUERY_N=7 SKIP_BUILD=0 KEEP=0 (keep the
#              seeded data directory) OUT=bench/results
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
USERS=${USERS:-1000000}
EVENTS=${EVENTS:-10000000}
DAYS=${DAYS:-365}
DUR=${DUR:-10s}
WARM=${WARM:-3s}
CONN=${CONN:-32}
LOGIN_CONN=${LOGIN_CONN:-8}
QUERY_N=${QUERY_N:-7}
SKIP_BUILD=${SKIP_BUILD:-0}
RESULTS=${OUT:-$ROOT/bench/results}
PY=/usr/bin/python3
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
command -v wrk >/dev/null || { echo "missing: wrk (apt-get install wrk)"; exit 1; }

SCRATCH=$(mktemp -d /tmp/portcullis-scale.XXXX)
DATA=$SCRATCH/data
mkdir -p "$RESULTS"
echo "scratch -> $SCRATCH"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
  [ "${KEEP:-0}" = 1 ] || rm -rf "$DATA"
}
trap cleanup EXIT INT TERM

if [ "$SKIP_BUILD" != 1 ]; then
  echo "building (Release)"
  # The bench project builds the product too (it references it).
  (cd "$ROOT" && dotnet build bench/Portcullis.Bench -c Release -nologo -v q > "$SCRATCH/build.log" 2>&1) || { tail -30 "$SCRATCH/build.log"; exit 1; }
fi
PC_DLL=$ROOT/src/Portcullis/bin/Release/net10.0/portcullis.dll
BENCH_DLL=$ROOT/bench/Portcullis.Bench/bin/Release/net10.0/Portcullis.Bench.dll
portcullis() { dotnet "$PC_DLL" "$@"; }
bench() { dotnet "$BENCH_DLL" "$@"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
PASSWORD='Kx7q-scale-test-2026-long-phrase'
ADMIN_PASSWORD='Kx7q-scale-admin-2026-long-phrase'

echo "== seeding $USERS users and $EVENTS audit events (load $(cut -d' ' -f1 /proc/loadavg))"
T0=$(now_ms)
SEED_JSON=$(printf '%s\n' "$PASSWORD" | bench seed --users "$USERS" --audit-events "$EVENTS" --days "$DAYS" --password-stdin --data-dir "$DATA" 2> "$SCRATCH/seed.err" | tail -1) ||
  { cat "$SCRATCH/seed.err"; exit 1; }
SEED_MS=$(( $(now_ms) - T0 ))
echo "  $SEED_JSON ($SEED_MS ms)"
SAMPLE_ACTOR=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["sampleActor"] or "anonymous")' "$SEED_JSON")
printf '%s\n' "$ADMIN_PASSWORD" | portcullis admin create --username scaleadmin --email scaleadmin@example.test --password-stdin --data-dir "$DATA" > "$SCRATCH/admin.log" 2>&1
DB_MB=$(( $(stat -c %s "$DATA/portcullis.db") / 1048576 ))

# Same relaxations as bench/run.sh: every request comes from 127.0.0.1.
export Portcullis__LoginThrottle__AttemptsPerIp=100000000
for policy in authenticated:User credentials:ClientIp anonymous:ClientIp; do
  name=${policy%%:*}; part=${policy#*:}
  export "Portcullis__RateLimits__Policies__${name}__Algorithm=FixedWindow"
  export "Portcullis__RateLimits__Policies__${name}__PermitLimit=100000000"
  export "Portcullis__RateLimits__Policies__${name}__Window=00:01:00"
  export "Portcullis__RateLimits__Policies__${name}__PartitionBy=${part}"
done
export Portcullis__RateLimits__GlobalConcurrencyLimit=100000

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
BASE="https://127.0.0.1:$PORT"
CA=(--cacert "$DATA/dev-cert.pem")
echo "== starting the server on $BASE"
T0=$(now_ms)
dotnet "$PC_DLL" serve --urls "$BASE" --data-dir "$DATA" > "$SCRATCH/server.log" 2>&1 &
SERVER_PID=$!
READY_MS=""
for _ in $(seq 1 1500); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -k "$BASE/health/ready" 2>/dev/null)" = 200 ]; then READY_MS=$(( $(now_ms) - T0 )); break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited"; tail -20 "$SCRATCH/server.log"; exit 1; }
  sleep 0.02
done
[ -n "$READY_MS" ] || { echo "server not ready"; exit 1; }
sleep 10
IDLE_RSS_MB=$(( $(awk '$1=="VmRSS:"{print $2}' /proc/$SERVER_PID/status) / 1024 ))

json_field() { $PY -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1],""))' "$1"; }
token_for() { curl -s "${CA[@]}" -X POST --data "grant_type=password&client_id=portcullis&username=$1&password=$2&scope=openid" "$BASE/connect/token" | json_field access_token; }
USER_TOKEN=$(token_for seed-0000001 "$PASSWORD")
ADMIN_TOKEN=$(token_for scaleadmin "$ADMIN_PASSWORD")
[ -n "$USER_TOKEN" ] && [ -n "$ADMIN_TOKEN" ] || { echo "could not log in a seeded user or the admin"; exit 1; }

# ---------------------------------------------------------------- audit queries: first page, median of QUERY_N
iso() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ; }
NOW=$(date +%s)
MID=$(( NOW - DAYS * 86400 / 2 ))
declare -a QUERIES=(
  "unfiltered|limit=50"
  "by actor (a seeded user)|actor=$SAMPLE_ACTOR&limit=50"
  "by type (authn_login_fail)|type=authn_login_fail&limit=50"
  "by rare type (user_disabled)|type=user_disabled&limit=50"
  "by time range: 1 hour, mid-span|from=$(iso "$MID")&to=$(iso $((MID + 3600)))&limit=50"
  "by time range: 1 day, mid-span|from=$(iso "$MID")&to=$(iso $((MID + 86400)))&limit=50"
  "by time range: 30 days, mid-span|from=$(iso "$MID")&to=$(iso $((MID + 30 * 86400)))&limit=50"
  "by actor and 30 days|actor=$SAMPLE_ACTOR&from=$(iso "$MID")&to=$(iso $((MID + 30 * 86400)))&limit=50"
)
QUERY_ROWS=""; Q_LABEL=(); Q_CLIENT=(); Q_ITEMS=()
echo "== audit queries (median of $QUERY_N; load $(cut -d' ' -f1 /proc/loadavg))"
for q in "${QUERIES[@]}"; do
  label=${q%%|*}; query=${q#*|}; query=${query//:/%3A}
  times=()
  for _ in $(seq 1 "$QUERY_N"); do
    out=$(curl -s "${CA[@]}" -o "$SCRATCH/page.json" -w '%{http_code} %{time_total}' -H "Authorization: Bearer $ADMIN_TOKEN" "$BASE/api/admin/audit?$query")
    [ "${out%% *}" = 200 ] || { echo "audit query '$label' -> ${out%% *}: $(head -c 300 "$SCRATCH/page.json")"; exit 1; }
    times+=("${out#* }")
  done
  items=$($PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["items"]))' "$SCRATCH/page.json")
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END{printf "%.1f", a[int((NR+1)/2)]*1000}')
  worst=$(printf '%s\n' "${times[@]}" | sort -n | tail -1 | awk '{printf "%.1f", $1*1000}')
  printf '  %-40s median %7s ms  max %7s ms  (%s items)\n' "$label" "$median" "$worst" "$items"
  Q_LABEL+=("$label"); Q_CLIENT+=("$median / $worst"); Q_ITEMS+=("$items")
done
# The server's own duration for each request (the request log line), without curl's new TLS connection per call.
mapfile -t Q_SERVER < <($PY - "$SCRATCH/server.log" "$QUERY_N" <<'PYEOF'
import json, statistics, sys
n, d = int(sys.argv[2]), []
for line in open(sys.argv[1]):
    if '"Route":"/api/admin/audit"' in line:
        try: d.append(json.loads(line)["State"]["DurationMs"])
        except Exception: pass
for i in range(0, len(d), n):
    print(f"{statistics.median(d[i:i+n]):.1f} / {max(d[i:i+n]):.1f}")
PYEOF
)
for i in "${!Q_LABEL[@]}"; do
  QUERY_ROWS+="| ${Q_LABEL[$i]} | ${Q_SERVER[$i]:-n/a} | ${Q_CLIENT[$i]} | ${Q_ITEMS[$i]} |"$'\n'
done

# ---------------------------------------------------------------- load
wrk_run() { # name conn script path [env...]
  local name=$1 conn=$2 script=$3 path=$4; shift 4
  env "$@" wrk -t1 -c"$conn" -d"$WARM" --timeout 10s -s "$ROOT/bench/wrk/$script" "$BASE$path" > /dev/null 2>&1 || true
  env "$@" wrk -t1 -c"$conn" -d"$DUR" --timeout 10s --latency -s "$ROOT/bench/wrk/$script" "$BASE$path" > "$SCRATCH/wrk_$name.txt" 2>&1 || true
  local rps p50 p99 non2xx
  rps=$(awk '/Requests\/sec/{print $2}' "$SCRATCH/wrk_$name.txt")
  p50=$(awk '$1=="50%"{print $2}' "$SCRATCH/wrk_$name.txt"); p99=$(awk '$1=="99%"{print $2}' "$SCRATCH/wrk_$name.txt")
  non2xx=$(awk '/Non-2xx/{print $NF}' "$SCRATCH/wrk_$name.txt")
  printf '  %-10s c%-3s %10s req/s  p50 %8s  p99 %8s  non-2xx %s\n' "$name" "$conn" "$rps" "$p50" "$p99" "${non2xx:-0}"
  LOAD_ROWS+="| $name | $conn | $rps | $p50 | $p99 | ${non2xx:-0} |"$'\n'
}
LOAD_ROWS=""
echo "== load ($DUR each after $WARM warm-up; load $(cut -d' ' -f1 /proc/loadavg))"
wrk_run me "$CONN" get.lua /api/me TOKEN="$USER_TOKEN"
wrk_run password "$LOGIN_CONN" post.lua /connect/token \
  BODY="grant_type=password&client_id=portcullis&username=seed-0000002&password=$PASSWORD&scope=openid%20offline_access" \
  CONTENT_TYPE=application/x-www-form-urlencoded
PEAK_RSS_MB=$(( $(awk '$1=="VmHWM:"{print $2}' /proc/$SERVER_PID/status) / 1024 ))
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

kill -TERM "$SERVER_PID" 2>/dev/null || true
for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
SERVER_PID=""
T0=$(now_ms)
VERIFY=$(portcullis audit verify --data-dir "$DATA" 2>/dev/null | tail -1)
VERIFY_MS=$(( $(now_ms) - T0 ))
echo "== audit verify: $VERIFY ($VERIFY_MS ms)"

REPORT="$RESULTS/$(date -u +%Y-%m-%d-%H%M)-scale.md"
{
  echo "# Scale run $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- Machine: $(nproc) cpus, kernel $(uname -r); dotnet $(dotnet --version); commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty'); load average at the end: $LOAD_END"
  echo "- Seeded: $USERS users, $EVENTS audit events over $DAYS days (\`Portcullis.Bench seed\`, $SEED_MS ms: $SEED_JSON); database $DB_MB MiB"
  echo "- Start to first 200 on /health/ready: $READY_MS ms; idle RSS $IDLE_RSS_MB MiB; peak RSS after the load $PEAK_RSS_MB MiB"
  echo "- \`audit verify\` after the run: $VERIFY ($VERIFY_MS ms)"
  echo
  echo "| audit query, first page (GET /api/admin/audit, limit 50) | server ms, median / max | curl ms (new TLS connection each), median / max | items |"
  echo "|---|---|---|---|"
  printf '%s' "$QUERY_ROWS"
  echo
  echo "| scenario | conn | req/s | p50 | p99 | non-2xx |"
  echo "|---|---|---|---|---|---|"
  printf '%s' "$LOAD_ROWS"
} > "$REPORT"
echo "report -> $REPORT"
