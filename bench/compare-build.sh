#!/usr/bin/env bash
# Compare `build` side by side: berthd's builder (this checkout, through
# the berth CLI) against a private dockerd 20.10's BuildKit (Debian's
# docker.io, DOCKER_BUILDKIT=1 with Debian's docker CLI), on issue 8's
# reference build: a 2,000-file context, two stages, a few RUN steps (the
# same Dockerfile and files as bench/build_test.go).
#
#   bench/compare-build.sh [N]      # N interleaved repetitions (default 5)
#   BASE=<git rev> bench/compare-build.sh [N]
#                                   # also a second berthd built from <rev>
#                                   # (A/B of a change, same run)
#
# Measured (medians, wall time of the CLI command, context upload included):
#   - cold: `build --no-cache` (the base image present);
#   - cached: an unchanged rebuild, every step a cache hit; also the
#     docker CLI's classic builder (DOCKER_BUILDKIT=0) against berthd;
#   - one change: one source file edited, then a rebuild.
# berth's CLI passes the context directory by reference on a local socket;
# the same builds with BERTH_BUILD_CONTEXT=tar (the context sent as a tar,
# as before and as the docker CLI does) are measured in the same run (A/B).
# RUN steps use --network none on both engines.
#
# With BASE set, berth's three builds also run, interleaved, against a
# second private berthd built from that revision of this repository (git
# archive), and its medians are printed as the A/B baseline.
#
# TMPDIR (default /tmp) holds both engines' data roots and the context:
# this machine's ext4 has no journal, where creating a file costs what
# recent deletions nearby make it cost (docs/benchmarks.md, build); a
# journaled ext4 mounted there measures the engines without that.
#
# Environment: DOCKERD (default /usr/sbin/dockerd), DOCKER20 (the CLI
# used with dockerd, default /usr/bin/docker), DOCKER (the CLI used with
# berthd's classic builder, default /usr/local/bin/docker), BUSYBOX
# (default /bin/busybox, static).
#
# Needs root. Runs in network and mount namespaces of its own (only
# loopback; private mount propagation). On exit it stops berthd and
# dockerd (with its containerd), unmounts what is left under its
# temporary directory and removes it.
set -euo pipefail

N=${1:-${N:-5}}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
DOCKER20=${DOCKER20:-/usr/bin/docker}
DOCKER=${DOCKER:-/usr/local/bin/docker}
BUSYBOX=${BUSYBOX:-/bin/busybox}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "compare-build: $*" >&2; }
. "$REPO_ROOT/bench/lib.sh"
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root"
for b in "$DOCKERD" "$DOCKER20" "$DOCKER" "$BUSYBOX"; do [ -x "$b" ] || die "$b not found"; done
if [ -z "${COMPARE_BUILD_NETNS:-}" ]; then
	exec unshare --net --mount --propagation private env COMPARE_BUILD_NETNS=1 "$0" "$@"
fi
ip link set lo up
[ -S /run/containerd/containerd.sock ] && die "/run/containerd/containerd.sock exists: dockerd would use that containerd"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bcb.XXXXXX")
B=$TMP/b D=$TMP/d BIN=$TMP/bin CTX=$TMP/ctx
BPID= DPID= CPID= B0PID=
BASE=${BASE:-}
B0=$TMP/b0
DCG=bcb-docker-${TMP##*.}

as_berth() { env DOCKER_HOST="unix://$B/s.sock" BERTH_HOST="unix://$B/s.sock" DOCKER_CONFIG="$TMP/dcfg" DOCKER_CLI_HINTS=false "$@"; }
as_docker() { env DOCKER_HOST="unix://$D/docker.sock" DOCKER_CONFIG="$TMP/dcfg" "$@"; }
bt() { as_berth "$BIN/berth" "$@"; }
b0() { env DOCKER_HOST="unix://$B0/s.sock" BERTH_HOST="unix://$B0/s.sock" DOCKER_CONFIG="$TMP/dcfg" "$TMP/bin0/berth" "$@"; } # A/B: berth at $BASE
btt() { as_berth env BERTH_BUILD_CONTEXT=tar "$BIN/berth" "$@"; } # A/B: the context sent as a tar
dk() { as_docker env DOCKER_BUILDKIT=1 "$DOCKER20" "$@"; }
bkc() { as_berth env DOCKER_BUILDKIT=0 "$DOCKER" "$@"; }

cleanup() {
	local status=$?
	trap - EXIT INT TERM HUP
	set +e
	log "cleaning up"
	if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
		ids=$(bt ps -aq 2>/dev/null)
		[ -n "$ids" ] && bt rm -f $ids >/dev/null 2>&1
	fi
	stop_pid "$BPID" 10
	if [ -n "$B0PID" ] && kill -0 "$B0PID" 2>/dev/null; then
		ids=$(b0 ps -aq 2>/dev/null)
		[ -n "$ids" ] && b0 rm -f $ids >/dev/null 2>&1
	fi
	stop_pid "$B0PID" 10
	for p in $(pgrep -x berth-shim); do
		grep -qs "$TMP" /proc/"$p"/cmdline /proc/"$p"/environ && kill -KILL "$p" 2>/dev/null
		ls -l /proc/"$p"/fd 2>/dev/null | grep -q "$TMP" && kill -KILL "$p" 2>/dev/null
	done
	stop_pid "$DPID" 15
	stop_pid "$CPID" 5
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

log "building berth (static)"
mkdir -p "$BIN"
(cd "$REPO_ROOT" && go build -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static' -o "$BIN/" \
	./cmd/berthd ./cmd/berth-shim ./cmd/berth-runtime-init ./cmd/berth)
BERTH_REV=$(cd "$REPO_ROOT" && git rev-parse --short HEAD)
if [ -n "$BASE" ]; then
	log "building berth at $BASE (the A/B baseline)"
	BASE_REV=$(cd "$REPO_ROOT" && git rev-parse --short "$BASE")
	mkdir -p "$TMP/src0" "$TMP/bin0"
	(cd "$REPO_ROOT" && git archive "$BASE_REV") | tar -x -C "$TMP/src0"
	(cd "$TMP/src0" && go build -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static' -o "$TMP/bin0/" \
		./cmd/berthd ./cmd/berth-shim ./cmd/berth-runtime-init ./cmd/berth)
fi

ROOTFS=$TMP/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$ROOTFS/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$ROOTFS/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
echo 'root:x:0:' >"$ROOTFS/etc/group"
mkdir -p "$TMP/dcfg" && echo '{}' >"$TMP/dcfg/config.json"

log "writing the reference context (2,000 files)"
mkdir -p "$CTX"
cat >"$CTX/Dockerfile" <<'EOF'
FROM busybox AS build
ARG SRC=/src
WORKDIR $SRC
COPY . .
RUN find . -type f | wc -l > /count && cat files/0/f0.txt > /first
RUN mkdir /out && cp /count /first /out/

FROM busybox
COPY --from=build /out /app
RUN ls /app > /listing
CMD ["cat", "/app/count"]
EOF
for i in $(seq 0 1999); do
	d=$CTX/files/$((i / 100))
	[ -d "$d" ] || mkdir -p "$d"
	line="file $i"
	printf "$line\n%.0s" {1..20} >"$d/f$i.txt"
done

wait_cli() { for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }

log "starting a private berthd"
mkdir -p "$B"
echo '{}' >"$B/daemon.json"
"$BIN/berthd" --data-root "$B/data" --exec-root "$TMP/bx" -H "unix://$B/s.sock" --pidfile "$B/pid" \
	--config-file "$B/daemon.json" --shim-binary "$BIN/berth-shim" --log-level warn >"$B/berthd.log" 2>&1 &
BPID=$!
wait_cli bt version || { tail -20 "$B/berthd.log" >&2; die "berthd did not start"; }
tar -C "$ROOTFS" -c . | bt import - busybox:latest >/dev/null
if [ -n "$BASE" ]; then
	log "starting a private berthd at $BASE_REV"
	mkdir -p "$B0"
	echo '{}' >"$B0/daemon.json"
	"$TMP/bin0/berthd" --data-root "$B0/data" --exec-root "$TMP/b0x" -H "unix://$B0/s.sock" --pidfile "$B0/pid" \
		--config-file "$B0/daemon.json" --shim-binary "$TMP/bin0/berth-shim" --log-level warn >"$B0/berthd.log" 2>&1 &
	B0PID=$!
	wait_cli b0 version || { tail -20 "$B0/berthd.log" >&2; die "berthd ($BASE_REV) did not start"; }
	tar -C "$ROOTFS" -c . | b0 import - busybox:latest >/dev/null
fi

log "starting a private dockerd"
mkdir -p "$D/data" "$D/exec"
echo '{}' >"$D/daemon.json"
"$DOCKERD" --config-file "$D/daemon.json" --data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
	--pidfile "$D/pid" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
	--storage-driver overlay2 --cgroup-parent "/$DCG" >"$D/dockerd.log" 2>&1 &
DPID=$!
wait_cli as_docker "$DOCKER20" version || { tail -20 "$D/dockerd.log" >&2; die "dockerd did not start"; }
CPID=$(pgrep -P "$DPID" containerd | head -1 || true)
tar -C "$ROOTFS" -c . | as_docker "$DOCKER20" import - busybox:latest >/dev/null
DVER=$(as_docker "$DOCKER20" version --format '{{.Server.Version}}')

ms() { # command... → elapsed ms on stdout; the command's output to a log
	local t0 t1
	t0=$(date +%s%N)
	"$@" >>"$TMP/build.log" 2>&1 || { tail -30 "$TMP/build.log" >&2; die "failed: $*"; }
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000))
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }

# Warm both (the first build of an engine pays one-off costs).
ms bt build --network none -t ref:latest "$CTX" >/dev/null
ms dk build --network none -t ref:latest "$CTX" >/dev/null
[ -z "$BASE" ] || ms b0 build --network none -t ref:latest "$CTX" >/dev/null
for i in $(seq "$N"); do
	log "repetition $i/$N"
	ms bt build --no-cache --network none -t ref:latest "$CTX" >>"$TMP/cold.berth"
	[ -z "$BASE" ] || ms b0 build --no-cache --network none -t ref:latest "$CTX" >>"$TMP/cold.base"
	ms btt build --no-cache --network none -t ref:latest "$CTX" >>"$TMP/cold.berthtar"
	# Cold with no earlier result of its COPY to link files from (a new
	# WORKDIR, so a new parent): what a first build pays.
	ms bt build --no-cache --network none --build-arg SRC=/src$i -t ref:fresh "$CTX" >>"$TMP/cold.berthfresh"
	ms dk build --no-cache --network none -t ref:latest "$CTX" >>"$TMP/cold.docker"
	ms bt build --network none -t ref:latest "$CTX" >>"$TMP/cached.berth"
	[ -z "$BASE" ] || ms b0 build --network none -t ref:latest "$CTX" >>"$TMP/cached.base"
	ms btt build --network none -t ref:latest "$CTX" >>"$TMP/cached.berthtar"
	ms bkc build --network none -t ref:latest "$CTX" >>"$TMP/cached.berthclassic"
	ms dk build --network none -t ref:latest "$CTX" >>"$TMP/cached.docker"
	echo "edit $i" >"$CTX/files/7/f700.txt"
	ms bt build --network none -t ref:latest "$CTX" >>"$TMP/change.berth"
	if [ -n "$BASE" ]; then
		echo "edit $i base" >"$CTX/files/7/f700.txt"
		ms b0 build --network none -t ref:latest "$CTX" >>"$TMP/change.base"
	fi
	echo "edit $i tar" >"$CTX/files/7/f700.txt"
	ms btt build --network none -t ref:latest "$CTX" >>"$TMP/change.berthtar"
	ms dk build --network none -t ref:latest "$CTX" >>"$TMP/change.docker"
done
grep -q "Using cache" "$TMP/build.log" || die "no cache hits logged"
[ "$(bt run --rm ref:latest)" = 2001 ] || die "berth's image counts $(bt run --rm ref:latest) files"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
CB=$(median <"$TMP/cold.berth") CD=$(median <"$TMP/cold.docker")
KB=$(median <"$TMP/cached.berth") KC=$(median <"$TMP/cached.berthclassic") KD=$(median <"$TMP/cached.docker")
OB=$(median <"$TMP/change.berth") OD=$(median <"$TMP/change.docker")
CT=$(median <"$TMP/cold.berthtar") KT=$(median <"$TMP/cached.berthtar") OT=$(median <"$TMP/change.berthtar")
cat <<EOF
berth $BERTH_REV (berth CLI); dockerd $DVER with BuildKit (docker CLI $("$DOCKER20" version --format '{{.Client.Version}}' 2>/dev/null), DOCKER_BUILDKIT=1); $N repetitions, medians, ms; load average $(cut -d' ' -f1-3 /proc/loadavg).

| reference build | target | berth | dockerd 20.10 BuildKit | berth / BuildKit | target met |
|---|---|---|---|---|---|
| cold (--no-cache) | ≤ 0.6× BuildKit | $CB | $CD | $(ratio "$CB" "$CD") | $(awk -v a="$CB" -v b="$CD" 'BEGIN{print (a <= 0.6*b) ? "yes" : "no"}') |
| fully cached rebuild | ≤ 50 ms | $KB (docker CLI, classic: $KC) | $KD | $(ratio "$KB" "$KD") | $(awk -v a="$KB" 'BEGIN{print (a <= 50) ? "yes" : "no"}') |
| one source file changed | ≤ 0.6× BuildKit | $OB | $OD | $(ratio "$OB" "$OD") | $(awk -v a="$OB" -v b="$OD" 'BEGIN{print (a <= 0.6*b) ? "yes" : "no"}') |

Cold with no earlier result of the COPY (berth CLI, a new WORKDIR each time: nothing to link, every file created): $(median <"$TMP/cold.berthfresh") ($(ratio "$(median <"$TMP/cold.berthfresh")" "$CD")× BuildKit's cold); per repetition $(paste -sd' ' "$TMP/cold.berthfresh").

A/B in the same run, berth CLI with the context sent as a tar (BERTH_BUILD_CONTEXT=tar) instead of by reference: cold $CT ($(ratio "$CT" "$CD")× BuildKit), cached $KT, one change $OT ($(ratio "$OT" "$OD")× BuildKit).

Per repetition (ms): cold berth $(paste -sd' ' "$TMP/cold.berth") (tar: $(paste -sd' ' "$TMP/cold.berthtar")), BuildKit $(paste -sd' ' "$TMP/cold.docker"); cached berth $(paste -sd' ' "$TMP/cached.berth") (tar: $(paste -sd' ' "$TMP/cached.berthtar")), docker CLI classic→berth $(paste -sd' ' "$TMP/cached.berthclassic"), BuildKit $(paste -sd' ' "$TMP/cached.docker"); one change berth $(paste -sd' ' "$TMP/change.berth") (tar: $(paste -sd' ' "$TMP/change.berthtar")), BuildKit $(paste -sd' ' "$TMP/change.docker").
EOF
if [ -n "$BASE" ]; then
	C0=$(median <"$TMP/cold.base") K0=$(median <"$TMP/cached.base") O0=$(median <"$TMP/change.base")
	cat <<EOF

A/B in the same run, berth at $BASE_REV (the baseline, its own berthd): cold $C0 ($(ratio "$C0" "$CD")× BuildKit; this checkout / baseline $(ratio "$CB" "$C0")), cached $K0, one change $O0 ($(ratio "$O0" "$OD")× BuildKit; this checkout / baseline $(ratio "$OB" "$O0")). Per repetition (ms): cold $(paste -sd' ' "$TMP/cold.base"), cached $(paste -sd' ' "$TMP/cached.base"), one change $(paste -sd' ' "$TMP/change.base").
EOF
fi
