#!/usr/bin/env bash
# Installs the `portcullis` command: a ReadyToRun publish of src/Portcullis (Release, framework-dependent: it runs on
# the .NET 10 runtime already installed with the SDK) into PREFIX, and a link to its executable in BIN_DIR.
#
#   scripts/install.sh [--prefix DIR] [--bin-dir DIR] [--no-ready-to-run]
#
# Defaults: PREFIX ~/.local/share/portcullis and BIN_DIR ~/.local/bin; as root /opt/portcullis and /usr/local/bin.
# Run it again after pulling to update. Uninstall: rm -rf PREFIX BIN_DIR/portcullis.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if [ "$(id -u)" -eq 0 ]; then
  PREFIX=/opt/portcullis BIN_DIR=/usr/local/bin
else
  PREFIX=$HOME/.local/share/portcullis BIN_DIR=$HOME/.local/bin
fi
R2R=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?--bin-dir needs a directory}; shift 2 ;;
    --no-ready-to-run) R2R=0; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
  esac
done
command -v dotnet >/dev/null 2>&1 || { echo "install.sh: the .NET 10 SDK ('dotnet') is not on PATH" >&2; exit 1; }
# PREFIX is replaced whole on every install: refuse a directory that holds anything but an earlier install.
if [ -d "$PREFIX" ] && [ -n "$(ls -A "$PREFIX")" ] && [ ! -f "$PREFIX/portcullis.dll" ]; then
  echo "install.sh: $PREFIX is not empty and holds no earlier install; choose another --prefix" >&2; exit 1
fi
mkdir -p "$PREFIX" "$BIN_DIR"
PREFIX=$(cd "$PREFIX" && pwd) BIN_DIR=$(cd "$BIN_DIR" && pwd)

case "$(uname -m)" in
  x86_64|amd64) RID=linux-x64 ;;
  aarch64|arm64) RID=linux-arm64 ;;
  *) RID= ; R2R=0 ;;
esac

# Everything the publish writes (obj, bin, the lock file of the runtime-specific restore) goes to a scratch
# directory, so installing never touches the checkout's own build output or its packages.lock.json. Versions stay
# pinned by Directory.Packages.props (central, transitive pinning).
SCRATCH=$(mktemp -d -t portcullis-install.XXXXXX)
trap 'rm -rf "$SCRATCH"' EXIT
publish() {
  dotnet publish "$ROOT/src/Portcullis/Portcullis.csproj" -c Release -nologo -v q --artifacts-path "$SCRATCH/artifacts" \
    -p:NuGetLockFilePath="$SCRATCH/packages.lock.json" -p:RestoreLockedMode=false -o "$SCRATCH/out" "$@" > "$SCRATCH/publish.log" 2>&1
}
started=$(date +%s)
kind=
if [ "$R2R" = 1 ]; then
  echo "publishing Portcullis (Release, ReadyToRun, $RID, framework-dependent); this takes one to a few minutes…"
  # ReadyToRun needs the runtime packs for $RID from the configured NuGet source; without them, plain IL.
  if publish -r "$RID" --self-contained false -p:PublishReadyToRun=true; then
    kind="ReadyToRun ($RID)"
  else
    echo "ReadyToRun publish failed (the $RID runtime packs may be unavailable from the NuGet source); last lines:"
    tail -5 "$SCRATCH/publish.log" | sed 's/^/  /'
    echo "falling back to a plain (JIT) publish: it works the same and starts a little slower"
    rm -rf "$SCRATCH/out"
  fi
fi
if [ -z "$kind" ]; then
  [ "$R2R" = 1 ] || echo "publishing Portcullis (Release, framework-dependent, no ReadyToRun)…"
  publish || { tail -30 "$SCRATCH/publish.log"; echo "install.sh: dotnet publish failed" >&2; exit 1; }
  kind="plain IL (JIT)"
fi

# Swap the new build in, then link the command.
rm -rf "$PREFIX.old"
mv "$PREFIX" "$PREFIX.old"
mv "$SCRATCH/out" "$PREFIX"
rm -rf "$PREFIX.old"
ln -sfn "$PREFIX/portcullis" "$BIN_DIR/portcullis"
# The executable finds the .NET runtime in its default place or through DOTNET_ROOT; when it cannot (a runtime
# installed elsewhere), the command becomes a two-line script that starts it through the `dotnet` on PATH.
if ! "$BIN_DIR/portcullis" --help >/dev/null 2>&1; then
  rm -f "$BIN_DIR/portcullis"
  printf '#!/bin/sh\nexec dotnet "%s/portcullis.dll" "$@"\n' "$PREFIX" > "$BIN_DIR/portcullis"
  chmod 755 "$BIN_DIR/portcullis"
  "$BIN_DIR/portcullis" --help >/dev/null || { echo "install.sh: the installed command does not run" >&2; exit 1; }
fi

echo "installed Portcullis ($kind, $(( $(date +%s) - started )) s) in $PREFIX"
echo "command: $BIN_DIR/portcullis"
case ":$PATH:" in
  *":$BIN_DIR:"*) echo "$BIN_DIR is on your PATH: run 'portcullis --help'" ;;
  *) echo "$BIN_DIR is NOT on your PATH: add it (e.g. export PATH=\"$BIN_DIR:\$PATH\" in ~/.bashrc) or run $BIN_DIR/portcullis" ;;
esac
