#!/usr/bin/env bash
# The cost of supervision: N containers each probed by a healthcheck every
# second, against the same N containers without one, and `stats
# --no-stream` over all of them.
#
#   bench/supervision.sh [N]        # N containers (default 100)
#
# Measured, over WINDOW seconds (default 20) once every container is
# running (and, with the healthcheck, healthy):
#   - berthd's CPU (utime+stime from /proc/PID/stat) as % of one core, and
#     its RSS (VmRSS) at the end of the window;
#   - the shims' CPU including their reaped children (cutime+cstime: the
#     runtime's exec of every probe and the probe process itself), summed
#     over the N shims: the whole cost of probing outside berthd;
#   - the probes actually run (from each container's health log: results
#     started within the window), to check the rate is real;
#   - `stats --no-stream` for all N containers through the docker CLI and
#     the berth CLI: median wall time of REPS runs (default 5).
#
# Environment: WINDOW, REPS, INTERVAL (probe interval, default 1s),
# DOCKER (default /usr/local/bin/docker), BUSYBOX (default /bin/busybox,
# static). Needs root. Runs in a network and mount namespace of its own
# (only loopback; no mount leaks). Prints a Markdown table on stdout,
# progress on stderr. On exit, also on Ctrl-C, removes every container,
# stops berthd, kills any shim left and removes its temporary directory.
set -euo pipefail

N=${1:-${N:-100}}
WINDOW=${WINDOW:-20}
REPS=${REPS:-5}
INTERVAL=${INTERVAL:-1s}
DOCKER=${DOCKER:-/usr/local/bin/docker}
BUSYBOX=${BUSYBOX:-/bin/busybox}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "supervision: $*" >&2; }
die() {
	log "$*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing: apt-get install -y busybox-static"
ldd "$BUSYBOX" >/dev/null 2>&1 && die "$BUSYBOX is not static (Debian: busybox-static)"

if [ -z "${SUPERVISION_NETNS:-}" ]; then
	exec unshare --net --mount --propagation private env SUPERVISION_NETNS=1 "$0" "$@"
fi
ip link set lo up

TMP=$(mktemp -d /tmp/bsup.XXXXXX)
BIN=$TMP/bin
BPID=
bk() { DOCKER_HOST=unix://$TMP/s.sock DOCKER_CONFIG=$TMP/dcfg "$DOCKER" "$@"; }
bb() { BERTH_HOST=unix://$TMP/s.sock DOCKER_CONFIG=$TMP/dcfg "$BIN/berth" "$@"; }

shims() { # pids of berth-shim processes that belong to $TMP
	local p
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = berth-shim ] || continue
		if ls -l "$p/fd" 2>/dev/null | grep -q -- "-> $TMP/"; then
			echo "${p#/proc/}"
		fi
	done
}

cleanup() {
	local status=$?
	trap - EXIT INT TERM HUP
	set +e
	log "cleaning up"
	if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
		ids=$(bk ps -aq 2>/dev/null)
		[ -n "$ids" ] && timeout 120 env DOCKER_HOST=unix://$TMP/s.sock DOCKER_CONFIG=$TMP/dcfg "$DOCKER" rm -f $ids >/dev/null 2>&1
		left=$(shims)
		kill -TERM "$BPID"
		wait "$BPID" 2>/dev/null
		for p in $left; do kill -KILL "$p" 2>/dev/null; done
	fi
	for m in $(awk -v t="$TMP" 'index($2, t) == 1 {print $2}' /proc/self/mounts | sort -r); do umount -l "$m"; done
	rm -rf "$TMP"
	exit $status
}
trap cleanup EXIT INT TERM HUP

log "building into $BIN"
mkdir -p "$BIN"
(cd "$REPO_ROOT" && CGO_ENABLED=1 go build -o "$BIN/" ./cmd/berthd ./cmd/berth ./cmd/berth-shim ./cmd/berth-runtime-init ./cmd/berth-init)

ROOTFS=$TMP/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$ROOTFS/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$ROOTFS/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
echo 'root:x:0:' >"$ROOTFS/etc/group"
mkdir -p "$TMP/dcfg" && echo '{}' >"$TMP/dcfg/config.json"
echo '{}' >"$TMP/daemon.json"

"$BIN/berthd" --data-root "$TMP/d" --exec-root "$TMP/x" -H "unix://$TMP/s.sock" \
	--pidfile "$TMP/pid" --config-file "$TMP/daemon.json" --shim-binary "$BIN/berth-shim" \
	--log-level warn >"$TMP/berthd.log" 2>&1 &
BPID=$!
for _ in $(seq 300); do bk version >/dev/null 2>&1 && break; sleep 0.1; done
bk version >/dev/null 2>&1 || die "berthd did not start: $(tail -5 "$TMP/berthd.log")"
tar -C "$ROOTFS" -c . | bk import - busybox:latest >/dev/null

ticks() { # utime+stime of pid $1 (and with $2=children, cutime+cstime)
	awk -v c="${2:-}" '{ sub(/^.*\) /, ""); t = $12 + $13; if (c != "") t += $14 + $15; print t }' "/proc/$1/stat" 2>/dev/null || echo 0
}
HZ=$(getconf CLK_TCK)

# measure LABEL: berthd and shim CPU over WINDOW, berthd's RSS after.
measure() {
	local label=$1 b0 b1 s0=0 s1=0 p pids rss
	pids=$(shims)
	b0=$(ticks "$BPID")
	for p in $pids; do s0=$((s0 + $(ticks "$p" children))); done
	local t0 t1
	t0=$(date +%s.%N)
	sleep "$WINDOW"
	t1=$(date +%s.%N)
	b1=$(ticks "$BPID")
	for p in $pids; do s1=$((s1 + $(ticks "$p" children))); done
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$BPID/status")
	local secs
	secs=$(echo "$t1 - $t0" | bc -l)
	BCPU=$(echo "scale=2; 100 * ($b1 - $b0) / $HZ / $secs" | bc -l)
	SCPU=$(echo "scale=2; 100 * ($s1 - $s0) / $HZ / $secs" | bc -l)
	BRSS=$(echo "scale=1; $rss / 1024" | bc -l)
	WSTART=$t0
	WEND=$t1
	log "$label: berthd ${BCPU}% of a core, RSS ${BRSS} MiB; shims (with probes) ${SCPU}%"
}

run_n() { # extra run args...
	local i
	for i in $(seq "$N"); do
		bk run -d --network none --name "c$i" "$@" busybox sleep 3600 >/dev/null
	done
}

stats_time() { # CLI: median wall time (ms) of stats --no-stream over all containers
	local cli=$1 i t0 t1 times=()
	for i in $(seq "$REPS"); do
		t0=$(date +%s%N)
		"$cli" stats --no-stream --format '{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.BlockIO}} {{.PIDs}}' >"$TMP/stats.out"
		t1=$(date +%s%N)
		times+=($(((t1 - t0) / 1000000)))
	done
	[ "$(wc -l <"$TMP/stats.out")" -eq "$N" ] || die "stats listed $(wc -l <"$TMP/stats.out") of $N containers"
	printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

log "$N containers without a healthcheck"
run_n
sleep 3
measure "no healthcheck"
BASE_B=$BCPU BASE_S=$SCPU BASE_RSS=$BRSS
STATS_MS=$(stats_time bk)
BSTATS_MS=$(stats_time bb)
log "stats --no-stream over $N: docker CLI ${STATS_MS} ms, berth CLI ${BSTATS_MS} ms (median of $REPS)"
bk rm -f $(bk ps -aq) >/dev/null

log "$N containers probed every $INTERVAL"
run_n --health-cmd true --health-interval "$INTERVAL" --health-start-interval "$INTERVAL"
for _ in $(seq 600); do
	[ "$(bk ps --filter health=healthy -q | wc -l)" -eq "$N" ] && break
	sleep 0.2
done
[ "$(bk ps --filter health=healthy -q | wc -l)" -eq "$N" ] || die "not all containers became healthy"
measure "healthcheck every $INTERVAL"
# Probes that started within the window, from the health logs (the last 5
# per container: enough when WINDOW >= 5 s at 1 s, counted up to 5).
PROBES=$(bk inspect --format '{{range .State.Health.Log}}{{.Start.UnixNano}} {{end}}' $(bk ps -q) |
	tr ' ' '\n' | awk -v s="$WSTART" -v e="$WEND" 'NF && $1/1e9 >= s && $1/1e9 <= e' | wc -l)
BAD=$(bk inspect --format '{{range .State.Health.Log}}{{if ne .ExitCode 0}}x{{end}}{{end}}' $(bk ps -q) | tr -d '\n' | wc -c)
HC_STATS_MS=$(stats_time bk)
HC_BSTATS_MS=$(stats_time bb)

cat <<EOF
| $N containers (busybox sleep, --network none) | berthd CPU (% of one core) | berthd RSS | shims + probes CPU (% of one core) |
|---|---|---|---|
| no healthcheck | $BASE_B % | $BASE_RSS MiB | $BASE_S % |
| healthcheck \`true\` every $INTERVAL | $BCPU % | $BRSS MiB | $SCPU % |

Window ${WINDOW} s; the last 5 health-log entries of every container hold $PROBES probes started in the last part of the window (at most $((N * 5))), $BAD of them failed.
\`stats --no-stream\` over $N containers (median of $REPS): docker CLI $STATS_MS ms without healthchecks, $HC_STATS_MS ms with them; berth CLI $BSTATS_MS ms and $HC_BSTATS_MS ms.
Machine: $(nproc) CPUs, $(uname -r), berth $(cd "$REPO_ROOT" && git rev-parse --short HEAD).
EOF
