#!/usr/bin/env bash
# Builds berth's binaries into bin/ (./cmd/...: berthd, berth, berth-compose,
# which `berth compose` execs from beside berth, berth-shim, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
mkdir -p bin
# Static: the container init is this binary re-executed on every run, and
# a static binary skips the dynamic loader (see docs/benchmarks.md).
go build -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static' -o bin/ ./cmd/...
# The CLIs use no cgo: built with Go's own linker they are static without
# glibc's start-up code, which takes ~1 ms of every berth command here
# (docs/benchmarks.md, "The berth CLI's share of run").
CGO_ENABLED=0 go build -tags netgo,osusergo -o bin/ ./cmd/berth ./cmd/berth-compose
