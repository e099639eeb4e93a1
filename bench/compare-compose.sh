#!/usr/bin/env bash
# Compare Compose side by side: `berth compose` against berthd (this
# checkout) and Debian's docker-compose 1.29 against a private dockerd 20.10
# (Debian's docker.io, with its own containerd), on the same 10-service
# file (busybox `sleep 3600` services with a few environment variables and
# labels, the project's default network; no healthchecks), both engines
# holding the same busybox image imported from Debian's busybox-static.
#
#   bench/compare-compose.sh [N]    # N interleaved repetitions (default 5)
#
# Rows, each repetition in a rotating order:
#   berth      `berth compose up -d` against berthd (the issue 9 figure;
#              berth execs berth-compose, built beside it, as users run it);
#   dc-dockerd docker-compose 1.29 `up -d` against dockerd 20.10 (the
#              reference);
#   dc-berth   docker-compose 1.29 `up -d` against berthd
#              (COMPOSE_API_VERSION=1.41, as the e2e tests use it);
# and for each: `up -d` of the fresh project (networks and containers
# created and started), a second `up -d` of the unchanged running project,
# and `down` (all three timed). After each up -d the script checks that
# the project's 10 containers run; after down, that none is left.
#
# Environment: N, WARMUP (untimed up/down cycles of each row first,
# default 1), DOCKERD (default /usr/sbin/dockerd), DOCKER_COMPOSE (default
# /usr/bin/docker-compose), DOCKER (default /usr/local/bin/docker, for the
# checks and the clean-up), BUSYBOX (default /bin/busybox, static),
# SERVICES (default 10).
#
# Needs root. Prints Markdown on stdout, progress on stderr. It runs in a
# network namespace of its own with only a loopback interface (dockerd's
# and berthd's bridges for the projects' networks live there, never the
# host's docker0; dockerd runs with --bridge=none --iptables=false) and a
# mount namespace of its own (private propagation). On exit, also on
# Ctrl-C, it takes every project down, removes every container left,
# stops berthd and dockerd (with its containerd), kills any shim or
# container process of its containers still there, unmounts what is left
# under its temporary directory, removes the cgroups it created and the
# directory.
set -euo pipefail

N=${1:-${N:-5}}
WARMUP=${WARMUP:-1}
SERVICES=${SERVICES:-10}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
DOCKER_COMPOSE=${DOCKER_COMPOSE:-/usr/bin/docker-compose}
DOCKER=${DOCKER:-/usr/local/bin/docker}
BUSYBOX=${BUSYBOX:-/bin/busybox}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "compare-compose: $*" >&2; }
die() { log "$*"; exit 1; }
. "$REPO_ROOT/bench/lib.sh"

[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a number"
[[ $SERVICES =~ ^[1-9][0-9]*$ ]] || die "SERVICES must be a positive integer"
[ "$(id -u)" = 0 ] || die "needs root (it starts daemons and containers)"

# Installs happen here, before the private network namespace cuts us off.
if [ -z "${COMPARE_COMPOSE_NETNS:-}" ]; then
	for p in "$DOCKERD:docker.io" "$DOCKER_COMPOSE:docker-compose" "$BUSYBOX:busybox-static"; do
		if [ ! -x "${p%%:*}" ]; then
			log "${p%%:*} missing: apt-get install -y ${p#*:}"
			apt-get install -y "${p#*:}" >&2
		fi
	done
fi
for b in "$DOCKERD" "$DOCKER_COMPOSE" "$DOCKER"; do [ -x "$b" ] || die "$b missing"; done
ldd "$BUSYBOX" >/dev/null 2>&1 && die "$BUSYBOX is not static (Debian: busybox-static)"

if [ -z "${COMPARE_COMPOSE_NETNS:-}" ]; then
	exec unshare --net --mount --propagation private env COMPARE_COMPOSE_NETNS=1 "$0" "$@"
fi
ip link set lo up

# dockerd 20.10 would use a running system containerd instead of its own.
if [ -S /run/containerd/containerd.sock ]; then
	die "/run/containerd/containerd.sock exists: dockerd would use that containerd, not its own"
fi

TMP=$(mktemp -d /tmp/bcc.XXXXXX) # short: unix socket paths
BIN=$TMP/bin
EB=$BIN/enginebench
B=$TMP/b D=$TMP/d
BPID='' DPID='' CPID=''
DCG=bcc-docker-${TMP##*.} # dockerd's cgroup parent, ours alone
PROJ=$TMP/proj
: >"$TMP/all-ids"
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)

as_berth() { env DOCKER_HOST="unix://$B/s.sock" BERTH_HOST="unix://$B/s.sock" DOCKER_CONFIG="$TMP/dcfg" DOCKER_CLI_HINTS=false "$@"; }
as_docker() { env DOCKER_HOST="unix://$D/docker.sock" DOCKER_CONFIG="$TMP/dcfg" DOCKER_CLI_HINTS=false "$@"; }
bk() { as_berth "$DOCKER" "$@"; }
dk() { as_docker "$DOCKER" "$@"; }
DC_ENV=(COMPOSE_PROJECT_NAME= COMPOSE_DOCKER_CLI_BUILD=0 COMPOSE_INTERACTIVE_NO_CLI=1)

# The command of a row's action (up, down) on its own project.
row_cmd() { # row action -> argv after env, on stdout one per line
	local row=$1 act=$2 args
	case $act in
	up) args=(up -d) ;;
	down) args=(down) ;;
	esac
	case $row in
	berth) echo env DOCKER_HOST="unix://$B/s.sock" BERTH_HOST="unix://$B/s.sock" \
		"$BIN/berth" compose -f "$PROJ/compose.yaml" -p cc-berth "${args[@]}" ;;
	dc-dockerd) echo env DOCKER_HOST="unix://$D/docker.sock" "${DC_ENV[@]}" \
		"$DOCKER_COMPOSE" --ansi never -f "$PROJ/compose.yaml" -p cc-dcd "${args[@]}" ;;
	dc-berth) echo env DOCKER_HOST="unix://$B/s.sock" COMPOSE_API_VERSION=1.41 "${DC_ENV[@]}" \
		"$DOCKER_COMPOSE" --ansi never -f "$PROJ/compose.yaml" -p cc-dcb "${args[@]}" ;;
	esac
}
# (No argument contains a space: $TMP is mktemp's, the rest is ours.)
row_run() { local c; c=$(row_cmd "$1" "$2"); $c; }
row_time() { local c; c=$(row_cmd "$1" "$2"); "$EB" time -- $c; }
row_cli() { # row docker-args...
	local row=$1
	shift
	case $row in dc-dockerd) dk "$@" ;; *) bk "$@" ;; esac
}
row_project() { case $1 in berth) echo cc-berth ;; dc-dockerd) echo cc-dcd ;; dc-berth) echo cc-dcb ;; esac; }

cleanup() {
	local status=$?
	trap - EXIT INT TERM HUP
	set +e
	log "cleaning up"
	for row in berth dc-dockerd dc-berth; do
		case $row in dc-dockerd) [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null ;; *) [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null ;; esac || continue
		row_cli "$row" ps -aq --no-trunc >>"$TMP/all-ids" 2>/dev/null
		[ -x "$BIN/berth" ] && timeout 60 bash -c "$(row_cmd "$row" down)" >/dev/null 2>&1
	done
	# Whatever container is left, through its own engine.
	if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
		ids=$(as_berth timeout 30 "$DOCKER" ps -aq 2>/dev/null)
		[ -n "$ids" ] && as_berth timeout 60 "$DOCKER" rm -f $ids >/dev/null 2>&1
	fi
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		ids=$(as_docker timeout 30 "$DOCKER" ps -aq 2>/dev/null)
		[ -n "$ids" ] && as_docker timeout 60 "$DOCKER" rm -f $ids >/dev/null 2>&1
	fi
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
	if [ -s "$TMP/all-ids" ] && [ -x "$EB" ]; then
		left=$("$EB" pids --comm berth-shim,containerd-shim-runc-v2 --ids "$TMP/all-ids")
		if [ -n "$left" ]; then
			log "killing leftover per-container processes: $(echo $left)"
			kill -KILL $left 2>/dev/null
		fi
		kill_container_cgroups "$TMP/all-ids" "/sys/fs/cgroup/*/berth/@" "/sys/fs/cgroup/*/$DCG/@"
	fi
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

# --- build ---------------------------------------------------------------
log "building berth (static, as scripts/build.sh) and enginebench"
mkdir -p "$TMP/build" "$BIN"
(cd "$REPO_ROOT" &&
	go build -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static' -o "$TMP/build/" \
		./cmd/berthd ./cmd/berth-shim ./cmd/berth-runtime-init ./cmd/berth ./cmd/berth-compose &&
	go build -o "$TMP/build/enginebench" ./bench/cmd/enginebench)
cp "$TMP/build/"* "$BIN/" # run copies, as compare-engine.sh
rm -rf "$TMP/build"
BERTH_REV=$(cd "$REPO_ROOT" && git rev-parse --short HEAD)
(cd "$REPO_ROOT" && git diff --quiet HEAD -- cmd internal) || BERTH_REV="$BERTH_REV+dirty"

# --- the image and the project ----------------------------------------------
ROOTFS=$TMP/rootfs
mkdir -p "$ROOTFS/bin" "$ROOTFS/etc" "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$ROOTFS/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$ROOTFS/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOTFS/etc/passwd"
echo 'root:x:0:' >"$ROOTFS/etc/group"
mkdir -p "$TMP/dcfg" && echo '{}' >"$TMP/dcfg/config.json"

# SIGKILL as stop signal: sleep as PID 1 ignores SIGTERM, and down would
# then wait 10 s for every container on both sides.
mkdir -p "$PROJ"
{
	echo 'version: "3.8"'
	echo 'services:'
	for s in $(seq "$SERVICES"); do
		cat <<EOF
  svc$s:
    image: busybox:latest
    command: ["sleep", "3600"]
    stop_signal: SIGKILL
    environment:
      SERVICE_INDEX: "$s"
      APP_MODE: bench
      LOG_LEVEL: info
    labels:
      bench.role: worker
      bench.index: "$s"
EOF
	done
} >"$PROJ/compose.yaml"

wait_cli() { # cmd...
	for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

# --- berthd --------------------------------------------------------------
log "starting a private berthd"
mkdir -p "$B"
echo '{}' >"$B/daemon.json"
"$BIN/berthd" --data-root "$B/data" --exec-root "$TMP/bx" -H "unix://$B/s.sock" \
	--pidfile "$B/pid" --config-file "$B/daemon.json" --shim-binary "$BIN/berth-shim" \
	>"$B/berthd.log" 2>&1 &
BPID=$!
wait_cli bk version || { tail -20 "$B/berthd.log" >&2; die "berthd did not start"; }
tar -C "$ROOTFS" -c . | bk import - busybox:latest >/dev/null
log "berthd $BERTH_REV (pid $BPID)"

# --- dockerd -------------------------------------------------------------
log "starting a private dockerd"
mkdir -p "$D/data" "$D/exec"
echo '{}' >"$D/daemon.json" # not /etc/docker/daemon.json
# No default bridge (never the system's docker0); the projects' networks
# are user-defined bridges in this network namespace, from a pool of our
# own; no iptables rules; overlay2; a cgroup parent of our own.
"$DOCKERD" --config-file "$D/daemon.json" \
	--data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
	--pidfile "$D/pid" --bridge=none --iptables=false --ip6tables=false --ip-masq=false \
	--default-address-pool base=10.231.0.0/16,size=24 \
	--storage-driver overlay2 --cgroup-parent "/$DCG" \
	>"$D/dockerd.log" 2>&1 &
DPID=$!
wait_cli dk version || { tail -20 "$D/dockerd.log" >&2; die "dockerd did not start"; }
CPID=$(pgrep -P "$DPID" containerd | head -1 || true)
[ -n "$CPID" ] || die "no containerd child of dockerd"
tar -C "$ROOTFS" -c . | dk import - busybox:latest >/dev/null
DVER=$(dk version --format '{{.Server.Version}}')
CVER=$(containerd --version | awk '{print $3}')
DCVER=$("$DOCKER_COMPOSE" version --short 2>/dev/null || echo '?')
log "dockerd $DVER (pid $DPID), containerd $CVER (pid $CPID), docker-compose $DCVER"

ROWS=(berth dc-dockerd dc-berth)

# Checks: after up, SERVICES running containers of the project; after
# down, none of its containers and networks.
check_up() { # row
	local n
	n=$(row_cli "$1" ps -q --filter "label=com.docker.compose.project=$(row_project "$1")" | wc -l)
	[ "$n" = "$SERVICES" ] || die "$1: $n running containers after up -d, want $SERVICES"
	row_cli "$1" ps -q --no-trunc --filter "label=com.docker.compose.project=$(row_project "$1")" >>"$TMP/all-ids"
}
check_down() { # row
	local n m
	n=$(row_cli "$1" ps -aq --filter "label=com.docker.compose.project=$(row_project "$1")" | wc -l)
	m=$(row_cli "$1" network ls -q --filter "label=com.docker.compose.project=$(row_project "$1")" | wc -l)
	[ "$n" = 0 ] && [ "$m" = 0 ] || die "$1: $n containers, $m networks left after down"
}
cycle() { # row rep|warm
	local row=$1 i=$2 up up2 down
	if [ "$i" = warm ]; then
		row_run "$row" up >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; die "$row: up -d failed"; }
		check_up "$row"
		row_run "$row" up >/dev/null 2>&1
		row_run "$row" down >/dev/null 2>"$TMP/err" || { cat "$TMP/err" >&2; die "$row: down failed"; }
		check_down "$row"
		return
	fi
	up=$(row_time "$row" up)
	check_up "$row"
	if [ ! -s "$TMP/net.$row" ]; then
		# What the project's default network is: driver, subnet, the
		# bridge in this network namespace.
		row_cli "$row" network inspect "$(row_project "$row")_default" \
			--format '{{.Driver}} {{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Id}}' >"$TMP/net.$row" 2>/dev/null || true
		ip -o link show type bridge | awk -F': ' '{print $2}' >"$TMP/bridges.$row"
	fi
	up2=$(row_time "$row" up)
	check_up "$row"
	down=$(row_time "$row" down)
	check_down "$row"
	echo "$up" >>"$TMP/up.$row"
	echo "$up2" >>"$TMP/up2.$row"
	echo "$down" >>"$TMP/down.$row"
	log "rep $i $row: up -d $up ms, unchanged up -d $up2 ms, down $down ms"
}

log "warm-up: $WARMUP untimed cycles of each"
for _ in $(seq "$WARMUP"); do
	for r in "${ROWS[@]}"; do cycle "$r" warm; done
done
log "$N interleaved repetitions of ${ROWS[*]}"
for i in $(seq "$N"); do
	for r in $(rotate "$i" "${ROWS[@]}"); do cycle "$r" "$i"; done
done
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
net() { # row -> driver, subnet, and the bridges in this netns then
	[ -s "$TMP/net.$1" ] && awk '{printf "%s %s", $1, $2}' "$TMP/net.$1" || printf '?'
	echo " (bridges: $(paste -sd' ' "$TMP/bridges.$1" 2>/dev/null))"
}

# --- report --------------------------------------------------------------------
med() { [ -s "$1" ] && median <"$1" || echo n/a; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a=="n/a"||b=="n/a"||b==0) print "n/a"; else printf "%.2fx", a/b}'; }
met() { awk -v v="$1" -v t="$2" 'BEGIN{if (v=="n/a") print "n/a"; else print (v<=t ? "yes" : "**no**")}'; }
UB=$(med "$TMP/up.berth") UD=$(med "$TMP/up.dc-dockerd") UC=$(med "$TMP/up.dc-berth")
U2B=$(med "$TMP/up2.berth") U2D=$(med "$TMP/up2.dc-dockerd") U2C=$(med "$TMP/up2.dc-berth")
DB=$(med "$TMP/down.berth") DD=$(med "$TMP/down.dc-dockerd") DC=$(med "$TMP/down.dc-berth")
R=$(awk -v a="$UB" -v b="$UD" 'BEGIN{printf "%.3f", a/b}')

cat <<EOF

$N interleaved repetitions (after $WARMUP warm-up cycle(s) each) of a $SERVICES-service project (busybox \`sleep 3600\`, 3 environment variables and 2 labels each, the default network); $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, load average $LOAD0 at the start, $LOAD1 at the end.
berth $BERTH_REV; dockerd $DVER with containerd $CVER (--bridge=none --iptables=false; the project network is a user-defined bridge); docker-compose $DCVER.

| median, ms | berth compose → berthd | docker-compose 1.29 → dockerd 20.10 | docker-compose 1.29 → berthd | target (berth compose) | met |
| --- | ---: | ---: | ---: | --- | :---: |
| \`up -d\`, fresh project | $UB | $UD | $UC | ≤ 0.25 × docker-compose on dockerd: berth / dockerd = $(ratio "$UB" "$UD") | $(met "$R" 0.25) |
| \`up -d\`, unchanged running project | $U2B | $U2D | $U2C | ≤ 100 ms | $(met "$U2B" 100) |
| \`down\` | $DB | $DD | $DC | | |

Project networks: berth compose → berthd $(net berth); docker-compose → dockerd $(net dc-dockerd); docker-compose → berthd $(net dc-berth); the bridges are those in the private network namespace just after that row's first timed up -d.

Per repetition (ms): up -d: berth $(paste -sd' ' "$TMP/up.berth"); docker-compose/dockerd $(paste -sd' ' "$TMP/up.dc-dockerd"); docker-compose/berthd $(paste -sd' ' "$TMP/up.dc-berth").
Unchanged up -d: berth $(paste -sd' ' "$TMP/up2.berth"); docker-compose/dockerd $(paste -sd' ' "$TMP/up2.dc-dockerd"); docker-compose/berthd $(paste -sd' ' "$TMP/up2.dc-berth").
down: berth $(paste -sd' ' "$TMP/down.berth"); docker-compose/dockerd $(paste -sd' ' "$TMP/down.dc-dockerd"); docker-compose/berthd $(paste -sd' ' "$TMP/down.dc-berth").
EOF
