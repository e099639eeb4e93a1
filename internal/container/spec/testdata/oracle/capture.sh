#!/bin/bash
# Compatibility oracle for package spec: runs a private dockerd (Debian's
# docker.io, /usr/sbin/dockerd) in a private network namespace, creates and
# starts containers with the docker CLI options listed in cases.txt, and
# saves, per case, `docker inspect` (<name>.inspect.json) and the OCI
# config.json dockerd handed to runc (<name>.config.json) into OUT.
# TestDockerdOracle then generates berth's spec from each inspect and
# compares it with dockerd's.
#
#   sudo internal/container/spec/testdata/oracle/capture.sh OUT
#   BERTH_SPEC_ORACLE=OUT go test ./internal/container/spec -run Oracle
#
# Needs root and a busybox rootfs tar on stdin-able path ROOTFS (default:
# the berth test fixture's, found under /tmp/berth-fixture-*/rootfs).
# Everything it starts is stopped and its temporary directory removed on
# exit.
set -euo pipefail
OUT=${1:?usage: capture.sh OUT}
HERE=$(cd "$(dirname "$0")" && pwd)
if [ -z "${ORACLE_NETNS:-}" ]; then exec unshare --net env ORACLE_NETNS=1 "$0" "$@"; fi
ip link set lo up
ROOTFS=${ROOTFS:-$(ls -d /tmp/berth-fixture-*/rootfs | head -1)}
mkdir -p "$OUT"
D=$(mktemp -d /tmp/bso.XXXXXX) # short: dockerd's socket paths must fit
DPID=
cleanup() {
	set +e
	if [ -n "$DPID" ]; then
		kill -TERM "$DPID"
		for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$DPID" 2>/dev/null
	fi
	grep -o " $D[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$D"
}
trap cleanup EXIT
echo '{}' >"$D/daemon.json"
/usr/sbin/dockerd --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
	--pidfile "$D/pid" --bridge=none --iptables=false --ip6tables=false --ip-masq=false --storage-driver overlay2 \
	>"$D/dockerd.log" 2>&1 &
DPID=$!
dk() { docker -H "unix://$D/docker.sock" "$@"; }
for _ in $(seq 100); do dk version >/dev/null 2>&1 && break; sleep 0.2; done
tar -C "$ROOTFS" -c . | dk import - oracle:1 >/dev/null
while read -r name args; do
	case "$name" in ''|'#'*) continue ;; esac
	eval "set -- $args"
	dk create --name "$name" "$@" >/dev/null
	# The bundle exists while the task runs: start, copy, remove.
	if dk start "$name" >/dev/null 2>"$D/err"; then
		id=$(dk inspect -f '{{.Id}}' "$name")
		dk inspect "$name" >"$OUT/$name.inspect.json"
		cp "$D/exec/containerd/daemon/io.containerd.runtime.v2.task/moby/$id/config.json" "$OUT/$name.config.json"
		echo "captured $name"
	else
		echo "skipped $name: $(cat "$D/err")" >&2
	fi
	dk rm -f "$name" >/dev/null
done <"$HERE/cases.txt"
