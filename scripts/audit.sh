#!/usr/bin/env bash
# Dependency audit that really runs (issue 9). The package source here serves no vulnerability data, so this
# serves the vendored offline advisories (eng/audit-feed, GitHub Advisory Database, CC-BY-4.0) on 127.0.0.1 and
# points NuGet's auditSources at it through a temporary, git-ignored nuget.config at the repository root.
# Then: a restore that must fail on a deliberately vulnerable package (proves the audit bites), a forced restore
# of the solution (NU1901-NU1904 are errors), the vulnerable/outdated listings for the log, and a CycloneDX SBOM.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

feed=$(mktemp -d /tmp/portcullis-audit-feed.XXXXXX)
scratch=""
cleanup() {
  [ -n "${feed_pid:-}" ] && kill "$feed_pid" 2>/dev/null || true
  rm -rf "$feed" "$root/nuget.config" ${scratch:+"$scratch"}
}
trap cleanup EXIT

port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1]);s.close()')
cp eng/audit-feed/service-index.json eng/audit-feed/index.json eng/audit-feed/nuget-vulnerabilities.json "$feed"/
sed -i "s#__BASE__#http://127.0.0.1:$port#g" "$feed/service-index.json" "$feed/index.json"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$feed" >"$feed/http.log" 2>&1 &
feed_pid=$!
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$port/service-index.json" >/dev/null && break; sleep 0.1; done

cat > nuget.config <<XML
<?xml version="1.0" encoding="utf-8"?>
<!-- Written by scripts/audit.sh for one run; never committed. Package sources stay as the machine configures them. -->
<configuration>
  <auditSources>
    <clear />
    <add key="offline-audit" value="http://127.0.0.1:$port/service-index.json" allowInsecureConnections="true" />
  </auditSources>
</configuration>
XML

echo "== audit: a known-vulnerable package must fail the restore (positive control)"
scratch=$(mktemp -d "$root/.audit-probe.XXXXXX")
cat > "$scratch/Probe.csproj" <<'XML'
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <ManagePackageVersionsCentrally>false</ManagePackageVersionsCentrally>
    <RestorePackagesWithLockFile>false</RestorePackagesWithLockFile>
    <RestoreLockedMode>false</RestoreLockedMode>
  </PropertyGroup>
  <ItemGroup>
    <PackageReference Include="Newtonsoft.Json" Version="12.0.3" />
  </ItemGroup>
</Project>
XML
if dotnet restore "$scratch/Probe.csproj" --force >"$scratch/restore.log" 2>&1; then
  cat "$scratch/restore.log"
  echo "FAIL: Newtonsoft.Json 12.0.3 (GHSA-5crp-9r3c-p9vr) restored without an audit error: the audit is not running."
  exit 1
fi
grep -Eo "NU190[1-4][^[]*" "$scratch/restore.log" | sort -u
grep -qE "error NU190[1-4]" "$scratch/restore.log" || { cat "$scratch/restore.log"; echo "FAIL: the probe failed for another reason"; exit 1; }
echo "ok: the audit turned the vulnerable package into a build error"

echo "== audit: the solution's whole dependency graph (direct and transitive)"
dotnet restore Portcullis.slnx --force ${CI:+--locked-mode}

echo "== dotnet list package --vulnerable --include-transitive"
# Source URLs are left out of the log: only the loopback feed and the machine's own source appear there.
dotnet list Portcullis.slnx package --vulnerable --include-transitive 2>&1 | grep -v "://" | tee "$feed/vulnerable.txt"
if grep -qE "^\s+>\s" "$feed/vulnerable.txt"; then
  echo "FAIL: vulnerable packages listed above"
  exit 1
fi

echo "== dotnet list package --outdated (information only)"
dotnet list Portcullis.slnx package --outdated 2>&1 | grep -v "://" | sed -n '1,60p' || true

echo "== SBOM (CycloneDX)"
dotnet tool restore >/dev/null
mkdir -p artifacts
dotnet tool run dotnet-CycloneDX Portcullis.slnx --output artifacts --filename sbom.cdx.json --json --exclude-test-projects >/dev/null 2>"$feed/sbom.err" \
  || dotnet tool run dotnet-CycloneDX src/Portcullis/Portcullis.csproj --output artifacts --filename sbom.cdx.json --json >/dev/null
test -s artifacts/sbom.cdx.json
echo "SBOM: artifacts/sbom.cdx.json ($(python3 -c 'import json;print(len(json.load(open("artifacts/sbom.cdx.json")).get("components",[])))') components)"
