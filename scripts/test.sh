#!/usr/bin/env bash
# The whole test suite, as the README and .ci/run run it.
# Restores from the lock files, builds everything, checks the EF model has no pending changes, runs every test
# through the real HTTP pipeline (real Kestrel + TLS + SQLite), and ends with the line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

log=$(mktemp -t portcullis-test.XXXXXX)
trap 'rm -f "$log"' EXIT

echo "== restore (locked) and build"
dotnet restore Portcullis.slnx --locked-mode
dotnet build Portcullis.slnx -c Release --no-restore -nologo -v q

echo "== EF model has no pending changes"
dotnet tool restore >/dev/null
if ! dotnet tool run dotnet-ef migrations has-pending-model-changes --project src/Portcullis --no-build --configuration Release >"$log" 2>&1; then
  cat "$log"
  echo "The EF model changed without a migration: run 'dotnet ef migrations add <Name> --project src/Portcullis --output-dir Storage/Migrations/Sqlite'."
  echo "0 passed, 1 failed"
  exit 1
fi

echo "== tests"
set +e
dotnet test --solution Portcullis.slnx -c Release --no-build -- --no-progress 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

# Microsoft.Testing.Platform prints "total: N / failed: N / succeeded: N / skipped: N"; CI reads one plain line.
sum() { grep -E "^\s*$1:\s*[0-9]+" "$log" | awk -F: '{s+=$2} END {print s+0}'; }
passed=$(sum succeeded); failed=$(sum failed); skipped=$(sum skipped)
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi   # a crash or build error counts as a failure
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then echo "No test ran."; failed=1; fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
