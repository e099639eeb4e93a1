#!/usr/bin/env bash
# Compare cold image pulls and pushes: berth's image library
# (internal/image.Service, via bench/cmd/berthpull) against a private
# dockerd 20.10 (Debian's docker.io), both pulling the same >=200 MB,
# 6-layer image from berth's registry server on 127.0.0.1.
#
#   bench/compare-pull.sh [N]      # N interleaved runs each (default 5)
#
# Environment: DOCKERD (default /usr/sbin/dockerd), DOCKER (default
# /usr/bin/docker, the 20.10 client), LAYER_MB (default 36, per layer),
# NETNS=host (run in the host's network namespace instead of a private,
# loopback-only one).
# Needs root. Prints Markdown tables on stdout, progress on stderr.
# Everything it starts (registries, dockerd and its containerd) is
# stopped and its temporary directory removed on exit, also on Ctrl-C.
set -euo pipefail

N=${1:-${N:-5}}
LAYERS=6
LAYER_MB=${LAYER_MB:-36}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
DOCKER_BIN=${DOCKER:-/usr/bin/docker}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "compare-pull: $*" >&2; }

[ "$(id -u)" = 0 ] || { log "needs root (dockerd)"; exit 1; }

# Run in a network namespace of our own that has only a loopback
# interface: every registry is on 127.0.0.1, and nothing the script starts
# (dockerd, its containerd, the builds) can reach anything else, nor see
# or touch the host's interfaces and bridges. NETNS=host skips this.
if [ "${NETNS:-}" != host ] && [ -z "${COMPARE_PULL_NETNS:-}" ]; then
	exec unshare --net env COMPARE_PULL_NETNS=1 "$0" "$@"
fi
if [ -n "${COMPARE_PULL_NETNS:-}" ]; then
	ip link set lo up
fi
if [ ! -x "$DOCKERD" ]; then
	log "$DOCKERD missing: apt-get install -y docker.io"
	exit 1
fi

TMP=$(mktemp -d /tmp/bpull.XXXXXX) # short: dockerd's socket paths must fit
REG_PID= REG2_PID= DOCKERD_PID= RSS_PID=
cleanup() {
	set +e
	[ -n "$RSS_PID" ] && kill -TERM "$RSS_PID" 2>/dev/null
	if [ -n "$DOCKERD_PID" ] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
		kill -TERM "$DOCKERD_PID" # it stops the containerd it started
		for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$DOCKERD_PID" 2>/dev/null
	fi
	[ -n "${CTRD_PID:-}" ] && kill -KILL "$CTRD_PID" 2>/dev/null
	for p in "$REG_PID" "$REG2_PID"; do
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	# dockerd leaves overlay mounts only if killed; unmount what is ours.
	grep -o " $TMP[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "building berthpull and berth-registry"
(cd "$REPO_ROOT" && go build -o "$TMP/berthpull" ./bench/cmd/berthpull && go build -o "$TMP/berth-registry" ./cmd/berth-registry)
BP=$TMP/berthpull

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -fsS -o /dev/null "http://$1/v2/" 2>/dev/null && return 0; sleep 0.05; done; return 1; }

start_registry() { # root [port] -> sets PORT, pid in LAST_PID
	PORT=${2:-$(free_port)}
	"$TMP/berth-registry" serve --listen "127.0.0.1:$PORT" --root "$1" >"$1.log" 2>&1 &
	LAST_PID=$!
	wait_http "127.0.0.1:$PORT" || { log "registry did not start"; cat "$1.log" >&2; exit 1; }
}

start_registry "$TMP/reg"
REG_PID=$LAST_PID REG=127.0.0.1:$PORT
IMG=$REG/bench/big:1
log "building and pushing the test image to $IMG"
SIZES=$("$BP" mkimage --ref "$IMG" --layers $LAYERS --layer-mb "$LAYER_MB")
UNCOMP=$(sed -n 's/.*uncompressed_bytes=\([0-9]*\).*/\1/p' <<<"$SIZES")
COMP=$(sed -n 's/.*compressed_bytes=\([0-9]*\).*/\1/p' <<<"$SIZES")
log "image: $SIZES"

# Every push goes to a fresh, empty registry on this port (a new root each
# run); dockerd is told both registries are plain HTTP.
PORT2=$(free_port)
REG2=127.0.0.1:$PORT2

# No containerd may serve the default socket: dockerd 20.10 would use a
# running system containerd instead of starting its own (a unix socket is
# reached through the file system, whatever the network namespace), and
# the figures would then mix in someone else's daemon.
if [ -S /run/containerd/containerd.sock ]; then
	log "/run/containerd/containerd.sock exists: dockerd would use that containerd, not its own"
	exit 1
fi

log "starting a private dockerd"
D=$TMP/d
mkdir -p "$D/data" "$D/exec" "$D/cfg"
echo '{}' >"$D/cfg/config.json"
echo '{}' >"$D/daemon.json" # not /etc/docker/daemon.json: no mirrors, no proxies
# No network set-up at all: no bridge (never the system's docker0), no
# iptables/ip6tables rules. overlay2 explicitly, so that a fallback to vfs
# cannot go unnoticed.
"$DOCKERD" --config-file "$D/daemon.json" \
	--data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
	--pidfile "$D/pid" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
	--storage-driver overlay2 --insecure-registry "$REG" --insecure-registry "$REG2" \
	>"$D/dockerd.log" 2>&1 &
DOCKERD_PID=$!
dk() { DOCKER_CONFIG=$D/cfg "$DOCKER_BIN" -H "unix://$D/docker.sock" "$@"; }
for _ in $(seq 300); do dk version >/dev/null 2>&1 && break; sleep 0.1; done
dk version >/dev/null || { log "dockerd did not start"; tail -20 "$D/dockerd.log" >&2; exit 1; }
CTRD_PID=$(pgrep -P "$DOCKERD_PID" containerd | head -1 || true)
[ -n "$CTRD_PID" ] || { log "no containerd child of dockerd"; exit 1; }
DVER=$(dk version --format '{{.Server.Version}}')
DSTOR=$(dk info --format '{{.Driver}}')
log "dockerd $DVER, storage driver $DSTOR (pid $DOCKERD_PID), containerd pid $CTRD_PID"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

: >"$TMP/docker_pull" >"$TMP/docker_push" >"$TMP/docker_rss" >"$TMP/docker_rss_delta" >"$TMP/docker_rss_tree"
: >"$TMP/berth_pull" >"$TMP/berth_push" >"$TMP/berth_rss" >"$TMP/berth_inner"

docker_run() { # $1: iteration
	start_registry "$TMP/push-d$1" "$PORT2"
	local r2pid=$LAST_PID r2=$REG2
	REG2_PID=$r2pid
	"$BP" rss --pids "$DOCKERD_PID,$CTRD_PID" >"$TMP/rss.out" &
	RSS_PID=$!
	sleep 0.05
	local t0 t1
	t0=$(now_ms)
	dk pull -q "$IMG" >/dev/null
	t1=$(now_ms)
	kill -TERM "$RSS_PID"; wait "$RSS_PID"; RSS_PID=
	echo $((t1 - t0)) >>"$TMP/docker_pull"
	sed -n 's/.*peak_kib=\([0-9]*\).*/\1/p' "$TMP/rss.out" >>"$TMP/docker_rss"
	awk -F'[= ]' '{print $4-$2}' "$TMP/rss.out" >>"$TMP/docker_rss_delta"
	sed -n 's/.*peak_tree_kib=\([0-9]*\).*/\1/p' "$TMP/rss.out" >>"$TMP/docker_rss_tree"
	dk tag "$IMG" "$r2/bench/pushed:1"
	t0=$(now_ms)
	dk push -q "$r2/bench/pushed:1" >/dev/null
	t1=$(now_ms)
	echo $((t1 - t0)) >>"$TMP/docker_push"
	dk rmi -f "$IMG" "$r2/bench/pushed:1" >/dev/null
	dk image prune -af >/dev/null
	kill -TERM "$r2pid"; wait "$r2pid" 2>/dev/null || true; REG2_PID=
	rm -rf "$TMP/push-d$1"
	log "run $1 docker: pull $(tail -1 "$TMP/docker_pull") ms, push $(tail -1 "$TMP/docker_push") ms, peak $(tail -1 "$TMP/docker_rss") KiB ($(tail -1 "$TMP/docker_rss_tree") KiB with children)"
}

berth_run() { # $1: iteration
	start_registry "$TMP/push-b$1" "$PORT2"
	local r2pid=$LAST_PID r2=$REG2
	REG2_PID=$r2pid
	local t0 t1 out
	t0=$(now_ms)
	out=$("$BP" pull --root "$TMP/berth$1" --ref "$IMG" --push-to "$r2/bench/pushed:1")
	t1=$(now_ms)
	local pull_ms push_ms end_ms
	pull_ms=$(sed -n 's/.*pull_ms=\([0-9.]*\).*/\1/p' <<<"$out")
	end_ms=$(sed -n 's/.*end_epoch_ms=\([0-9]*\).*/\1/p' <<<"$out")
	push_ms=$(sed -n 's/.*push_ms=\([0-9.]*\).*/\1/p' <<<"$out")
	# Wall time from the launch of the process to the end of Service.Pull
	# (process start-up and bbolt open included, as docker's figure
	# includes the CLI's start-up).
	echo $((end_ms - t0)) >>"$TMP/berth_pull"
	echo "$pull_ms" >>"$TMP/berth_inner"
	echo "$push_ms" >>"$TMP/berth_push"
	sed -n 's/.*peak_rss_kib=\([0-9]*\).*/\1/p' <<<"$out" >>"$TMP/berth_rss"
	# Remaining files after remove+GC (must be none but the empty dirs).
	left=$(find "$TMP/berth$1" -type f ! -name metadata.db ! -name '*.db' | wc -l)
	[ "$left" = 0 ] || log "berth left $left files in its root after remove+GC"
	rm -rf "$TMP/berth$1"
	kill -TERM "$r2pid"; wait "$r2pid" 2>/dev/null || true; REG2_PID=
	rm -rf "$TMP/push-b$1"
	log "run $1 berth: pull $((end_ms - t0)) ms ($pull_ms in Service.Pull), push $push_ms ms, peak $(tail -1 "$TMP/berth_rss") KiB"
}

for i in $(seq "$N"); do
	if [ $((i % 2)) = 1 ]; then docker_run "$i"; berth_run "$i"; else berth_run "$i"; docker_run "$i"; fi
done

DP=$(median <"$TMP/docker_pull")
BPULL=$(median <"$TMP/berth_pull")
BINNER=$(median <"$TMP/berth_inner")
DPU=$(median <"$TMP/docker_push")
BPU=$(median <"$TMP/berth_push")
DR=$(median <"$TMP/docker_rss")
DRD=$(median <"$TMP/docker_rss_delta")
DRT=$(median <"$TMP/docker_rss_tree")
BR=$(median <"$TMP/berth_rss")
MB=$(awk -v b="$UNCOMP" 'BEGIN{printf "%.1f", b/1e6}')
CMB=$(awk -v b="$COMP" 'BEGIN{printf "%.1f", b/1e6}')
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
tput_() { awk -v b="$UNCOMP" -v ms="$1" 'BEGIN{printf "%.0f", b/1e6/(ms/1000)}'; }
yes_no() { awk -v c="$1" 'BEGIN{print (c ? "yes" : "no")}'; }

cat <<EOF

$N interleaved cold runs each, $(date -u +%Y-%m-%d), $(uname -r), $(nproc) CPUs.
Image: $LAYERS layers, $MB MB uncompressed, $CMB MB gzip. dockerd $DVER ($DSTOR); berth $(cd "$REPO_ROOT" && git rev-parse --short HEAD).

| | docker (dockerd $DVER) | berth (image.Service) |
| --- | ---: | ---: |
| cold pull, median (wall time of the command / process) | $DP ms | $BPULL ms ($BINNER ms inside Service.Pull) |
| unpack throughput (uncompressed MB / pull time) | $(tput_ "$DP") MB/s | $(tput_ "$BPULL") MB/s |
| push to an empty registry, median | $DPU ms | $BPU ms |
| peak RSS during the pull, median | $DR KiB (dockerd+containerd; +$DRD KiB over idle) | $BR KiB (berthpull process) |
| the same, with child processes (docker-untar) | $DRT KiB | (none) |

| target | measured | met |
| --- | ---: | :---: |
| pull: docker / berth ≥ 1.5 | $(ratio "$DP" "$BPULL")x | $(yes_no "$(awk -v a="$DP" -v b="$BPULL" 'BEGIN{print (a/b >= 1.5)}')") |
| push: berth ≤ docker | $(ratio "$BPU" "$DPU")x of docker's time | $(yes_no "$(awk -v a="$BPU" -v b="$DPU" 'BEGIN{print (a <= b)}')") |

Per run (ms): docker pull $(paste -sd' ' "$TMP/docker_pull"); berth pull $(paste -sd' ' "$TMP/berth_pull"); docker push $(paste -sd' ' "$TMP/docker_push"); berth push $(paste -sd' ' "$TMP/berth_push").
EOF
