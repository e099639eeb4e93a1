#!/usr/bin/env bash
# Installs what berth needs to build and test on a fresh Debian machine:
# the Go toolchain is expected at /usr/local/go (or on PATH); Debian
# packages are installed with apt-get when missing. Sourced by run.sh and
# test.sh.
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	echo "berth: run this as root (it creates namespaces, mounts and cgroups)" >&2
	exit 1
fi
export PATH="$PATH:/usr/local/go/bin:/root/go/bin"
if ! command -v go >/dev/null; then
	echo "berth: no Go toolchain found (expected /usr/local/go/bin/go)" >&2
	exit 1
fi

# busybox-static: test and demo root filesystems; runc: the differential
# test, the benchmark baseline and the external-runtime e2e (--runtime runc); libseccomp-dev + gcc: seccomp (cgo);
# hyperfine: benchmarks; procps: `ps` for `berth-runtime ps`;
# docker-compose (1.29, docker-py): e2e's independent Compose client.
need=()
command -v busybox >/dev/null || [ -x /bin/busybox ] || need+=(busybox-static)
command -v runc >/dev/null || need+=(runc)
[ -e /usr/include/seccomp.h ] || need+=(libseccomp-dev)
command -v gcc >/dev/null || need+=(gcc)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v ps >/dev/null || need+=(procps)
command -v docker-compose >/dev/null || need+=(docker-compose)
# git: git build contexts; openssh-client: ssh-agent for RUN --mount=type=ssh tests.
command -v git >/dev/null || need+=(git)
command -v ssh-agent >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
	echo "berth: installing ${need[*]}" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
go mod download
