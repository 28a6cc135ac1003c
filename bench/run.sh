#!/usr/bin/env bash
# bench/run.sh - Portcullis against bare Kestrel and the seed's Flask stack, one machine, one run, side by side.
#
#   ./bench/run.sh                # ~6-8 minutes with the defaults; prints a table, writes bench/results/<date>.md
#   DUR=5s ROUNDS=1 ./bench/run.sh
#
# Servers (all on 127.0.0.1, free ports picked at start):
#   portcullis  Release build, `serve --urls https://127.0.0.1:P --data-dir TMP` on SQLite (HTTPS only)
#   baseline    bench/Baseline: bare Kestrel, GET /api/me returning the same JSON, same TLS settings and certificate
#   flask       ../shared/peers/flask_seed under gunicorn -w 2 (sync), PLAIN HTTP (no TLS), request logging off
# Scenarios: me (GET /api/me with a valid JWT), password, refresh, client_credentials, code (token endpoint: the
# authorization-code grant with PKCE, a pool of never-used codes from bench/codes.py), signin_page (GET /signin),
# throttled (a request rejected with 429: the login throttle on a blocked username; Flask: Flask-Limiter's /limited),
# ratelimited (GET /health/ready refused 429 by a per-IP limit, before authentication: the limiter's refusal path).
#
# gateway: POST /register with a JSON body through a gateway route (JWT, role, rate limit, JSON Schema, YARP) to
# bench/Baseline on plain HTTP ("upstream"), against the same POST sent to that upstream directly.
# The gateway's ceiling, same run: the same POST through a bare YARP forwarder (bench/Baseline --proxy-to: YARP's
# default HttpClient and transforms, nothing else) to the same upstream, over plain HTTP ("yarp") and over TLS with
# Portcullis's certificate and cipher policy ("yarptls"); summarize.py prints gateway/upstream, yarp/upstream and
# gateway/yarptls (what Portcullis's own checks cost on top of the proxy hop).
# Diagnostics: me_anon (401, no token) and me_badsig (401 after a failed ES256 verification) split /api/me's cost.
# Knobs (env): ONLY=regex (run only matching "scenario server" items) DUR=10s WARM=3s ROUNDS=2 CONN=32 LOGIN_CONN=8 HASH_N=20 PEERS=../shared/peers SKIP_BUILD=0
#              SKIP_FLASK=0 OUT=bench/results R2R=1 (0: run the plain `dotnet build` output, JIT only)
#              PORTCULLIS_BENCH_RATELIMITS=off: run Portcullis through `Portcullis.Bench serve-without-rate-limits`
#              (the product's host and pipeline with every endpoint's rate-limit policies removed; the product has no
#              switch for it), to compare `me` with a default run and see what the limiter adds to a protected call
#              (target ≤ 5%): ONLY='^me portcullis' ./bench/run.sh; PORTCULLIS_BENCH_RATELIMITS=off ONLY='^me portcullis' ./bench/run.sh
# Rate-limiter memory with a million partition keys: bench/ratelimit-memory.sh (separate, no server).
# Audit cost of a login (issue 4, target < 5%): `Portcullis.Bench audit` before the servers start, AUDIT_N logins with
#   and AUDIT_N without the audit event, interleaved, on a temporary SQLite file (AUDIT_N=2000; AUDIT_N=0 skips it).
# Every server started here is stopped by PID on exit (trap), even on error or Ctrl-C. wrk runs are bounded by -d.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PEERS=${PEERS:-$ROOT/../shared/peers}
DUR=${DUR:-10s}
WARM=${WARM:-3s}
ROUNDS=${ROUNDS:-2}
CONN=${CONN:-32}
LOGIN_CONN=${LOGIN_CONN:-8}
HASH_N=${HASH_N:-20}
AUDIT_N=${AUDIT_N:-2000}
CODE_POOL=${CODE_POOL:-3000}   # authorization codes made before each `code` run (more than it can spend in DUR)
SKIP_BUILD=${SKIP_BUILD:-0}
R2R=${R2R:-1}
SKIP_FLASK=${SKIP_FLASK:-0}
RESULTS=${OUT:-$ROOT/bench/results}
PY=/usr/bin/python3          # Debian's python: the python3-flask* packages install into it
GUNICORN=/usr/bin/gunicorn
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

SCRATCH=$(mktemp -d /tmp/portcullis-bench.XXXX)
RAW=$SCRATCH/raw; mkdir -p "$RAW" "$RESULTS"
echo "scratch (raw wrk output, server logs) -> $SCRATCH"

declare -A PID=()
cleanup() { # TERM what we started (gunicorn's master stops its workers), then KILL leftovers, by PID only
  local p all=()
  for p in "${PID[@]}"; do all+=("$p" $(ps --ppid "$p" -o pid= 2>/dev/null || true)); done
  for p in "${PID[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${all[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
  done
  PID=()
}
trap cleanup EXIT INT TERM

stop() { # name: stop one server by PID
  local p=${PID[$1]} kids
  kids=$(ps --ppid "$p" -o pid= 2>/dev/null || true)
  kill -TERM "$p" 2>/dev/null || true
  for q in $p $kids; do
    for _ in $(seq 1 50); do kill -0 "$q" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$q" 2>/dev/null && kill -KILL "$q" 2>/dev/null || true
  done
  unset "PID[$1]"
}

# ---------------------------------------------------------------- prerequisites (Debian packages)
need_apt=()
command -v wrk >/dev/null || need_apt+=(wrk)
if [ "$SKIP_FLASK" != 1 ]; then
  [ -x "$GUNICORN" ] || need_apt+=(gunicorn)
  $PY -c 'import flask, flask_jwt_extended, flask_limiter, marshmallow' 2>/dev/null ||
    need_apt+=(python3-flask python3-python-flask-jwt-extended python3-flask-limiter python3-marshmallow)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "missing: ${need_apt[*]} (apt-get install them, or run as root)"; exit 1; }
  echo "installing: ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_apt[@]}"
fi
[ "$SKIP_FLASK" = 1 ] || [ -f "$PEERS/flask_seed/app.py" ] || { echo "no $PEERS/flask_seed (set PEERS= or SKIP_FLASK=1)"; exit 1; }

# ---------------------------------------------------------------- build (Release)
if [ "$SKIP_BUILD" != 1 ]; then
  echo "building Portcullis, bench/Portcullis.Bench and bench/Baseline (Release)"
  (cd "$ROOT" && dotnet build -c Release -nologo -v q > "$SCRATCH/build.log" 2>&1 &&
    dotnet build bench/Baseline -c Release -nologo -v q >> "$SCRATCH/build.log" 2>&1) ||
    { tail -30 "$SCRATCH/build.log"; exit 1; }
fi
PC_DLL=$ROOT/src/Portcullis/bin/Release/net10.0/portcullis.dll
BENCH_DLL=$ROOT/bench/Portcullis.Bench/bin/Release/net10.0/Portcullis.Bench.dll
if [ "$R2R" = 1 ]; then
  # How it is deployed: a ReadyToRun publish (Portcullis.csproj turns it on when a runtime identifier is given).
  # The RID-specific lock file goes to the scratch directory so the committed packages.lock.json stays as it is.
  # The bench commands are published the same way, so they (and the limiter-off server) run the same code.
  echo "publishing Portcullis and Portcullis.Bench ReadyToRun (linux-x64, framework-dependent)"
  (cd "$ROOT" && dotnet publish src/Portcullis -c Release -r linux-x64 --self-contained false -nologo -v q \
      -p:NuGetLockFilePath="$SCRATCH/publish.lock.json" -o "$SCRATCH/publish" > "$SCRATCH/publish.log" 2>&1 &&
    dotnet publish bench/Portcullis.Bench -c Release -r linux-x64 --self-contained false -nologo -v q \
      -p:NuGetLockFilePath="$SCRATCH/publish-bench.lock.json" -o "$SCRATCH/publish-bench" >> "$SCRATCH/publish.log" 2>&1) ||
    { tail -30 "$SCRATCH/publish.log"; exit 1; }
  PC_DLL=$SCRATCH/publish/portcullis.dll
  BENCH_DLL=$SCRATCH/publish-bench/Portcullis.Bench.dll
fi
BL_DLL=$ROOT/bench/Baseline/bin/Release/net10.0/Baseline.dll
portcullis() { dotnet "$PC_DLL" "$@"; }
bench() { dotnet "$BENCH_DLL" "$@"; }   # the bench-only commands (bench/Portcullis.Bench)

free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
declare -A PORT=( [portcullis]=$(free_port) [baseline]=$(free_port) [flask]=$(free_port) [upstream]=$(free_port) )
declare -A BASE=( [portcullis]="https://127.0.0.1:${PORT[portcullis]}" [baseline]="https://127.0.0.1:${PORT[baseline]}"
                  [flask]="http://127.0.0.1:${PORT[flask]}" [upstream]="http://127.0.0.1:${PORT[upstream]}" )
PORT[yarp]=$(free_port); PORT[yarptls]=$(free_port)   # bare YARP forwarders to the upstream (gateway ceiling)
BASE[yarp]="http://127.0.0.1:${PORT[yarp]}"; BASE[yarptls]="https://127.0.0.1:${PORT[yarptls]}"
DATA=$SCRATCH/data
CA=(--cacert "$DATA/dev-cert.pem")

# The bench relaxes only the per-IP login cap (every request comes from 127.0.0.1). The per-account backoff
# stays on: only failed logins feed it, and only the "throttled" scenario fails logins, for a username that
# is not used by any other scenario; its first backoff is 10 minutes so it stays blocked for the whole run.
export Portcullis__LoginThrottle__AttemptsPerIp=100000000
export Portcullis__LoginThrottle__FirstBackoff=00:10:00
export Portcullis__LoginThrottle__MaxBackoff=00:15:00
# The request rate limiter stays in the path (its cost is part of every protected call) with limits no single
# load generator on 127.0.0.1 reaches: every policy a fixed window of 100M per minute per its usual partition.
for policy in authenticated:User credentials:ClientIp anonymous:ClientIp; do
  name=${policy%%:*}; part=${policy#*:}
  export "Portcullis__RateLimits__Policies__${name}__Algorithm=FixedWindow"
  export "Portcullis__RateLimits__Policies__${name}__PermitLimit=100000000"
  export "Portcullis__RateLimits__Policies__${name}__Window=00:01:00"
  export "Portcullis__RateLimits__Policies__${name}__PartitionBy=${part}"
done
export Portcullis__RateLimits__GlobalConcurrencyLimit=100000
# The "ratelimited" scenario: /health/ready (which nothing else here uses) admits one request per client IP per
# day, so every measured request is refused 429 by the per-IP phase, before authentication.
export Portcullis__RateLimits__Policies__benchlimited__Algorithm=FixedWindow
export Portcullis__RateLimits__Policies__benchlimited__PermitLimit=1
export Portcullis__RateLimits__Policies__benchlimited__Window=1.00:00:00
export Portcullis__RateLimits__Policies__benchlimited__PartitionBy=ClientIp
export Portcullis__RateLimits__Routes__0__Route=/health/ready
export Portcullis__RateLimits__Routes__0__Policies=benchlimited
RATELIMITS=${PORTCULLIS_BENCH_RATELIMITS:-on}
case "$RATELIMITS" in
  on|off) ;;  # off: start_portcullis serves through Portcullis.Bench serve-without-rate-limits
  *) echo "PORTCULLIS_BENCH_RATELIMITS must be on or off" >&2; exit 2 ;;
esac
# The gateway route: role user, the authenticated rate limit, a JSON Schema, to the plain-HTTP upstream.
cat > "$SCRATCH/register.schema.json" <<'JSON'
{ "type": "object", "additionalProperties": false, "required": ["username", "email"],
  "properties": { "username": { "type": "string", "minLength": 3, "maxLength": 32 }, "email": { "type": "string", "maxLength": 254 },
                  "age": { "type": "integer", "minimum": 13 } } }
JSON
export Portcullis__Gateway__Routes__0__Name=bench-register Portcullis__Gateway__Routes__0__Match=/register \
  Portcullis__Gateway__Routes__0__Methods__0=POST Portcullis__Gateway__Routes__0__Upstream="${BASE[upstream]}" \
  Portcullis__Gateway__Routes__0__Require__Roles__0=user Portcullis__Gateway__Routes__0__RateLimits__0=authenticated \
  Portcullis__Gateway__Routes__0__Body__MaxBytes=4096 Portcullis__Gateway__Routes__0__Body__Schema="$SCRATCH/register.schema.json"
GW_BODY='{"username":"bench-user","email":"bench@example.com","age":30}'

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
wait_ready() { # name url curl-args... -> prints ms from $T0 to the first 200
  local name=$1 url=$2; shift 2
  for _ in $(seq 1 600); do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$@" "$url" 2>/dev/null)" = 200 ]; then
      echo $(( $(now_ms) - T0 )); return 0
    fi
    kill -0 "${PID[$name]}" 2>/dev/null || { echo "server $name exited" >&2; cat "$RAW/server_$name.log" >&2; return 1; }
    sleep 0.02
  done
  echo "server $name not ready after 600 polls" >&2; return 1
}
start_portcullis() { # log-suffix
  T0=$(now_ms)
  if [ "$RATELIMITS" = off ]; then
    dotnet "$BENCH_DLL" serve-without-rate-limits --urls "${BASE[portcullis]}" --data-dir "$DATA" > "$RAW/server_portcullis$1.log" 2>&1 &
  else
    dotnet "$PC_DLL" serve --urls "${BASE[portcullis]}" --data-dir "$DATA" > "$RAW/server_portcullis$1.log" 2>&1 &
  fi
  PID[portcullis]=$!
}
rss_kb() { # name field(VmRSS|VmHWM): sum over the process and its children (gunicorn workers)
  local p sum=0 v
  for p in ${PID[$1]} $(ps --ppid "${PID[$1]}" -o pid= 2>/dev/null || true); do
    v=$(awk -v f="$2:" '$1==f{print $2}' "/proc/$p/status" 2>/dev/null || true); sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

META=$SCRATCH/meta.txt
meta() { echo "$1=$2" >> "$META"; }
: > "$META"
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta machine "$(nproc) cpus, $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), debian $(cat /etc/debian_version)"
meta versions "dotnet $(dotnet --version); wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'); $($GUNICORN --version 2>/dev/null || echo 'no gunicorn'); commit $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo '+dirty')"
meta load_start "$(cut -d' ' -f1-3 /proc/loadavg)"
meta knobs "DUR=$DUR WARM=$WARM ROUNDS=$ROUNDS CONN=$CONN LOGIN_CONN=$LOGIN_CONN R2R=$R2R (wrk -t1) rate limits $RATELIMITS"

# ---------------------------------------------------------------- one password hash (the token endpoint's hasher)
echo "== password hash x$HASH_N (load $(cut -d' ' -f1 /proc/loadavg))"
HASH_JSON=$(bench hash --count "$HASH_N" --data-dir "$SCRATCH/hash")
echo "  $HASH_JSON"
meta hash "$HASH_JSON"
meta flask_hash_ms "$([ "$SKIP_FLASK" = 1 ] && echo n/a || (cd "$PEERS/flask_seed" && $PY hash_bench.py "$HASH_N"))"

# ---------------------------------------------------------------- audit writes of one login (A/B, no server running)
if [ "$AUDIT_N" != 0 ]; then
  echo "== audit writes per login, $AUDIT_N logins with and $AUDIT_N without (load $(cut -d' ' -f1 /proc/loadavg))"
  AUDIT_JSON=$(bench audit --count "$AUDIT_N" | tail -n 1)
  echo "$AUDIT_JSON"
  meta audit "$AUDIT_JSON"
fi

# ---------------------------------------------------------------- first start (empty data directory)
echo "== first start on an empty data directory (creates database, keys, certificate)"
start_portcullis _first
R=$(wait_ready portcullis "${BASE[portcullis]}/health/live" -k) || exit 1; meta ready_first_ms "$R"
stop portcullis

# ---------------------------------------------------------------- seed (CLI, offline against the database)
echo "== seeding with the CLI"
PASSWORD='Kx7q-load-test-2026-long-phrase'
printf '%s\n' "$PASSWORD" | portcullis users add --username bench --password-stdin --data-dir "$DATA" > "$RAW/seed.log"
CLIENT_JSON=$(portcullis clients add --name bench-service --scopes bench --json --data-dir "$DATA")
CLIENT_ID=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$CLIENT_JSON")
CLIENT_SECRET=$($PY -c 'import json,sys,urllib.parse as u; print(u.quote(json.loads(sys.argv[1])["client_secret"], safe=""))' "$CLIENT_JSON")
# A first-party single-page app for the code exchange (no consent page, PKCE, no secret).
SPA_REDIRECT=https://bench.example/callback
SPA_JSON=$(portcullis clients add --name bench-spa --type public --first-party --redirect-uri "$SPA_REDIRECT" --scopes openid --json --data-dir "$DATA")
SPA_ID=$($PY -c 'import json,sys; print(json.loads(sys.argv[1])["client_id"])' "$SPA_JSON")
PKCE_VERIFIER=bench-verifier-0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFG
PKCE_CHALLENGE=$($PY -c 'import base64,hashlib,sys; print(base64.urlsafe_b64encode(hashlib.sha256(sys.argv[1].encode()).digest()).decode().rstrip("="))' "$PKCE_VERIFIER")

# ---------------------------------------------------------------- start servers
echo "== starting servers"
start_portcullis ""
R=$(wait_ready portcullis "${BASE[portcullis]}/health/live" "${CA[@]}") || exit 1; meta ready_ms "$R"
T0=$(now_ms)
dotnet "$BL_DLL" --urls "${BASE[baseline]}" --cert "$DATA/dev-cert.pem" --key "$DATA/dev-key.pem" > "$RAW/server_baseline.log" 2>&1 &
PID[baseline]=$!
R=$(wait_ready baseline "${BASE[baseline]}/health/live" "${CA[@]}") || exit 1; meta baseline_ready_ms "$R"
T0=$(now_ms)
dotnet "$BL_DLL" --urls "${BASE[upstream]}" --cert "$DATA/dev-cert.pem" --key "$DATA/dev-key.pem" > "$RAW/server_upstream.log" 2>&1 &
PID[upstream]=$!
R=$(wait_ready upstream "${BASE[upstream]}/health/live") || exit 1
for proxy in yarp yarptls; do  # bare YARP, plain HTTP and TLS, both to the plain-HTTP upstream
  dotnet "$BL_DLL" --urls "${BASE[$proxy]}" --cert "$DATA/dev-cert.pem" --key "$DATA/dev-key.pem" --proxy-to "${BASE[upstream]}" \
    > "$RAW/server_$proxy.log" 2>&1 &
  PID[$proxy]=$!
done
R=$(wait_ready yarp "${BASE[yarp]}/health/live") || exit 1
R=$(wait_ready yarptls "${BASE[yarptls]}/health/live" "${CA[@]}") || exit 1
if [ "$SKIP_FLASK" != 1 ]; then
  T0=$(now_ms)
  (cd "$PEERS/flask_seed" && LOG_REQUESTS=0 exec $GUNICORN -w 2 -b "127.0.0.1:${PORT[flask]}" app:app) > "$RAW/server_flask.log" 2>&1 &
  PID[flask]=$!
  R=$(wait_ready flask "${BASE[flask]}/hello") || exit 1; meta flask_ready_ms "$R"
fi
echo "  up: $(for n in "${!PID[@]}"; do printf '%s=%s(pid %s) ' "$n" "${BASE[$n]}" "${PID[$n]}"; done)"

# ---------------------------------------------------------------- smoke checks (behaviour first, then speed)
FAIL=0
check() { if [ "$2" = "$3" ]; then printf '  ok   %-44s %s\n' "$1" "$3"; else printf '  FAIL %-44s expected %s got %s\n' "$1" "$2" "$3"; FAIL=1; fi; }
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
PW_BODY="grant_type=password&client_id=portcullis&username=bench&password=$PASSWORD&scope=openid%20offline_access"
CC_BODY="grant_type=client_credentials&client_id=$CLIENT_ID&client_secret=$CLIENT_SECRET&scope=bench"
BAD_BODY="grant_type=password&client_id=portcullis&username=bench-throttled&password=wrong-password-for-the-bench"
FLASK_LOGIN='{"username":"admin","password":"admin-password"}'
json_field() { $PY -c 'import json,sys; print(json.load(sys.stdin).get(sys.argv[1],""))' "$1"; }
pc_token() { curl -s "${CA[@]}" -X POST --data "$PW_BODY" "${BASE[portcullis]}/connect/token" | json_field "$1"; }
refresh_pool() { # file n: n fresh refresh tokens from n password grants
  : > "$1"
  for _ in $(seq 1 "$2"); do pc_token refresh_token >> "$1"; done
  [ "$(grep -c . "$1")" = "$2" ] || { echo "could not get $2 refresh tokens" >&2; return 1; }
}
code_pool() { # file n: n fresh authorization codes (they live 60 s: made right before each run)
  $PY "$ROOT/bench/codes.py" "${BASE[portcullis]}" "$DATA/dev-cert.pem" bench "$PASSWORD" "$SPA_ID" "$SPA_REDIRECT" "$PKCE_CHALLENGE" "$2" > "$1"
  [ "$(grep -c . "$1")" = "$2" ] || { echo "could not get $2 codes" >&2; return 1; }
}
echo "== smoke checks"
AT=$(pc_token access_token)
check "portcullis password grant -> access token" yes "$([ -n "$AT" ] && echo yes || echo no)"
check "portcullis GET /api/me with token" 200 "$(code "${CA[@]}" -H "Authorization: Bearer $AT" "${BASE[portcullis]}/api/me")"
check "portcullis GET /api/me without token" 401 "$(code "${CA[@]}" "${BASE[portcullis]}/api/me")"
code "${CA[@]}" "${BASE[portcullis]}/health/ready" >/dev/null  # spends the day's one permit
[ "$RATELIMITS" = off ] || check "portcullis GET /health/ready over its limit" 429 "$(code "${CA[@]}" "${BASE[portcullis]}/health/ready")"
check "portcullis client_credentials grant" 200 "$(code "${CA[@]}" -X POST --data "$CC_BODY" "${BASE[portcullis]}/connect/token")"
refresh_pool "$SCRATCH/rt_smoke" 1
RT=$(cat "$SCRATCH/rt_smoke")
check "portcullis refresh_token grant" 200 "$(code "${CA[@]}" -X POST --data "grant_type=refresh_token&client_id=portcullis&refresh_token=$RT" "${BASE[portcullis]}/connect/token")"
check "portcullis refresh_token reused -> rejected" 400 "$(code "${CA[@]}" -X POST --data "grant_type=refresh_token&client_id=portcullis&refresh_token=$RT" "${BASE[portcullis]}/connect/token")"
for _ in 1 2 3 4 5 6; do code "${CA[@]}" -X POST --data "$BAD_BODY" "${BASE[portcullis]}/connect/token" > /dev/null; done
check "portcullis blocked username -> 429" 429 "$(code "${CA[@]}" -X POST --data "$BAD_BODY" "${BASE[portcullis]}/connect/token")"
check "portcullis gateway POST /register (role, schema)" 200 "$(code "${CA[@]}" -H "Authorization: Bearer $AT" -H 'Content-Type: application/json' -d "$GW_BODY" "${BASE[portcullis]}/register")"
check "portcullis gateway POST /register invalid body" 400 "$(code "${CA[@]}" -H "Authorization: Bearer $AT" -H 'Content-Type: application/json' -d '{"age":1}' "${BASE[portcullis]}/register")"
check "portcullis gateway POST /register no token" 401 "$(code "${CA[@]}" -H 'Content-Type: application/json' -d "$GW_BODY" "${BASE[portcullis]}/register")"
check "upstream POST /register direct" 200 "$(code -H 'Content-Type: application/json' -d "$GW_BODY" "${BASE[upstream]}/register")"
check "bare YARP (HTTP) POST /register" 200 "$(code -H 'Content-Type: application/json' -d "$GW_BODY" "${BASE[yarp]}/register")"
check "bare YARP (TLS) POST /register" 200 "$(code "${CA[@]}" -H 'Content-Type: application/json' -d "$GW_BODY" "${BASE[yarptls]}/register")"
code_pool "$SCRATCH/code_smoke" 1
CODE_BODY="grant_type=authorization_code&client_id=$SPA_ID&redirect_uri=$SPA_REDIRECT&code_verifier=$PKCE_VERIFIER&code=$(cat "$SCRATCH/code_smoke")"
check "portcullis authorization_code grant (PKCE)" 200 "$(code "${CA[@]}" -X POST --data "$CODE_BODY" "${BASE[portcullis]}/connect/token")"
check "portcullis authorization code replayed -> rejected" 400 "$(code "${CA[@]}" -X POST --data "$CODE_BODY" "${BASE[portcullis]}/connect/token")"
check "portcullis GET /signin" 200 "$(code "${CA[@]}" "${BASE[portcullis]}/signin")"
check "baseline GET /api/me" 200 "$(code "${CA[@]}" "${BASE[baseline]}/api/me")"
if [ "$SKIP_FLASK" != 1 ]; then
  FT=$(curl -s -X POST -H 'Content-Type: application/json' -d "$FLASK_LOGIN" "${BASE[flask]}/login" | json_field access_token)
  check "flask GET /me with token" 200 "$(code -H "Authorization: Bearer $FT" "${BASE[flask]}/me")"
  for _ in $(seq 1 12); do code "${BASE[flask]}/limited" > /dev/null; done  # 5/minute per worker, 2 workers
  check "flask GET /limited after 12 -> 429" 429 "$(code "${BASE[flask]}/limited")"
fi
[ "$FAIL" = 0 ] || { echo "smoke checks failed; not measuring"; exit 1; }

for n in "${!PID[@]}"; do meta "idle_rss_kb_$n" "$(rss_kb "$n" VmRSS)"; done

# ---------------------------------------------------------------- load
RUNS=$SCRATCH/runs.tsv; : > "$RUNS"; : > "$SCRATCH/cpu.tsv"
cpu_ticks() { # name: utime+stime clock ticks of the process and its children (0 if not running here)
  local p sum=0 v
  [ -n "${PID[$1]:-}" ] || { echo 0; return; }
  for p in ${PID[$1]} $(ps --ppid "${PID[$1]}" -o pid= 2>/dev/null || true); do
    v=$(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || true); sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}
run() { # round scenario server
  local round=$1 scenario=$2 server=$3 dur=$DUR conn=$CONN path script tok="" body="" ctype="" rtfile="" codefile=""
  [ "$round" = warm ] && dur=$WARM
  case "$scenario/$server" in
    me/portcullis) path=/api/me; script=get.lua; tok=$(pc_token access_token) ;;
    me/baseline)   path=/api/me; script=get.lua; tok=$AT ;;
    me/flask)      path=/me; script=get.lua; tok=$FT ;;
    me_anon/portcullis) path=/api/me; script=get.lua ;;   # 401 before any crypto: the pipeline alone
    me_badsig/portcullis) path=/api/me; script=get.lua      # 401 after a full ES256 verification that fails
                          tok=$(pc_token access_token); tok="${tok%??????}AAAAAA" ;;
    password/portcullis) path=/connect/token; script=post.lua; body=$PW_BODY; conn=$LOGIN_CONN ;;
    password/flask) path=/login; script=post.lua; body=$FLASK_LOGIN; ctype=application/json; conn=$LOGIN_CONN ;;
    refresh/portcullis) path=/connect/token; script=refresh.lua; rtfile=$SCRATCH/rt_${round}
                        refresh_pool "$rtfile" $((conn + 8)) ;;  # spares: a token wrk loses must not starve a connection
    client_credentials/portcullis) path=/connect/token; script=post.lua; body=$CC_BODY ;;
    code/portcullis) path=/connect/token; script=code.lua; conn=$LOGIN_CONN; codefile=$SCRATCH/codes_${round}
                     code_pool "$codefile" "$CODE_POOL" ;;
    signin_page/portcullis) path=/signin; script=get.lua ;;
    throttled/portcullis) path=/connect/token; script=post.lua; body=$BAD_BODY ;;
    throttled/flask) path=/limited; script=get.lua ;;
    ratelimited/portcullis) path=/health/ready; script=get.lua ;;   # 429 from the per-IP phase
    gateway/portcullis) path=/register; script=post.lua; body=$GW_BODY; ctype=application/json; tok=$(pc_token access_token) ;;
    gateway/upstream)   path=/register; script=post.lua; body=$GW_BODY; ctype=application/json ;;
    gateway/yarp|gateway/yarptls) path=/register; script=post.lua; body=$GW_BODY; ctype=application/json ;;
  esac
  local f="$RAW/wrk_${scenario}_${server}_r${round}.txt" load c0 c1 u0 u1
  load=$(cut -d' ' -f1 /proc/loadavg)
  c0=$(cpu_ticks "$server"); u0=$(cpu_ticks upstream)
  TOKEN=$tok BODY=$body CONTENT_TYPE=${ctype:-application/x-www-form-urlencoded} RT_FILE=$rtfile \
    CODE_FILE=$codefile CODE_CLIENT_ID=${SPA_ID:-} REDIRECT_URI=${SPA_REDIRECT:-} VERIFIER=${PKCE_VERIFIER:-} \
    wrk -t1 -c"$conn" -d"$dur" --timeout 10s --latency -s "$ROOT/bench/wrk/$script" "${BASE[$server]}$path" > "$f" 2>&1 || true
  c1=$(cpu_ticks "$server"); u1=$(cpu_ticks upstream)
  [ "$round" = warm ] && return 0
  [ -z "$rtfile" ] || echo "Exhausted pool requests: $(cat "$rtfile.exhausted" 2>/dev/null | wc -l)" >> "$f"
  [ -z "$codefile" ] || echo "Exhausted pool requests: $(cat "$codefile.exhausted" 2>/dev/null | wc -l)" >> "$f"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$scenario" "$server" "$conn" "$load" "$f" >> "$RUNS"
  # CPU time of the serving process (and of the gateway's upstream) over the run, for CPU-per-request figures
  printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$scenario" "$server" "$((c1 - c0))" "$((u1 - u0))" >> "$SCRATCH/cpu.tsv"
  printf '  r%s %-18s %-10s c%-3s %s\n' "$round" "$scenario" "$server" "$conn" "$(grep -h 'Requests/sec' "$f" | tr -s ' ')"
}
PLAN=("me portcullis" "me baseline" "password portcullis" "refresh portcullis" "client_credentials portcullis"
      "code portcullis" "signin_page portcullis"
      "throttled portcullis" "gateway portcullis" "gateway upstream")
PLAN+=("gateway yarp" "gateway yarptls")   # the gateway's ceiling: bare YARP to the same upstream
[ "$SKIP_FLASK" = 1 ] || PLAN+=("me flask" "password flask" "throttled flask")
PLAN+=("me_anon portcullis" "me_badsig portcullis")   # diagnostics: where /api/me's time goes
[ "$RATELIMITS" = off ] || PLAN+=("ratelimited portcullis")  # the rate limiter's refusal path
if [ -n "${ONLY:-}" ]; then  # ONLY=regex keeps matching "scenario server" items, e.g. ONLY='^me'
  kept=(); for item in "${PLAN[@]}"; do [[ $item =~ $ONLY ]] && kept+=("$item"); done; PLAN=("${kept[@]}")
fi
echo "== warm-up ($WARM each)"
for item in "${PLAN[@]}"; do set -- $item; run warm "$1" "$2"; done
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r ($DUR each; load $(cut -d' ' -f1-3 /proc/loadavg))"
  for item in "${PLAN[@]}"; do set -- $item; run "$r" "$1" "$2"; done
done
for n in "${!PID[@]}"; do meta "peak_rss_kb_$n" "$(rss_kb "$n" VmHWM)"; done
meta load_end "$(cut -d' ' -f1-3 /proc/loadavg)"

cleanup
trap - EXIT INT TERM
echo "servers stopped"

REPORT="$RESULTS/$(date -u +%Y-%m-%d-%H%M).md"
$PY "$ROOT/bench/summarize.py" "$META" "$RUNS" | tee "$REPORT"
echo "report -> $REPORT (raw output in $SCRATCH)"
