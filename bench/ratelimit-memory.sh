#!/usr/bin/env bash
# bench/ratelimit-memory.sh - memory of the rate limiter with many distinct partition keys.
#
#   ./bench/ratelimit-memory.sh              # 1,000,000 distinct client IPs, ~2-3 minutes
#   KEYS=100000 WINDOW=20 IDLE_WAIT=60 ./bench/ratelimit-memory.sh
#
# Runs `Portcullis.Bench ratelimit` (bench/Portcullis.Bench) in its own process: every key makes one request through the real
# RateLimitRegistry and in-process store (a per-IP `anonymous` policy of 100 per WINDOW seconds, fixed window, so
# every partition stays live until the window ends, and the global cap, as the before-authentication phase runs them). Prints JSON: managed heap and RSS before, after creating the
# partitions, and once the library's idle eviction (10 s idle, 100 ms heartbeat) has run; bytes per key.
# Nothing is served; no port is opened; nothing is written but the report line on stdout.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
KEYS=${KEYS:-1000000}
IDLE_WAIT=${IDLE_WAIT:-150}
WINDOW=${WINDOW:-60}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  dotnet build "$ROOT/bench/Portcullis.Bench/Portcullis.Bench.csproj" -c Release -nologo -v q >/dev/null
fi
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cpus" >&2
# Bounded: the command itself stops waiting for eviction after IDLE_WAIT seconds; timeout is the backstop.
timeout 900 "$ROOT/bench/Portcullis.Bench/bin/Release/net10.0/Portcullis.Bench" ratelimit --keys "$KEYS" --idle-wait "$IDLE_WAIT" --window "$WINDOW"
