#!/usr/bin/env bash
# bench/flood.sh - the login-flood scenario of issue 25 §2: do health checks and signed-in callers keep answering
# while the token endpoint is saturated with wrong-password logins, and what does a TLS connection flood cost?
#
#   ./bench/flood.sh                  # ~2 minutes with the defaults; writes bench/results/<date>-flood.md
#   DUR=5s ./bench/flood.sh
#
# One Portcullis (Release build, SQLite, 127.0.0.1 only, per-IP and per-account login limits raised as if the flood
# came from many addresses), started twice:
#   limited    the default PasswordHashing settings (MaxConcurrent = processors, QueueLimit = 4 x, QueueTimeout 1 s)
#   unlimited  MaxConcurrent 1024, QueueLimit 10000, QueueTimeout 30 s: every attempt is hashed at once, as before
#              the hashing limit existed
# For each: a quiet phase, then a flood phase (wrk, FLOOD_CONN connections, bench/wrk/flood.lua: random unknown
# usernames, a 238-character wrong password), both with bench/probe.py sending RATE/s GET /health/live and
# GET /api/me (valid token) on keep-alive connections and timing each. Reported: probe p50/p95/max, the flood's
# answers by status and its latency, server CPU, peak RSS (VmHWM) of each start.
# TLS (limited server): `openssl s_time -new` (full handshakes a second from one client), then a connection flood
# (wrk, CONN_FLOOD connections, "Connection: close": one TLS 1.3 handshake per request) with the probe running.
# Knobs (env): DUR=15s FLOOD_CONN=64 CONN_FLOOD=64 RATE=20 TLS_SECS=5 SKIP_BUILD=0 OUT=bench/results
# Every server started here is stopped by PID on exit (trap). wrk and probe.py runs are bounded by DUR.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DUR=${DUR:-15s}
FLOOD_CONN=${FLOOD_CONN:-64}
CONN_FLOOD=${CONN_FLOOD:-64}
RATE=${RATE:-20}
TLS_SECS=${TLS_SECS:-5}
SKIP_BUILD=${SKIP_BUILD:-0}
RESULTS=${OUT:-$ROOT/bench/results}
PY=/usr/bin/python3
SECS=${DUR%s}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
command -v wrk >/dev/null || { echo "missing: wrk (apt-get install wrk)"; exit 1; }
command -v openssl >/dev/null || { echo "missing: openssl"; exit 1; }
[[ $SECS =~ ^[0-9]+$ ]] || { echo "DUR must be whole seconds, e.g. 15s"; exit 2; }

SCRATCH=$(mktemp -d /tmp/portcullis-flood.XXXX)
RAW=$SCRATCH/raw; mkdir -p "$RAW" "$RESULTS"
echo "scratch (raw output, server logs) -> $SCRATCH"
SERVER_PID=""
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
trap stop_server EXIT INT TERM

if [ "$SKIP_BUILD" != 1 ]; then
  echo "building Portcullis (Release)"
  (cd "$ROOT" && dotnet build -c Release -nologo -v q > "$SCRATCH/build.log" 2>&1) || { tail -30 "$SCRATCH/build.log"; exit 1; }
fi
PC_DLL=$ROOT/src/Portcullis/bin/Release/net10.0/portcullis.dll
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
BASE="https://127.0.0.1:$PORT"
DATA=$SCRATCH/data
CA=(--cacert "$DATA/dev-cert.pem")

# As if the flood came from many addresses: the per-IP and per-account login limits and the request rate limits do
# not refuse anything here, so only the hashing limit stands between the flood and the hasher.
export Portcullis__LoginThrottle__AttemptsPerIp=100000000 Portcullis__LoginThrottle__FreeFailuresPerAccount=100000000
for name in authenticated credentials anonymous; do
  export "Portcullis__RateLimits__Policies__${name}__Algorithm=FixedWindow"
  export "Portcullis__RateLimits__Policies__${name}__PermitLimit=100000000"
  export "Portcullis__RateLimits__Policies__${name}__Window=00:01:00"
done
export Portcullis__RateLimits__GlobalConcurrencyLimit=100000

start_server() { # log-suffix [extra env assignments...]
  local suffix=$1; shift
  env "$@" dotnet "$PC_DLL" serve --urls "$BASE" --data-dir "$DATA" > "$RAW/server$suffix.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -k "$BASE/health/live" 2>/dev/null)" = 200 ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$RAW/server$suffix.log" >&2; return 1; }
    sleep 0.05
  done
  echo "server not ready" >&2; return 1
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$SERVER_PID/stat"; }
status_kb() { awk -v f="$1:" '$1==f{print $2}' "/proc/$SERVER_PID/status"; }

META=$SCRATCH/meta.txt
{
  echo "date=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "machine=$(nproc) cpus, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r)"
  echo "versions=dotnet $(dotnet --version); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'); $(openssl version); commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
  echo "knobs=DUR=$DUR FLOOD_CONN=$FLOOD_CONN CONN_FLOOD=$CONN_FLOOD RATE=$RATE/s per probed path TLS_SECS=$TLS_SECS"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
} > "$META"

echo "== first start, seeding a user"
start_server _first
stop_server
PASSWORD='Kx7q-flood-load-2026-long-phrase'
printf '%s\n' "$PASSWORD" | dotnet "$PC_DLL" users add --username bench --password-stdin --data-dir "$DATA" > "$RAW/seed.log"
PW_BODY="grant_type=password&client_id=portcullis&username=bench&password=$PASSWORD"
token() { curl -s "${CA[@]}" -X POST --data "$PW_BODY" "$BASE/connect/token" | $PY -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }

RUNS=$SCRATCH/runs.tsv; : > "$RUNS"
phase() { # mode phase: probe for DUR, with the flood (or the connection flood) alongside when asked
  local mode=$1 name=$2 c0 c1 f
  f="$RAW/${1}_${2}"
  local at; at=$(token)
  c0=$(cpu_ticks)
  case "$name" in
    flood) wrk -t1 -c"$FLOOD_CONN" -d"$DUR" --timeout 10s -s "$ROOT/bench/wrk/flood.lua" "$BASE/connect/token" > "$f.wrk" 2>&1 & ;;
    connflood) wrk -t1 -c"$CONN_FLOOD" -d"$DUR" --timeout 10s -H 'Connection: close' "$BASE/health/live" > "$f.wrk" 2>&1 & ;;
  esac
  local load_pid=${!:-}
  [ "$name" = quiet ] && load_pid=""
  sleep 1 # the load is on before the probe starts
  $PY "$ROOT/bench/probe.py" "$BASE" "$DATA/dev-cert.pem" "$at" "$((SECS - 2))" "$RATE" > "$f.probe"
  [ -z "$load_pid" ] || wait "$load_pid" || true
  c1=$(cpu_ticks)
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$name" "$f" "$((c1 - c0))" "$(status_kb VmHWM)" "$(cut -d' ' -f1 /proc/loadavg)" >> "$RUNS"
  echo "  $mode $name: $(tr '\n' ' ' < "$f.probe" | cut -c1-300)"
}

echo "== limited (default PasswordHashing settings)"
start_server _limited
phase limited quiet
phase limited flood
echo "== TLS: openssl s_time -new for ${TLS_SECS}s, then a connection flood"
openssl s_time -connect "127.0.0.1:$PORT" -new -time "$TLS_SECS" > "$RAW/s_time.txt" 2>&1 || true
grep -E 'connections' "$RAW/s_time.txt" | head -2 | sed 's/^/  /'
phase limited connflood
stop_server

echo "== unlimited (every attempt hashed at once, as before the limit)"
start_server _unlimited Portcullis__PasswordHashing__MaxConcurrent=1024 Portcullis__PasswordHashing__QueueLimit=10000 \
  Portcullis__PasswordHashing__QueueTimeout=00:00:30
phase unlimited quiet
phase unlimited flood
stop_server
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$META"

REPORT="$RESULTS/$(date -u +%Y-%m-%d-%H%M)-flood.md"
$PY - "$META" "$RUNS" "$RAW/s_time.txt" "$(getconf CLK_TCK)" "$SECS" > "$REPORT" <<'PY'
import json, re, sys
meta, runs, s_time, hz, secs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
per_request = {}
print("# Login flood and TLS connection flood (bench/flood.sh)\n")
for line in open(meta):
    k, _, v = line.strip().partition("=")
    print(f"- {k}: {v}")
print("\n| server | phase | /health/live p50 / p95 / max ms | /api/me p50 / p95 / max ms | probe non-200 | load answers | load latency | server CPU | peak RSS |")
print("|---|---|---|---|---|---|---|---|---|")
for row in open(runs):
    mode, phase, f, ticks, hwm, load = row.rstrip("\n").split("\t")
    probes = {}
    for l in open(f + ".probe"):
        p = json.loads(l); probes[p["path"]] = p
    def cell(p): return f"{p['p50_ms']} / **{p['p95_ms']}** / {p['max_ms']}"
    bad = sum(n for path in probes.values() for s, n in path["statuses"].items() if s != "200") + sum(p["errors"] for p in probes.values())
    answers = latency = "—"
    try:
        w = open(f + ".wrk").read()
        st = dict(re.findall(r"status (\d+) (\d+)", w))
        rps = re.search(r"Requests/sec:\s+([\d.]+)", w)
        total = re.search(r"(\d+) requests in", w)
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(st.items())) or (f"{total.group(1)} requests" if total else "none")
        if rps: answers += f" ({float(rps.group(1)):.0f}/s)"
        if total and int(total.group(1)): per_request[(mode, phase)] = int(ticks) / hz * 1000 / int(total.group(1))
        m = re.search(r"latency_ms p50 ([\d.]+) p95 ([\d.]+) p99 ([\d.]+) max ([\d.]+)", w)
        if m: latency = f"p50 {m.group(1)}, p95 {m.group(2)} ms"
        elif rps:
            lat = re.search(r"Latency\s+(\S+)", w); latency = f"mean {lat.group(1)}" if lat else "—"
    except FileNotFoundError:
        pass
    cpu = int(ticks) / hz
    print(f"| {mode} | {phase} | {cell(probes['/health/live'])} | {cell(probes['/api/me'])} | {bad} | {answers} | {latency} | {cpu:.1f} s of {secs} s | {int(hwm) / 1024:.0f} MB |")
for (mode, phase), ms in per_request.items():
    print(f"\n{mode} {phase}: {ms:.2f} ms of server CPU per request (all answers included).")
st = open(s_time).read()
user = re.search(r"(\d+) connections in ([\d.]+)s; ([\d.]+) connections/user sec", st)
wall = re.search(r"(\d+) connections in (\d+) real seconds", st)
if user and wall:
    print(f"\n`openssl s_time -new` (one client, a full handshake per connection, TLS 1.3): {user.group(1)} connections in "
          f"{wall.group(2)} s wall clock ({int(user.group(1)) / int(wall.group(2)):.0f}/s; {user.group(3)}/s of the client's CPU).")
else:
    print("\n`openssl s_time` gave no result: " + st.strip()[-300:])
PY
cat "$REPORT"
echo "report -> $REPORT (raw output in $SCRATCH)"
