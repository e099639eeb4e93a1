#!/usr/bin/env bash
# Copy-up side by side: berthd (this checkout) against a private dockerd
# 20.10 (Debian's docker.io, with its own containerd), both running the
# same image: busybox plus /data holding FILES files of 4 KiB in
# directories of 100 (default 10,000 files, 40 MB).
#
#   bench/compare-copyup.sh [N]     # N interleaved repetitions (default 5)
#
# For each engine, with the docker CLI, N times each (interleaved):
#   copy:   run --rm -v <new named volume>:/data img true   (copy-up of /data)
#   nocopy: run --rm -v <new named volume>:/data:nocopy img true
# The copy-up cost is median(copy) - median(nocopy); MB/s and files/s
# follow. Volumes are removed between runs, outside the timing.
#
# Needs root. Runs in private network and mount namespaces (unshare), as
# compare-engine.sh. On exit, also on Ctrl-C, it removes its containers
# and volumes, stops both daemons (dockerd stops its containerd),
# unmounts what is left under its directory and removes it.
set -euo pipefail

N=${1:-${N:-5}}
FILES=${FILES:-10000}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
DOCKER=${DOCKER:-/usr/local/bin/docker}
BUSYBOX=${BUSYBOX:-/bin/busybox}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "compare-copyup: $*" >&2; }
. "$REPO_ROOT/bench/lib.sh"
die() { log "$*"; exit 1; }
[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer"
[[ $FILES =~ ^[1-9][0-9]*$ ]] || die "FILES must be a positive integer"
[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$DOCKERD" ] || die "$DOCKERD missing (apt-get install -y docker.io)"
[ -x "$DOCKER" ] || die "$DOCKER (the docker CLI) missing"
ldd "$BUSYBOX" >/dev/null 2>&1 && die "$BUSYBOX is not static (Debian: busybox-static)"
if [ -z "${COMPARE_COPYUP_NS:-}" ]; then
	exec unshare --net --mount --propagation private env COMPARE_COPYUP_NS=1 "$0" "$@"
fi
ip link set lo up
[ -S /run/containerd/containerd.sock ] && die "/run/containerd/containerd.sock exists: dockerd would use that containerd"

TMP=$(mktemp -d /tmp/bcu.XXXXXX)
BIN=$TMP/bin B=$TMP/b D=$TMP/d
BPID= DPID=
DCG=bcu-docker-${TMP##*.}
bk() { env DOCKER_HOST="unix://$B/s.sock" DOCKER_CONFIG="$TMP/dcfg" DOCKER_CLI_HINTS=false "$DOCKER" "$@"; }
dk() { env DOCKER_HOST="unix://$D/docker.sock" DOCKER_CONFIG="$TMP/dcfg" DOCKER_CLI_HINTS=false "$DOCKER" "$@"; }
cleanup() {
	local status=$?
	trap - EXIT INT TERM HUP
	set +e
	log "cleaning up"
	for e in bk dk; do
		ids=$($e ps -aq 2>/dev/null)
		[ -n "$ids" ] && $e rm -f $ids >/dev/null 2>&1
		$e volume prune -af >/dev/null 2>&1
	done
	local shims
	shims=$(pgrep -P "${BPID:-0}" berth-shim 2>/dev/null)
	stop_pid "$BPID" 10
	for p in $shims; do stop_pid "$p" 3; done
	stop_pid "$DPID" 15
	umount_under "$TMP"
	for cg in /sys/fs/cgroup/*/"$DCG"; do
		[ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	rm -rf "$TMP"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

log "building berth"
mkdir -p "$BIN" "$TMP/dcfg" && echo '{}' >"$TMP/dcfg/config.json"
(cd "$REPO_ROOT" && go build -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static' -o "$BIN/" \
	./cmd/berthd ./cmd/berth-shim ./cmd/berth-runtime-init)

log "making the image (busybox + $FILES files under /data)"
ROOTFS=$TMP/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in true sh ls wc; do ln -s busybox "$ROOTFS/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
python3 - "$ROOTFS/data" "$FILES" <<'EOF'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
payload = os.urandom(4096)
for i in range(n):
    d = os.path.join(root, "d%d" % (i // 100))
    if i % 100 == 0:
        os.makedirs(d)
    p = os.path.join(d, "f%d" % (i % 100))
    with open(p, "wb") as f:
        f.write(payload)
    os.chown(p, 1000, 1000)
EOF

wait_cli() { for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
log "starting berthd and dockerd"
mkdir -p "$B" "$D/data" "$D/exec"
echo '{}' >"$B/daemon.json"
echo '{}' >"$D/daemon.json"
"$BIN/berthd" --data-root "$B/data" --exec-root "$TMP/bx" -H "unix://$B/s.sock" --pidfile "$B/pid" \
	--config-file "$B/daemon.json" --shim-binary "$BIN/berth-shim" --log-level warn >"$B/berthd.log" 2>&1 &
BPID=$!
"$DOCKERD" --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
	--pidfile "$D/pid" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
	--storage-driver overlay2 --cgroup-parent "/$DCG" >"$D/dockerd.log" 2>&1 &
DPID=$!
wait_cli bk version || { tail -20 "$B/berthd.log" >&2; die "berthd did not start"; }
wait_cli dk version || { tail -20 "$D/dockerd.log" >&2; die "dockerd did not start"; }
tar -C "$ROOTFS" -c . | bk import - seeded:latest >/dev/null
tar -C "$ROOTFS" -c . | dk import - seeded:latest >/dev/null
rm -rf "$ROOTFS"

ms() { echo $((($(date +%s%N) - $1) / 1000000)); }
declare -A T
timed() { # key engine args...
	local key=$1 e=$2
	shift 2
	local t0
	t0=$(date +%s%N)
	$e "$@" >/dev/null
	T[$key]+="$(ms "$t0") "
}
# A first run of each, untimed (caches, lazy start-up).
for e in bk dk; do
	$e run --rm -v warm:/data seeded true >/dev/null
	$e volume rm warm >/dev/null
done
for ((r = 0; r < N; r++)); do
	log "round $((r + 1))/$N"
	for e in bk dk; do
		timed "$e-copy" $e run --rm --network none -v "cu$r:/data" seeded true
		[ "$($e run --rm -v "cu$r:/data:nocopy" seeded sh -c 'ls /data/d0 | wc -l')" = 100 ] || die "$e: copy-up incomplete"
		timed "$e-nocopy" $e run --rm --network none -v "nc$r:/data:nocopy" seeded true
		$e volume rm "cu$r" "nc$r" >/dev/null
	done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
MB=$(awk -v f="$FILES" 'BEGIN {printf "%.1f", f * 4096 / 1e6}')
echo "| engine | run, copy-up (ms) | run, nocopy (ms) | copy-up (ms) | MB/s | files/s |"
echo "|---|---|---|---|---|---|"
for e in bk dk; do
	c=$(median <<<"${T[$e-copy]}")
	n=$(median <<<"${T[$e-nocopy]}")
	d=$((c - n))
	[ "$d" -gt 0 ] || d=1
	name=berthd
	[ $e = dk ] && name="dockerd $(dk version --format '{{.Server.Version}}')"
	awk -v name="$name" -v c="$c" -v n="$n" -v d="$d" -v mb="$MB" -v f="$FILES" \
		'BEGIN {printf "| %s | %d | %d | %d | %.0f | %.0f |\n", name, c, n, d, mb / (d / 1000), (f + f / 100) / (d / 1000)}'
done
echo
echo "N=$N, $FILES files of 4 KiB ($MB MB) in $((FILES / 100)) directories; medians; docker CLI $("$DOCKER" --version | sed -n 's/^Docker version \([^,]*\).*/\1/p')"
