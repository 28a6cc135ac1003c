#!/usr/bin/env bash
# Regenerates the EF Core compiled models (src/Portcullis/Storage/CompiledModels/{Sqlite,Postgres}) that the server
# uses instead of running OnModelCreating at every start. Run it after every model change (entities, PortcullisDb,
# Identity/OpenIddict/Data Protection package updates), together with the migrations for both providers
# (docs/deployment.md). Tests.Storage.CompiledModelTests fails while a compiled model is stale.
#
#   ./scripts/ef-optimize.sh            # Release build, then both providers
set -euo pipefail
cd "$(dirname "$0")/../src/Portcullis"

# Build first, with the current compiled models (the code refers to them), then regenerate from that build, so a
# type that is no longer in the model leaves no stale file behind.
dotnet build -c Release -nologo -v q
for provider in Sqlite Postgres; do
  rm -rf "Storage/CompiledModels/$provider"
  dotnet ef dbcontext optimize --no-build --configuration Release \
    --context "${provider}PortcullisDb" \
    --output-dir "Storage/CompiledModels/$provider" \
    --namespace "Portcullis.Storage.CompiledModels.$provider"
done
rm -f design-time.db design-time.db-shm design-time.db-wal
echo "Regenerated. Build, run the Storage tests (CompiledModelTests) and commit Storage/CompiledModels."
