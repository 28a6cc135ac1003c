#!/usr/bin/env bash
# The whole test suite, as the README and .ci/run run it.
# Restores from the lock files, builds everything, checks the EF model has no pending changes for either provider,
# runs every test through the real HTTP pipeline (real Kestrel + TLS) on SQLite and again on a throwaway PostgreSQL
# cluster (scripts/pg-cluster.sh), and ends with one combined line "N passed, N failed".
# A missing PostgreSQL is a failure, never a skip (locally, PORTCULLIS_TEST_PROVIDERS=Sqlite runs SQLite only;
# refused when CI is set).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log=$(mktemp -t portcullis-test.XXXXXX)
PORTCULLIS_PG_DIR=
cleanup() { rm -f "$log"; if [ -n "$PORTCULLIS_PG_DIR" ]; then ./scripts/pg-cluster.sh stop "$PORTCULLIS_PG_DIR" || true; fi; }
trap cleanup EXIT
providers=${PORTCULLIS_TEST_PROVIDERS:-Sqlite Postgres}
if [ "${CI:-}" = "true" ] && [ "$providers" != "Sqlite Postgres" ]; then
  echo "CI runs every provider: PORTCULLIS_TEST_PROVIDERS must not be set."; echo "0 passed, 1 failed"; exit 1
fi

# The TLS refusal tests drive the openssl command (a client that really offers TLS 1.0/1.1): without it they fail,
# so install it the way pg-cluster.sh installs PostgreSQL (the Debian package, as root).
if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing the Debian 'openssl' package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends openssl
  fi
  if ! command -v openssl >/dev/null 2>&1; then
    echo "openssl is missing and could not be installed (run as root, or install the Debian 'openssl' package)."
    echo "0 passed, 1 failed"; exit 1
  fi
fi

# The browser tests (tests/Portcullis.Tests/SignIn) drive the Debian chromium through Playwright at /usr/bin/chromium;
# Playwright's own browser download is never used (no network). Installed like openssl above; missing, they fail.
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing the Debian 'chromium' package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium
  fi
  if [ ! -x /usr/bin/chromium ]; then
    echo "/usr/bin/chromium is missing and could not be installed (run as root, or install the Debian 'chromium' package)."
    echo "0 passed, 1 failed"; exit 1
  fi
fi

echo "== restore (locked) and build"
dotnet restore Portcullis.slnx --locked-mode
dotnet build Portcullis.slnx -c Release --no-restore -nologo -v q

echo "== EF model has no pending changes"
dotnet tool restore >/dev/null
for context in SqlitePortcullisDb:Sqlite PostgresPortcullisDb:Postgres; do
  if ! dotnet tool run dotnet-ef migrations has-pending-model-changes --project src/Portcullis --no-build --configuration Release \
      --context "${context%%:*}" >"$log" 2>&1; then
    cat "$log"
    echo "The EF model changed without a migration for ${context#*:}: run 'dotnet ef migrations add <Name> --project src/Portcullis --context ${context%%:*} --output-dir Storage/Migrations/${context#*:} --namespace Portcullis.Storage.Migrations.${context#*:}' (for both providers)."
    echo "0 passed, 1 failed"
    exit 1
  fi
done

# Microsoft.Testing.Platform prints "total: N / failed: N / succeeded: N / skipped: N"; CI reads one plain line.
sum() { grep -E "^\s*$1:\s*[0-9]+" "$log" | awk -F: '{s+=$2} END {print s+0}'; }
passed=0; failed=0; skipped=0
for provider in $providers; do
  echo "== tests on $provider"
  if [ "$provider" = Postgres ]; then
    if ! env_lines=$(./scripts/pg-cluster.sh start); then
      echo "PostgreSQL could not be started: the PostgreSQL run counts as failed."
      failed=$((failed + 1)); continue
    fi
    eval "$env_lines"
  fi
  set +e
  PORTCULLIS_TEST_PROVIDER=$provider dotnet test --solution Portcullis.slnx -c Release --no-build -- --no-progress 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  p=$(sum succeeded); f=$(sum failed); k=$(sum skipped)
  if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # a crash or build error counts as a failure
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then echo "No test ran on $provider."; f=1; fi
  if [ "$provider" = Postgres ]; then   # stopped here, so its messages come before the closing line
    ./scripts/pg-cluster.sh stop "$PORTCULLIS_PG_DIR" || true; PORTCULLIS_PG_DIR=
  fi
  echo "$provider: $p passed, $f failed, $k skipped"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + k))
done
if [ "$skipped" -ne 0 ]; then echo "$skipped skipped"; fi
# The closing line, as documented (README, .ci/run): CI reads it.
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
