#!/usr/bin/env bash
# Builds berth's binaries into bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
mkdir -p bin
go build -o bin/ ./cmd/...
