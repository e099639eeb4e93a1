#!/usr/bin/env bash
# Runs berth's test suite as root on this machine (real namespaces, mounts,
# cgroups). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
go vet ./...
go test -count=1 -timeout 30m ./... 2>&1
