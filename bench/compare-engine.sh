#!/usr/bin/env bash
# Compare the container engine side by side: berthd (this checkout)
# against a private dockerd 20.10 (Debian's docker.io, with its own
# containerd) and podman (Debian's, no daemon), all three running the same
# busybox image imported from Debian's busybox-static.
#
#   bench/compare-engine.sh [N]     # N interleaved repetitions (default 20)
#
# Measured (medians over the repetitions):
#   - `run --rm --network none busybox true`: the docker CLI
#     (/usr/local/bin/docker) against berthd and against dockerd, berth's
#     own CLI against berthd, podman's CLI; and `docker version` against
#     each daemon, the floor under the docker CLI's figures;
#   - BATCH (50) sequential `run -d --network none busybox sleep 3600`, the
#     total; then one `rm -f` of all of them (`docker rm -f $(docker ps -aq)`,
#     `podman rm -f -t 0 ...`: podman's rm -f would otherwise wait 10 s for
#     SIGTERM first);
#   - memory from /proc/PID/smaps_rollup (RSS and PSS): the idle daemon
#     (berthd; dockerd + containerd; podman has none) a few seconds after
#     the warm-up and again, settled, after SETTLE seconds without a
#     request at the end (berthd drops its binary's clean text from its
#     page tables after 30 s idle), and per running
#     container with BATCH of them: the sum over the per-container processes
#     (berth-shim; containerd-shim-runc-v2; conmon) plus the daemon's growth
#     over its idle size, divided by BATCH; and the median per-container
#     process's own RSS, PSS and anonymous memory.
#
# Memory only (no run --rm timings): N=0 BATCH=20 BATCH_N=3 WARMUP=1.
#
# Environment: N, BATCH (default 50), BATCH_N (repetitions of the batch,
# default N), WARMUP (untimed runs of each run --rm first, default 3),
# MEM_WAIT (seconds between the last run -d and the memory sample, default 3),
# SETTLE (seconds without a request before the settled idle sample, default
# 35; 0 skips it), PAUSE (seconds before each timed `run --rm`, default 0.2:
# each starts on a quiet machine, not in the asynchronous clean-up of the
# engine measured just before it — dockerd's and containerd's, podman's,
# berthd's next warm spare; PAUSE=0 measures them back to back),
# DOCKERD (default /usr/sbin/dockerd), DOCKER (default /usr/local/bin/docker),
# PODMAN (default /usr/bin/podman), BUSYBOX (default /bin/busybox, static),
# ENGINES (default "berth docker podman"), BERTH_LOG_LEVEL (default debug:
# berthd's "start phase" lines are summarised at the end), NETNS=host (run
# in the host's network and mount namespaces instead of private ones).
#
# Needs root. Prints Markdown tables on stdout, progress on stderr. It runs
# in a network namespace of its own with only a loopback interface, and a
# mount namespace of its own (private propagation): nothing it starts can
# reach the network, and no mount it makes is seen by the host. On exit,
# also on Ctrl-C, it removes every container it created, stops berthd and
# dockerd (with its containerd), kills any shim, conmon or container
# process of its containers that is still there, unmounts what is left
# under its temporary directory, removes the cgroups it created and the
# directory.
set -euo pipefail

N=${1:-${N:-20}}
BATCH=${BATCH:-50}
BATCH_N=${BATCH_N:-$N}
WARMUP=${WARMUP:-3}
SETTLE=${SETTLE:-35}
PAUSE=${PAUSE:-0.2}
MEM_WAIT=${MEM_WAIT:-3}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
DOCKER=${DOCKER:-/usr/local/bin/docker}
PODMAN=${PODMAN:-/usr/bin/podman}
BUSYBOX=${BUSYBOX:-/bin/busybox}
ENGINES=${ENGINES:-berth docker podman}
BERTH_LOG_LEVEL=${BERTH_LOG_LEVEL:-debug}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib.sh
. "$REPO_ROOT/bench/lib.sh"

log() { echo "compare-engine: $*" >&2; }
die() { log "$*"; exit 1; }
has() { [[ " $ENGINES " == *" $1 "* ]]; }

[[ $N =~ ^[0-9]+$ ]] || die "N must be a non-negative integer, not '$N'"
[[ $BATCH_N =~ ^[0-9]+$ ]] || die "BATCH_N must be a number"
[[ $BATCH =~ ^[1-9][0-9]*$ ]] || die "BATCH must be a positive integer"
[ "$(id -u)" = 0 ] || die "needs root (it starts daemons and containers)"

# Installs happen here, before the private network namespace cuts us off.
if [ -z "${COMPARE_ENGINE_NETNS:-}" ]; then
	if has docker && [ ! -x "$DOCKERD" ]; then
		log "$DOCKERD missing: apt-get install -y docker.io"
		apt-get install -y docker.io >&2
	fi
	if has podman && [ ! -x "$PODMAN" ]; then
		log "$PODMAN missing: apt-get install -y podman"
		apt-get install -y podman >&2
	fi
	if [ ! -x "$BUSYBOX" ]; then
		log "$BUSYBOX missing: apt-get install -y busybox-static"
		apt-get install -y busybox-static >&2
	fi
fi
[ -x "$DOCKER" ] || die "$DOCKER (the docker CLI) missing"
has docker && { [ -x "$DOCKERD" ] || die "$DOCKERD missing"; }
has podman && { [ -x "$PODMAN" ] || die "$PODMAN missing"; }
has berth || die "ENGINES must include berth"
ldd "$BUSYBOX" >/dev/null 2>&1 && die "$BUSYBOX is not static (Debian: busybox-static)"

# A network namespace with only a loopback interface, and a mount
# namespace of our own: nothing can leave 127.0.0.1, and every mount the
# daemons and runtimes make stays here (and goes away with the namespace
# should all else fail). NETNS=host skips both.
if [ "${NETNS:-}" != host ] && [ -z "${COMPARE_ENGINE_NETNS:-}" ]; then
	exec unshare --net --mount --propagation private env COMPARE_ENGINE_NETNS=1 "$0" "$@"
fi
if [ -n "${COMPARE_ENGINE_NETNS:-}" ]; then
	ip link set lo up
fi

# No containerd may serve the default socket: dockerd 20.10 would use a
# running system containerd instead of starting its own, and the figures
# would then mix in someone else's daemon.
if has docker && [ -S /run/containerd/containerd.sock ]; then
	die "/run/containerd/containerd.sock exists: dockerd would use that containerd, not its own"
fi

# Short: berth-shim's socket lives under <exec-root>/c/<64-hex-id>/ and
# unix socket paths are limited to 108 bytes; dockerd's too.
TMP=$(mktemp -d /tmp/bce.XXXXXX)
BIN=$TMP/bin
EB=$BIN/enginebench
B=$TMP/b D=$TMP/d P=$TMP/p
BPID= DPID= CPID=
DCG=bce-docker-${TMP##*.} # dockerd's cgroup parent, ours alone
: >"$TMP/all-ids"
LIBPOD_PARENT_BEFORE=$(find /sys/fs/cgroup -maxdepth 2 -type d -name libpod_parent 2>/dev/null | sort)

as_berth() { env DOCKER_HOST="unix://$B/s.sock" BERTH_HOST="unix://$B/s.sock" DOCKER_CONFIG="$TMP/dcfg" DOCKER_CLI_HINTS=false "$@"; }
as_docker() { env DOCKER_HOST="unix://$D/docker.sock" DOCKER_CONFIG="$TMP/dcfg" DOCKER_CLI_HINTS=false "$@"; }
as_podman() {
	env CONTAINERS_CONF="$P/containers.conf" CONTAINERS_STORAGE_CONF="$P/storage.conf" \
		CONTAINERS_REGISTRIES_CONF="$P/registries.conf" TMPDIR="$P/tmp" "$@"
}
PODMAN_ARGS=(--root "$P/root" --runroot "$P/run" --storage-driver overlay --runtime runc
	--cgroup-manager cgroupfs --events-backend file --tmpdir "$P/libpod" --network-config-dir "$P/net")
pm() { as_podman "$PODMAN" "${PODMAN_ARGS[@]}" "$@"; }
bk() { as_berth "$DOCKER" "$@"; }
dk() { as_docker "$DOCKER" "$@"; }

cleanup() {
	local status=$?
	trap - EXIT INT TERM HUP
	set +e
	log "cleaning up"
	# Every container, through its own engine (their full IDs first, for
	# the sweep below should a removal fail).
	if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
		as_berth timeout 30 "$DOCKER" ps -aq --no-trunc >>"$TMP/all-ids" 2>/dev/null
		ids=$(as_berth timeout 30 "$DOCKER" ps -aq 2>/dev/null)
		[ -n "$ids" ] && as_berth timeout 60 "$DOCKER" rm -f $ids >/dev/null 2>&1
	fi
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		as_docker timeout 30 "$DOCKER" ps -aq --no-trunc >>"$TMP/all-ids" 2>/dev/null
		ids=$(as_docker timeout 30 "$DOCKER" ps -aq 2>/dev/null)
		[ -n "$ids" ] && as_docker timeout 60 "$DOCKER" rm -f $ids >/dev/null 2>&1
	fi
	if has podman && [ -d "$P/root" ]; then
		as_podman timeout 30 "$PODMAN" "${PODMAN_ARGS[@]}" ps -aq --no-trunc >>"$TMP/all-ids" 2>/dev/null
		as_podman timeout 60 "$PODMAN" "${PODMAN_ARGS[@]}" rm -af -t 0 >/dev/null 2>&1
	fi
	# berthd's shims (a warm spare has no container to be removed with).
	[ -n "$BPID" ] && [ -x "$EB" ] && "$EB" pids --parent "$BPID" --comm berth-shim >"$TMP/berth-shims" 2>/dev/null
	stop_pid "$BPID" 10
	for p in $(cat "$TMP/berth-shims" 2>/dev/null); do
		for _ in $(seq 30); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = berth-shim ] || break; sleep 0.1; done
		if [ "$(cat "/proc/$p/comm" 2>/dev/null)" = berth-shim ]; then
			log "berth-shim $p still there 3 s after berthd stopped: SIGKILL"
			kill -KILL "$p" 2>/dev/null
		fi
	done
	stop_pid "$DPID" 15 # it stops the containerd it started
	stop_pid "$CPID" 5
	# Whatever of our containers is still alive: shims and conmon by the
	# container IDs on their command lines, container processes by the
	# cgroups named after the IDs.
	if [ -s "$TMP/all-ids" ] && [ -x "$EB" ]; then
		left=$("$EB" pids --comm berth-shim,containerd-shim-runc-v2,conmon --ids "$TMP/all-ids")
		if [ -n "$left" ]; then
			log "killing leftover per-container processes: $(echo $left)"
			kill -KILL $left 2>/dev/null
		fi
		kill_container_cgroups "$TMP/all-ids" "/sys/fs/cgroup/*/berth/@" "/sys/fs/cgroup/*/$DCG/@" "/sys/fs/cgroup/*/libpod_parent/libpod-@"
	fi
	# Mounts left under our directory (only if something was killed).
	umount_under "$TMP"
	# Cgroups we created: dockerd's parent, podman's libpod_parent (if it
	# was not there before us).
	for cg in /sys/fs/cgroup/*/"$DCG"; do
		[ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	for cg in $(find /sys/fs/cgroup -maxdepth 2 -type d -name libpod_parent 2>/dev/null); do
		grep -qxF "$cg" <<<"$LIBPOD_PARENT_BEFORE" || find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	rm -rf "$TMP"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- build ---------------------------------------------------------------
log "building berth (static, as scripts/build.sh) and enginebench"
build_berth "$REPO_ROOT" "$BIN"
(cd "$REPO_ROOT" && go build -o "$TMP/enginebench" ./bench/cmd/enginebench)
cp "$TMP/enginebench" "$EB" && rm "$TMP/enginebench"
BERTH_REV=$(cd "$REPO_ROOT" && git rev-parse --short HEAD)
(cd "$REPO_ROOT" && git diff --quiet HEAD -- cmd internal) || BERTH_REV="$BERTH_REV+dirty"

# --- the image -----------------------------------------------------------
ROOTFS=$TMP/rootfs
busybox_rootfs "$BUSYBOX" "$ROOTFS"
mkdir -p "$TMP/dcfg" && echo '{}' >"$TMP/dcfg/config.json"

# --- berthd --------------------------------------------------------------
log "starting a private berthd"
mkdir -p "$B"
echo '{}' >"$B/daemon.json"
"$BIN/berthd" --data-root "$B/data" --exec-root "$TMP/bx" -H "unix://$B/s.sock" \
	--pidfile "$B/pid" --config-file "$B/daemon.json" --shim-binary "$BIN/berth-shim" \
	--log-level "$BERTH_LOG_LEVEL" >"$B/berthd.log" 2>&1 &
BPID=$!
wait_cli berthd bk version || { tail -20 "$B/berthd.log" >&2; die "berthd did not start"; }
tar -C "$ROOTFS" -c . | bk import - busybox:latest >/dev/null
log "berthd $BERTH_REV (pid $BPID)"

# --- dockerd -------------------------------------------------------------
if has docker; then
	log "starting a private dockerd"
	mkdir -p "$D/data" "$D/exec"
	echo '{}' >"$D/daemon.json" # not /etc/docker/daemon.json
	# No network set-up at all (no bridge, never the system's docker0; no
	# iptables rules), overlay2 explicitly, a cgroup parent of our own.
	"$DOCKERD" --config-file "$D/daemon.json" \
		--data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
		--pidfile "$D/pid" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
		--storage-driver overlay2 --cgroup-parent "/$DCG" \
		>"$D/dockerd.log" 2>&1 &
	DPID=$!
	wait_cli dockerd dk version || { tail -20 "$D/dockerd.log" >&2; die "dockerd did not start"; }
	CPID=$(pgrep -P "$DPID" containerd | head -1 || true)
	[ -n "$CPID" ] || die "no containerd child of dockerd"
	tar -C "$ROOTFS" -c . | dk import - busybox:latest >/dev/null
	DVER=$(dk version --format '{{.Server.Version}}')
	CVER=$(containerd --version | awk '{print $3}')
	log "dockerd $DVER, storage $(dk info --format '{{.Driver}}') (pid $DPID), containerd $CVER (pid $CPID)"
fi

# --- podman --------------------------------------------------------------
if has podman; then
	log "setting up podman"
	mkdir -p "$P/tmp" "$P/libpod" "$P/net"
	HN=$(ulimit -Hn)
	ULIMITS="\"nofile=$HN:$HN\""
	# nproc: podman starts conmon (and so runc) with a hard limit of at
	# most 32768 processes here, and runc cannot raise it (no
	# CAP_SYS_RESOURCE in this machine's bounding set): without a value
	# podman asks for more and every run fails with EPERM.
	HU=$(ulimit -Hu)
	{ [ "$HU" = unlimited ] || [ "$HU" -gt 32768 ]; } && HU=32768
	ULIMITS="$ULIMITS, \"nproc=$HU:$HU\""
	# Not the system's files: private storage, runtime dir, events file,
	# network configs; runc as for the others; ulimits no higher than the
	# host's hard limits (podman's defaults ask for more than this machine
	# allows).
	cat >"$P/containers.conf" <<EOF
[containers]
default_ulimits = [$ULIMITS]
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$P/events.log"
runtime = "runc"
tmp_dir = "$P/libpod"
volume_path = "$P/root/volumes"
[network]
network_config_dir = "$P/net"
EOF
	cat >"$P/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$P/root"
runroot = "$P/run"
EOF
	echo 'unqualified-search-registries = []' >"$P/registries.conf"
	tar -C "$ROOTFS" -c . | pm import -q - busybox:latest >/dev/null
	PVER=$(pm version --format '{{.Client.Version}}')
	log "podman $PVER, storage $(pm info --format '{{.Store.GraphDriverName}}'), conmon $(conmon --version | awk 'NR==1{print $3}')"
fi
RUNCVER=$(runc --version | awk 'NR==1{print $3}')
CLIVER=$("$DOCKER" --version | sed -n 's/^Docker version \([^,]*\).*/\1/p')

# --- the commands ----------------------------------------------------------
RUN_RM=(run --rm --network none busybox true)
RUN_D=(run -d --network none busybox sleep 3600)
RM_ENGINES=(berth berthcli)
has docker && RM_ENGINES+=(docker)
has podman && RM_ENGINES+=(podman)
# The floor under the docker CLI's figures: `docker version` is the
# CLI's start-up plus two trivial requests (/_ping, /version).
RM_ENGINES+=(berthfloor)
has docker && RM_ENGINES+=(dockerfloor)
BATCH_ENGINES=(berth)
has docker && BATCH_ENGINES+=(docker)
has podman && BATCH_ENGINES+=(podman)

time_run_rm() { # engine -> ms on stdout
	case $1 in
	berth) as_berth "$EB" time -- "$DOCKER" "${RUN_RM[@]}" ;;
	berthcli) as_berth "$EB" time -- "$BIN/berth" "${RUN_RM[@]}" ;;
	docker) as_docker "$EB" time -- "$DOCKER" "${RUN_RM[@]}" ;;
	podman) as_podman "$EB" time -- "$PODMAN" "${PODMAN_ARGS[@]}" "${RUN_RM[@]}" ;;
	berthfloor) as_berth "$EB" time -- "$DOCKER" version ;;
	dockerfloor) as_docker "$EB" time -- "$DOCKER" version ;;
	esac
}

# A fresh sample of a daemon's idle size: wait until it is quiet. The
# daemon is berthd with the warm spare berth-shim(s) it keeps ready (its
# berth-shim children that hold no container) and the container init each
# pre-forked at idle time, dockerd with its
# containerd; podman has none.
daemon_mem() { # engine -> "rss pss count" in KiB
	case $1 in
	# berthd gives its free heap back 2 s after its last request.
	berth) sleep 2.5 && "$EB" mem --pids "$BPID" --parent "$BPID" --comm berth-shim --idle --settle 2s ;;
	docker) "$EB" mem --pids "$DPID,$CPID" --settle 2s ;;
	podman) echo "count=0 rss_kib=0 pss_kib=0" ;;
	esac | sed 's/count=\([0-9]*\) rss_kib=\([0-9]*\) pss_kib=\([0-9]*\).*/\2 \3 \1/'
}
shim_comm() { case $1 in berth) echo berth-shim ;; docker) echo containerd-shim-runc-v2 ;; podman) echo conmon ;; esac; }
# The per-container processes of engine's containers listed in ids.ENGINE:
# berth-shims are berthd's children that hold a container (a shim started
# as a warm spare has no container ID on its command line).
shim_sel() {
	case $1 in
	berth) echo --parent "$BPID" --comm berth-shim --busy --ids "$TMP/ids.berth" ;;
	*) echo --comm "$(shim_comm "$1")" --ids "$TMP/ids.$1" ;;
	esac
}
cli() { # engine args...
	local e=$1
	shift
	case $e in
	berth) bk "$@" ;;
	docker) dk "$@" ;;
	podman) pm "$@" ;;
	esac
}

# --- warm-up ---------------------------------------------------------------
log "warm-up: $WARMUP untimed runs of each"
for _ in $(seq "$WARMUP"); do
	for e in "${RM_ENGINES[@]}"; do time_run_rm "$e" >/dev/null; done
done

# Idle memory, after the image import and the warm-up.
for e in "${BATCH_ENGINES[@]}"; do
	read -r r p c < <(daemon_mem "$e")
	echo "$r" >"$TMP/idle_rss.$e"
	echo "$p" >"$TMP/idle_pss.$e"
	echo "$c" >"$TMP/idle_count.$e"
	[ "$e" = berth ] && "$EB" mem --pids "$BPID" | sed 's/.*rss_kib=\([0-9]*\).*/\1/' >"$TMP/idle_self.berth"
	log "idle $e daemon ($c processes): RSS $r KiB, PSS $p KiB"
done

# --- run --rm, interleaved ---------------------------------------------------
LOGOFF0=$(stat -c %s "$B/berthd.log")
log "run --rm: $N interleaved repetitions of ${RM_ENGINES[*]}"
for i in $(seq "$N"); do
	line="rep $i:"
	for e in $(rotate "$i" "${RM_ENGINES[@]}"); do
		sleep "$PAUSE"
		t=$(time_run_rm "$e")
		echo "$t" >>"$TMP/rm.$e"
		line="$line $e $t"
	done
	log "$line ms"
done
LOGOFF1=$(stat -c %s "$B/berthd.log")
# (With N=0, a memory-only run, the files exist empty: "n/a".)
for e in "${RM_ENGINES[@]}"; do touch "$TMP/rm.$e"; done

# --- BATCH × run -d, memory, rm -f ---------------------------------------------
batch() { # engine rep
	local e=$1 i=$2 r0 p0 r1 p1 total ids rmt shims sr sp sa n
	read -r r0 p0 _ < <(daemon_mem "$e")
	total=$(case $e in
		berth) as_berth "$EB" loop -n "$BATCH" -- "$DOCKER" "${RUN_D[@]}" ;;
		docker) as_docker "$EB" loop -n "$BATCH" -- "$DOCKER" "${RUN_D[@]}" ;;
		podman) as_podman "$EB" loop -n "$BATCH" -- "$PODMAN" "${PODMAN_ARGS[@]}" "${RUN_D[@]}" ;;
		esac)
	cli "$e" ps -q --no-trunc >"$TMP/ids.$e"
	cat "$TMP/ids.$e" >>"$TMP/all-ids"
	n=$(wc -l <"$TMP/ids.$e")
	[ "$n" = "$BATCH" ] || die "$e: $n containers running after $BATCH run -d"
	# Steady state: berth-shim trims its memory after 1 s idle; give every
	# engine's processes the same few seconds before sampling.
	sleep "$MEM_WAIT"
	shims=$("$EB" mem $(shim_sel "$e") --settle 3s)
	read -r sr sp sa < <(sed 's/.*rss_kib=\([0-9]*\) pss_kib=\([0-9]*\) anon_kib=\([0-9]*\).*/\1 \2 \3/' <<<"$shims")
	# The median process: one container's own figures.
	sed 's/.* p50rss=\([0-9]*\) p50pss=\([0-9]*\) p50anon=\([0-9]*\).*/\1 \2 \3/' <<<"$shims" >>"$TMP/p50.$e"
	n=$(sed 's/count=\([0-9]*\).*/\1/' <<<"$shims")
	[ "$n" = "$BATCH" ] || log "$e: found $n $(shim_comm "$e") processes for $BATCH containers"
	read -r r1 p1 _ < <(daemon_mem "$e")
	# One rm -f call with every container, as a user would type it.
	local short
	short=$(cli "$e" ps -aq)
	rmt=$(case $e in
		berth) as_berth "$EB" time -- "$DOCKER" rm -f $short ;;
		docker) as_docker "$EB" time -- "$DOCKER" rm -f $short ;;
		podman) as_podman "$EB" time -- "$PODMAN" "${PODMAN_ARGS[@]}" rm -f -t 0 $short ;;
		esac)
	# Wait for the shims to go before anything else is measured.
	for _ in $(seq 300); do
		[ -z "$("$EB" pids $(shim_sel "$e"))" ] && break
		sleep 0.1
	done
	[ -z "$(cli "$e" ps -aq)" ] || die "$e: containers left after rm -f"
	echo "$total" >>"$TMP/runD.$e"
	echo "$rmt" >>"$TMP/rmf.$e"
	echo "$sr" >>"$TMP/shim_rss.$e"
	echo "$sp" >>"$TMP/shim_pss.$e"
	echo $((r1 - r0)) >>"$TMP/grow_rss.$e"
	echo $((p1 - p0)) >>"$TMP/grow_pss.$e"
	echo "$r1" >>"$TMP/busy_rss.$e"
	echo "$p1" >>"$TMP/busy_pss.$e"
	# A daemon that shrank meanwhile (a GC) is counted as no growth: its
	# shrinking is no saving of the containers'.
	local gr=$((r1 - r0)) gp=$((p1 - p0))
	[ "$gr" -lt 0 ] && gr=0
	[ "$gp" -lt 0 ] && gp=0
	echo $(((sr + gr) / BATCH)) >>"$TMP/per_rss.$e"
	echo $(((sp + gp) / BATCH)) >>"$TMP/per_pss.$e"
	echo "$sa" >>"$TMP/shim_anon.$e"
	log "rep $i $e: $BATCH run -d $total ms, rm -f $rmt ms; $(shim_comm "$e") sum RSS $sr KiB PSS $sp KiB; daemon $r0 -> $r1 KiB RSS, $p0 -> $p1 KiB PSS"
	[ "$e" = berth ] && batch_berthcli "$i"
	true
}
# The same BATCH × run -d and rm -f through berth's own CLI (timings only:
# the memory is the docker-CLI batch's).
batch_berthcli() { # rep
	local total rmt short
	total=$(as_berth "$EB" loop -n "$BATCH" -- "$BIN/berth" "${RUN_D[@]}")
	short=$(bk ps -aq)
	[ "$(wc -w <<<"$short")" = "$BATCH" ] || die "berth CLI: $(wc -w <<<"$short") containers after $BATCH run -d"
	rmt=$(as_berth "$EB" time -- "$BIN/berth" rm -f $short)
	for _ in $(seq 300); do
		[ -z "$("$EB" pids $(shim_sel berth))" ] && break
		sleep 0.1
	done
	[ -z "$(bk ps -aq)" ] || die "berth CLI: containers left after rm -f"
	echo "$total" >>"$TMP/runD.berthcli"
	echo "$rmt" >>"$TMP/rmf.berthcli"
	log "rep $1 berth CLI: $BATCH run -d $total ms, rm -f $rmt ms"
}
if [ "$BATCH_N" -gt 0 ]; then
	log "batch: $BATCH_N interleaved repetitions of $BATCH x run -d, memory, rm -f"
	for i in $(seq "$BATCH_N"); do
		for e in $(rotate "$i" "${BATCH_ENGINES[@]}"); do batch "$e" "$i"; done
	done
fi
LOGOFF2=$(stat -c %s "$B/berthd.log")

# Idle again at the end.
for e in "${BATCH_ENGINES[@]}"; do
	read -r r p _ < <(daemon_mem "$e")
	echo "$r" >"$TMP/end_rss.$e"
	echo "$p" >"$TMP/end_pss.$e"
done
# Settled: nothing has asked either daemon anything for SETTLE seconds.
if [ "$SETTLE" -gt 0 ]; then
	log "settled idle: waiting ${SETTLE} s"
	sleep "$SETTLE"
	for e in "${BATCH_ENGINES[@]}"; do
		read -r r p _ < <(daemon_mem "$e")
		echo "$r" >"$TMP/settled_rss.$e"
		echo "$p" >"$TMP/settled_pss.$e"
		[ "$e" = berth ] && "$EB" mem --pids "$BPID" | sed 's/.*rss_kib=\([0-9]*\).*/\1/' >"$TMP/settled_self.berth"
		log "settled idle $e daemon: RSS $r KiB, PSS $p KiB"
	done
fi

# berthd's start phases (debug log): run --rm part and run -d part.
# (head first: tail then reads all it is given, so no SIGPIPE for pipefail.)
head -c "$LOGOFF1" "$B/berthd.log" | tail -c +$((LOGOFF0 + 1)) >"$TMP/log.rm"
head -c "$LOGOFF2" "$B/berthd.log" | tail -c +$((LOGOFF1 + 1)) >"$TMP/log.d"
"$EB" phases "$TMP/log.rm" >"$TMP/phases.rm" || true
"$EB" phases "$TMP/log.d" >"$TMP/phases.d" || true

# --- report --------------------------------------------------------------------
med() { [ -s "$1" ] && median <"$1" || echo n/a; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a=="n/a"||b=="n/a"||b==0) print "n/a"; else printf "%.1fx", a/b}'; }
mib() { awk -v k="$1" 'BEGIN{if (k=="n/a") print "n/a"; else printf "%.1f MiB", k/1024}'; }
sec() { awk -v m="$1" 'BEGIN{if (m=="n/a") print "n/a"; else printf "%.2f s", m/1000}'; }
met() { awk -v v="$1" -v t="$2" 'BEGIN{if (v=="n/a") print "n/a"; else print (v<=t ? "yes" : "**no**")}'; }
val() { has "$1" && med "$2" || echo n/a; }
spares() {
	local c self
	c=$(cat "$TMP/idle_count.berth") self=$(cat "$TMP/idle_self.berth")
	[ "$c" -gt 1 ] && echo " (berthd $(mib "$self") + the warm spare, $((c - 1)) processes: its shim and the init it pre-forked, $(mib $((IB - self))))"
	true
}
settled_spares() {
	[ -s "$TMP/settled_self.berth" ] && echo " (berthd $(mib "$(cat "$TMP/settled_self.berth")") + the warm spare $(mib $((SB - $(cat "$TMP/settled_self.berth")))))"
	true
}
# p50 ENGINE COLUMN: the median over the repetitions of the median
# per-container process's figure (1 RSS, 2 PSS, 3 anonymous), KiB.
p50() { [ -s "$TMP/p50.$1" ] && awk -v c="$2" '{print $c}' "$TMP/p50.$1" | median || echo n/a; }
per_n() { awk -v s="$(med "$TMP/$1")" -v n="$BATCH" 'BEGIN{if (s=="n/a") print s; else printf "%.0f", s/n}'; }

RB=$(med "$TMP/rm.berth") RBC=$(med "$TMP/rm.berthcli") VB=$(med "$TMP/rm.berthfloor") VD=$(val docker "$TMP/rm.dockerfloor")
RD=$(val docker "$TMP/rm.docker") RP=$(val podman "$TMP/rm.podman")
DB=$(med "$TMP/runD.berth") DBC=$(med "$TMP/runD.berthcli") FBC=$(med "$TMP/rmf.berthcli") DD=$(val docker "$TMP/runD.docker") DP=$(val podman "$TMP/runD.podman")
FB=$(med "$TMP/rmf.berth") FD=$(val docker "$TMP/rmf.docker") FP=$(val podman "$TMP/rmf.podman")
IB=$(cat "$TMP/idle_rss.berth") IBP=$(cat "$TMP/idle_pss.berth")
SB=n/a SD=n/a
[ -s "$TMP/settled_rss.berth" ] && SB=$(cat "$TMP/settled_rss.berth")
has docker && [ -s "$TMP/settled_rss.docker" ] && SD=$(cat "$TMP/settled_rss.docker")
ID=n/a IDP=n/a
has docker && ID=$(cat "$TMP/idle_rss.docker") IDP=$(cat "$TMP/idle_pss.docker")
PB=$(med "$TMP/per_rss.berth") PBP=$(med "$TMP/per_pss.berth")
PD=$(val docker "$TMP/per_rss.docker") PDP=$(val docker "$TMP/per_pss.docker")
PP=$(val podman "$TMP/per_rss.podman") PPP=$(val podman "$TMP/per_pss.podman")

cat <<EOF

$N interleaved repetitions of \`run --rm\` (after $WARMUP warm-up runs each; $PAUSE s before each), $BATCH_N of the $BATCH-container batch; $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg).
berth $BERTH_REV (berthd --log-level $BERTH_LOG_LEVEL); dockerd ${DVER:-n/a} with containerd ${CVER:-n/a}; podman ${PVER:-n/a} (conmon, cgroupfs); runc $RUNCVER for dockerd and podman; docker CLI $CLIVER.

| median | target (berth) | berth: docker CLI | berth: berth CLI | dockerd 20.10: docker CLI | podman | dockerd / berth | podman / berth | target met |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: |
| \`run --rm --network none busybox true\` | ≤ 12 ms | $RB ms | $RBC ms | $RD ms | $RP ms | $(ratio "$RD" "$RB") | $(ratio "$RP" "$RB") | berth CLI: $(met "$RBC" 12); docker CLI: $(met "$RB" 12) |
| floor: \`docker version\` (CLI start-up + 2 requests) | | $VB ms | | $VD ms | | | | |
| the same with bridge networking | ≤ 25 ms | see bench/compare-net.sh | | | | | | |
| $BATCH × \`run -d ... sleep 3600\`, total | ≤ 1.0 s | $(sec "$DB") | $(sec "$DBC") | $(sec "$DD") | $(sec "$DP") | $(ratio "$DD" "$DB") | $(ratio "$DP" "$DB") | berth CLI: $(met "$DBC" 1000); docker CLI: $(met "$DB" 1000) |
| one \`rm -f\` of all $BATCH | ≤ 0.5 s | $(sec "$FB") | $(sec "$FBC") | $(sec "$FD") | $(sec "$FP") | $(ratio "$FD" "$FB") | $(ratio "$FP" "$FB") | berth CLI: $(met "$FBC" 500); docker CLI: $(met "$FB" 500) |
| idle daemon RSS | ≤ 25 MiB | $(mib "$IB")$(spares) | | $(mib "$ID") (dockerd + containerd) | no daemon | $(ratio "$ID" "$IB") | | berthd: $(met "$(cat "$TMP/idle_self.berth")" 25600); with the spare: $(met "$IB" 25600) |
| idle daemon RSS, settled (no request for $SETTLE s) | ≤ 25 MiB | $(mib "$SB")$(settled_spares) | | $(mib "$SD") (dockerd + containerd) | no daemon | $(ratio "$SD" "$SB") | | $(met "$SB" 25600) |
| idle daemon PSS | | $(mib "$IBP") | | $(mib "$IDP") | no daemon | $(ratio "$IDP" "$IBP") | | |
| per running container, RSS | ≤ 3 MiB | $(mib "$PB") | | $(mib "$PD") | $(mib "$PP") | $(ratio "$PD" "$PB") | $(ratio "$PP" "$PB") | $(met "$PB" 3072) |
| per running container, PSS | | $(mib "$PBP") | | $(mib "$PDP") | $(mib "$PPP") | $(ratio "$PDP" "$PBP") | $(ratio "$PPP" "$PBP") | |

Targets through both CLIs: the docker CLI's own start-up, requests and
exit (its floor, \`docker version\`, $VB ms against berthd) are most of its
figures, so the time targets are judged through berth's CLI too. The
fresh idle sample is taken 4.5 s after the warm-up: berthd alone, and
with the warm spare it keeps (a shim and the init it pre-forked).

Per container = (sum over the $BATCH per-container processes + the daemon's growth over its idle size, or 0 if it shrank) / $BATCH, KiB medians:

| with $BATCH running | berth | dockerd 20.10 | podman |
| --- | ---: | ---: | ---: |
| per-container process | berth-shim | containerd-shim-runc-v2 | conmon |
| its RSS, sum / $BATCH | $(awk -v s="$(med "$TMP/shim_rss.berth")" -v n="$BATCH" 'BEGIN{printf "%.0f", s/n}') | $(has docker && awk -v s="$(med "$TMP/shim_rss.docker")" -v n="$BATCH" 'BEGIN{printf "%.0f", s/n}' || echo n/a) | $(has podman && awk -v s="$(med "$TMP/shim_rss.podman")" -v n="$BATCH" 'BEGIN{printf "%.0f", s/n}' || echo n/a) |
| its PSS, sum / $BATCH | $(awk -v s="$(med "$TMP/shim_pss.berth")" -v n="$BATCH" 'BEGIN{printf "%.0f", s/n}') | $(has docker && awk -v s="$(med "$TMP/shim_pss.docker")" -v n="$BATCH" 'BEGIN{printf "%.0f", s/n}' || echo n/a) | $(has podman && awk -v s="$(med "$TMP/shim_pss.podman")" -v n="$BATCH" 'BEGIN{printf "%.0f", s/n}' || echo n/a) |
| its anonymous memory (heap, stacks: in RSS and PSS alike), sum / $BATCH | $(per_n shim_anon.berth) | $(has docker && per_n shim_anon.docker || echo n/a) | $(has podman && per_n shim_anon.podman || echo n/a) |
| the median process's RSS | $(p50 berth 1) | $(p50 docker 1) | $(p50 podman 1) |
| the median process's PSS | $(p50 berth 2) | $(p50 docker 2) | $(p50 podman 2) |
| the median process's anonymous memory | $(p50 berth 3) | $(p50 docker 3) | $(p50 podman 3) |
| daemon RSS growth | $(med "$TMP/grow_rss.berth") | $(val docker "$TMP/grow_rss.docker") | (no daemon) |
| daemon PSS growth | $(med "$TMP/grow_pss.berth") | $(val docker "$TMP/grow_pss.docker") | |
| daemon RSS with $BATCH running | $(med "$TMP/busy_rss.berth") | $(val docker "$TMP/busy_rss.docker") | |
| daemon idle RSS / PSS after warm-up | $IB / $IBP | $ID / $IDP | |
| daemon idle RSS / PSS at the end | $(cat "$TMP/end_rss.berth") / $(cat "$TMP/end_pss.berth") | $(has docker && echo "$(cat "$TMP/end_rss.docker") / $(cat "$TMP/end_pss.docker")" || echo n/a) | |

\`run --rm\` p90: berth (docker CLI) $(p90 <"$TMP/rm.berth") ms, berth CLI $(p90 <"$TMP/rm.berthcli") ms$(has docker && echo ", dockerd $(p90 <"$TMP/rm.docker") ms")$(has podman && echo ", podman $(p90 <"$TMP/rm.podman") ms").
Per repetition, run --rm (ms): berth $(paste -sd' ' "$TMP/rm.berth"); berth CLI $(paste -sd' ' "$TMP/rm.berthcli")$(has docker && echo "; dockerd $(paste -sd' ' "$TMP/rm.docker")")$(has podman && echo "; podman $(paste -sd' ' "$TMP/rm.podman")").
EOF
if [ "$BATCH_N" -gt 0 ]; then
	cat <<EOF
Per repetition, $BATCH × run -d (ms): berth $(paste -sd' ' "$TMP/runD.berth"); berth CLI $(paste -sd' ' "$TMP/runD.berthcli")$(has docker && echo "; dockerd $(paste -sd' ' "$TMP/runD.docker")")$(has podman && echo "; podman $(paste -sd' ' "$TMP/runD.podman")").
Per repetition, rm -f (ms): berth $(paste -sd' ' "$TMP/rmf.berth")$(has docker && echo "; dockerd $(paste -sd' ' "$TMP/rmf.docker")")$(has podman && echo "; podman $(paste -sd' ' "$TMP/rmf.podman")").
EOF
fi
if [ -s "$TMP/phases.rm" ] || [ -s "$TMP/phases.d" ]; then
	echo
	echo "berthd start phases (median ms since the previous phase; starts seen): run --rm: $(awk '{printf "%s%s %s (%s)", (NR>1?", ":""), $1, $2, $3}' "$TMP/phases.rm"); run -d: $(awk '{printf "%s%s %s (%s)", (NR>1?", ":""), $1, $2, $3}' "$TMP/phases.d")."
fi
