#!/usr/bin/env bash
# Compare networking side by side: berthd (this checkout; netlink,
# nftables DNAT in its own table, embedded DNS) against a private dockerd
# 20.10 (Debian's docker.io: iptables rules, docker-proxy for published
# ports on 127.0.0.1, its embedded DNS), the same image in both: busybox
# plus bench/cmd/netbench (static).
#
#   bench/compare-net.sh [N]     # N interleaved repetitions (default 7)
#
# Measured (medians over the repetitions, the engines' order rotating):
#   1. TCP throughput from the host (the root of the engine's network
#      namespace) to a container through its published port on 127.0.0.1
#      (-p 127.0.0.1:15001:5001): MB (10^6 bytes) per connection of MIB
#      MiB; beside it the same to the container's address (no NAT, no
#      proxy), the ceiling of both;
#   2. TCP throughput container to container on a user-defined bridge
#      network (`exec` of netbench send in one container to the other's
#      name);
#   3. network set-up + teardown per container: `run --rm nb true` with
#      the default bridge minus the same with --network none (RM_N
#      interleaved runs of each, docker CLI), and berthd's own "network"
#      start phase from its debug log;
#   4. DNS: DNS_CONTAINERS containers on one user-defined network; one
#      of them asks the embedded DNS (127.0.0.11, UDP) DNS_QUERIES times
#      for the others' names, one query at a time: median answer time.
#
# Environment: N, MIB (default 256), RM_N (default 3N), DNS_CONTAINERS
# (default 200), DNS_QUERIES (default 400), DOCKERD (default
# /usr/sbin/dockerd), DOCKER (default /usr/local/bin/docker), BUSYBOX
# (default /bin/busybox, static), BERTH_LOG_LEVEL (default debug).
#
# Needs root. Markdown on stdout, progress on stderr.
#
# Isolation: the script re-runs itself in a network namespace of its own
# (only loopback at first) and a mount namespace of its own (private
# propagation). berthd runs there: its bridges (bcnb0, bcnb1), veths and
# nftables table live in that namespace. dockerd runs in a second network
# namespace of its own below it (same mount namespace), on a bridge the
# script creates there (bcnd0, 10.241.0.1/24; never the host's docker0),
# with iptables enabled: its iptables (nf_tables backend) rules, FORWARD
# policy and docker-proxy processes are in that namespace, and the script
# checks while dockerd runs that the host's iptables rules have no DOCKER
# chain. Two namespaces, not one: with br_netfilter the bridged traffic
# of each engine's networks would also cross the other engine's forward
# rules (dockerd's isolation chains, and the FORWARD policy DROP it sets
# when it has to turn IP forwarding on itself), so each engine's figures
# would include the other's rules.
# Every byte of traffic stays inside these namespaces.
#
# Cleanup, also on Ctrl-C: every container removed through its engine,
# berthd, its shims, dockerd and its containerd stopped, leftover shims
# and container processes killed, mounts under the temporary directory
# unmounted, the cgroups created removed; the namespaces (with their
# bridges, veths, nftables and iptables rules) die with their last
# process. The outer script then checks the host (links named bcn*,
# nftables tables, iptables DOCKER chains, mounts, processes, cgroups)
# and removes the temporary directory.
set -euo pipefail

N=${1:-${N:-7}}
MIB=${MIB:-256}
RM_N=${RM_N:-$((3 * N))}
DNS_CONTAINERS=${DNS_CONTAINERS:-200}
DNS_QUERIES=${DNS_QUERIES:-400}
DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
DOCKER=${DOCKER:-/usr/local/bin/docker}
BUSYBOX=${BUSYBOX:-/bin/busybox}
BERTH_LOG_LEVEL=${BERTH_LOG_LEVEL:-debug}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
SELF=$REPO_ROOT/bench/$(basename "$0")
# shellcheck source=lib.sh
. "$REPO_ROOT/bench/lib.sh"

log() { echo "compare-net: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# =========================================================================
# Outer part: on the host. Build, snapshot the host, run the inner part in
# the private namespaces, check the host, remove the directory.
# =========================================================================
if [ -z "${COMPARE_NET_TMP:-}" ]; then
	[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"
	[[ $MIB =~ ^[1-9][0-9]*$ ]] || die "MIB must be a positive integer"
	[[ $DNS_CONTAINERS =~ ^[1-9][0-9]*$ ]] || die "DNS_CONTAINERS must be a positive integer"
	[ "$(id -u)" = 0 ] || die "needs root (it starts daemons and containers)"
	if [ ! -x "$DOCKERD" ]; then
		log "$DOCKERD missing: apt-get install -y docker.io"
		apt-get install -y docker.io >&2
	fi
	if [ ! -x "$BUSYBOX" ]; then
		log "$BUSYBOX missing: apt-get install -y busybox-static"
		apt-get install -y busybox-static >&2
	fi
	[ -x "$DOCKER" ] || die "$DOCKER (the docker CLI) missing"
	ldd "$BUSYBOX" >/dev/null 2>&1 && die "$BUSYBOX is not static (Debian: busybox-static)"
	command -v iptables-save >/dev/null || die "iptables missing (dockerd needs it)"
	# dockerd 20.10 would use a containerd serving the default socket
	# instead of starting its own.
	[ -S /run/containerd/containerd.sock ] && die "/run/containerd/containerd.sock exists: dockerd would use that containerd"

	# Short: unix socket paths under it are limited to 108 bytes.
	TMP=$(mktemp -d /tmp/bcn.XXXXXX)
	trap 'rm -rf "$TMP"' EXIT
	BIN=$TMP/bin
	log "building berth (static) and the helpers"
	build_berth "$REPO_ROOT" "$BIN"
	(cd "$REPO_ROOT" &&
		CGO_ENABLED=0 go build -o "$BIN/netbench" ./bench/cmd/netbench &&
		go build -o "$BIN/enginebench" ./bench/cmd/enginebench)

	snapshot() { # dir
		mkdir -p "$1"
		ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | sort >"$1/links"
		"$BIN/netbench" nft-tables | sort >"$1/nft"
		iptables-save 2>/dev/null | grep -c DOCKER >"$1/docker-rules" || true
		findmnt -rn -o TARGET | sort >"$1/mounts"
	}
	snapshot "$TMP/host.before"
	status=0
	unshare --net --mount --propagation private env COMPARE_NET_TMP="$TMP" "$SELF" "$@" || status=$?

	# --- the host after the run ------------------------------------------
	snapshot "$TMP/host.after"
	left=
	ours=$(grep '^bcn' "$TMP/host.after/links" || true)
	[ -n "$ours" ] && left="$left links: $(echo $ours);"
	new=$(comm -13 "$TMP/host.before/nft" "$TMP/host.after/nft" | tr '\n' ' ')
	[ -n "$new" ] && log "nftables tables on the host now that were not there before (another process's?): $new"
	if [ "$(cat "$TMP/host.after/docker-rules")" != "$(cat "$TMP/host.before/docker-rules")" ]; then
		left="$left iptables DOCKER rules: $(cat "$TMP/host.before/docker-rules") before, $(cat "$TMP/host.after/docker-rules") after;"
	fi
	ours=$(grep -F "$TMP" "$TMP/host.after/mounts" || true)
	[ -n "$ours" ] && left="$left mounts: $(echo $ours);"
	ours=$(pgrep -f "$TMP" || true)
	[ -n "$ours" ] && left="$left processes: $(echo $ours);"
	ours=$(find /sys/fs/cgroup -maxdepth 2 -type d -name "bcn-docker-${TMP##*.}" 2>/dev/null || true)
	[ -n "$ours" ] && left="$left cgroups: $(echo $ours);"
	if [ -n "$left" ]; then
		log "LEFT ON THE HOST:$left"
		echo
		echo "Host check after the run: **left on the host:**$left"
		[ "$status" = 0 ] && status=1
	else
		log "host check: no bcn* link, no new iptables DOCKER rule, no mount under $TMP, no process, no cgroup left"
		echo
		echo "Host check after the run (outside the namespaces): no link named bcn*, the host's iptables DOCKER rule count unchanged ($(cat "$TMP/host.after/docker-rules")), no mount under $TMP, no process of the run, no cgroup of dockerd's left."
	fi
	exit "$status"
fi

# =========================================================================
# Inner part: in the private network and mount namespaces.
# =========================================================================
TMP=$COMPARE_NET_TMP
BIN=$TMP/bin
EB=$BIN/enginebench
NB=$BIN/netbench
B=$TMP/b D=$TMP/d
BPID= DPID= CPID=
DCG=bcn-docker-${TMP##*.} # dockerd's cgroup parent, ours alone
BYTES=$((MIB << 20))
: >"$TMP/all-ids"
ip link set lo up

as_berth() { env DOCKER_HOST="unix://$B/s.sock" DOCKER_CONFIG="$TMP/dcfg" DOCKER_CLI_HINTS=false "$@"; }
as_docker() { env DOCKER_HOST="unix://$D/docker.sock" DOCKER_CONFIG="$TMP/dcfg" DOCKER_CLI_HINTS=false "$@"; }
bk() { as_berth "$DOCKER" "$@"; }
dk() { as_docker "$DOCKER" "$@"; }
cli() { # engine args...
	local e=$1
	shift
	case $e in berth) bk "$@" ;; docker) dk "$@" ;; esac
}
# in_ns ENGINE CMD...: CMD in the root of the engine's network namespace
# (the "host" its published ports are on).
in_ns() {
	local e=$1
	shift
	case $e in
	berth) "$@" ;;
	docker) nsenter --net="/proc/$DPID/ns/net" "$@" ;;
	esac
}

cleanup() {
	local status=$?
	trap - EXIT INT TERM HUP
	set +e
	log "cleaning up"
	if [ -n "$BPID" ] && kill -0 "$BPID" 2>/dev/null; then
		as_berth timeout 30 "$DOCKER" ps -aq --no-trunc >>"$TMP/all-ids" 2>/dev/null
		ids=$(as_berth timeout 30 "$DOCKER" ps -aq 2>/dev/null)
		[ -n "$ids" ] && as_berth timeout 120 "$DOCKER" rm -f $ids >/dev/null 2>&1
	fi
	if [ -n "$DPID" ] && kill -0 "$DPID" 2>/dev/null; then
		as_docker timeout 30 "$DOCKER" ps -aq --no-trunc >>"$TMP/all-ids" 2>/dev/null
		ids=$(as_docker timeout 30 "$DOCKER" ps -aq 2>/dev/null)
		[ -n "$ids" ] && as_docker timeout 180 "$DOCKER" rm -f $ids >/dev/null 2>&1
	fi
	[ -n "$BPID" ] && "$EB" pids --parent "$BPID" --comm berth-shim >"$TMP/berth-shims" 2>/dev/null
	stop_pid "$BPID" 10
	for p in $(cat "$TMP/berth-shims" 2>/dev/null); do
		for _ in $(seq 30); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = berth-shim ] || break; sleep 0.1; done
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = berth-shim ] && log "berth-shim $p still there: SIGKILL" && kill -KILL "$p"
	done
	stop_pid "$DPID" 20 # it stops its containerd and docker-proxy processes
	stop_pid "$CPID" 5
	# docker-proxy processes dockerd left (if it had to be killed): by
	# their network namespace, which is dockerd's.
	if [ -n "${DNETNS:-}" ]; then
		for p in $(pgrep -x docker-proxy); do
			[ "$(readlink "/proc/$p/ns/net")" = "$DNETNS" ] && log "killing leftover docker-proxy $p" && kill -KILL "$p"
		done
	fi
	if [ -s "$TMP/all-ids" ]; then
		left=$("$EB" pids --comm berth-shim,containerd-shim-runc-v2 --ids "$TMP/all-ids")
		[ -n "$left" ] && log "killing leftover per-container processes: $(echo $left)" && kill -KILL $left
		kill_container_cgroups "$TMP/all-ids" "/sys/fs/cgroup/*/berth/@" "/sys/fs/cgroup/*/$DCG/@"
	fi
	umount_under "$TMP"
	for cg in /sys/fs/cgroup/*/"$DCG"; do
		[ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

BERTH_REV=$(cd "$REPO_ROOT" && git rev-parse --short HEAD)
(cd "$REPO_ROOT" && git diff --quiet HEAD -- cmd internal) || BERTH_REV="$BERTH_REV+dirty"

# --- the image: busybox + netbench -------------------------------------------
busybox_rootfs "$BUSYBOX" "$TMP/rootfs"
cp "$NB" "$TMP/rootfs/netbench"
mkdir -p "$TMP/dcfg" && echo '{}' >"$TMP/dcfg/config.json"

# --- berthd, in this namespace -------------------------------------------------
log "starting a private berthd"
mkdir -p "$B"
echo '{"default-address-pools": [{"base": "10.232.0.0/16", "size": 24}]}' >"$B/daemon.json"
"$BIN/berthd" --data-root "$B/data" --exec-root "$TMP/bx" -H "unix://$B/s.sock" \
	--pidfile "$B/pid" --config-file "$B/daemon.json" --shim-binary "$BIN/berth-shim" \
	--bridge bcnb0 --bip 10.231.0.1/24 --log-level "$BERTH_LOG_LEVEL" >"$B/berthd.log" 2>&1 &
BPID=$!
wait_cli berthd bk version || { tail -20 "$B/berthd.log" >&2; die "berthd did not start"; }
tar -C "$TMP/rootfs" -c . | bk import - nb:latest >/dev/null
log "berthd $BERTH_REV (pid $BPID)"

# --- dockerd, in a network namespace of its own ---------------------------------
log "starting a private dockerd in a network namespace of its own"
mkdir -p "$D/data" "$D/exec"
echo '{"default-address-pools": [{"base": "10.242.0.0/16", "size": 24}]}' >"$D/daemon.json"
# Its own bridge (not docker0), created in its namespace before it starts;
# iptables and docker-proxy as by default.
unshare --net sh -c 'ip link set lo up && ip link add bcnd0 type bridge &&
	ip addr add 10.241.0.1/24 dev bcnd0 && ip link set bcnd0 up && exec "$@"' sh \
	"$DOCKERD" --config-file "$D/daemon.json" \
	--data-root "$D/data" --exec-root "$D/exec" -H "unix://$D/docker.sock" \
	--pidfile "$D/pid" --bridge bcnd0 --iptables=true --ip6tables=false --userland-proxy=true \
	--userland-proxy-path "$(command -v docker-proxy || echo /usr/sbin/docker-proxy)" \
	--storage-driver overlay2 --cgroup-parent "/$DCG" >"$D/dockerd.log" 2>&1 &
DPID=$!
wait_cli dockerd dk version || { tail -20 "$D/dockerd.log" >&2; die "dockerd did not start"; }
CPID=$(pgrep -P "$DPID" containerd | head -1 || true)
DNETNS=$(readlink "/proc/$DPID/ns/net")
[ -n "$CPID" ] || die "no containerd child of dockerd"
tar -C "$TMP/rootfs" -c . | dk import - nb:latest >/dev/null
DVER=$(dk version --format '{{.Server.Version}}')
log "dockerd $DVER (pid $DPID), containerd (pid $CPID)"

# Where dockerd's iptables rules are.
DRULES=$(in_ns docker iptables-save 2>/dev/null | grep -c DOCKER || true)
BRULES=$(iptables-save 2>/dev/null | grep -c DOCKER || true)
HRULES=$(nsenter --net=/proc/1/ns/net iptables-save 2>/dev/null | grep -c DOCKER || true)
HRULES0=$(cat "$TMP/host.before/docker-rules")
log "iptables lines naming DOCKER: dockerd's namespace $DRULES, berthd's $BRULES, host $HRULES (before the run: $HRULES0)"
[ "$DRULES" -gt 0 ] || die "no DOCKER rule in dockerd's namespace: is its iptables set-up elsewhere?"
[ "$HRULES" = "$HRULES0" ] || die "the host's iptables changed while dockerd runs: $HRULES0 -> $HRULES DOCKER lines"
DFWD=$(in_ns docker iptables-save -t filter | sed -n 's/^:FORWARD \([A-Z]*\).*/\1/p')

# --- networks and the long-running containers ----------------------------------------
bk network create --subnet 10.232.1.0/24 -o com.docker.network.bridge.name=bcnb1 nbnet >/dev/null
dk network create --subnet 10.242.1.0/24 -o com.docker.network.bridge.name=bcnd1 nbnet >/dev/null
for e in berth docker; do
	cli "$e" run -d --name sink --network nbnet -p 127.0.0.1:15001:5001 nb /netbench sink >/dev/null
	cli "$e" run -d --name sender --network nbnet nb sleep 3600 >/dev/null
done
SINKIP_berth=$(bk inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' sink)
SINKIP_docker=$(dk inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' sink)
sinkip() { if [ "$1" = berth ]; then echo "$SINKIP_berth"; else echo "$SINKIP_docker"; fi; }
NPROXY=$(pgrep -x docker-proxy | wc -l)
log "docker: nat OUTPUT: $(in_ns docker iptables-save -t nat | grep -- '^-A OUTPUT' | paste -sd';')"
# CPU time (clock ticks) of the docker-proxy processes: it grows with the
# traffic it relays.
proxy_ticks() { for p in $(pgrep -x docker-proxy); do awk '{print $14 + $15}' "/proc/$p/stat"; done | awk '{s+=$1} END {print s+0}'; }
log "sink at $SINKIP_berth (berth), $SINKIP_docker (dockerd); docker-proxy processes: $NPROXY"

# The links the traffic crosses, as each engine set them up (stderr).
for e in berth docker; do
	pid=$(cli "$e" inspect -f '{{.State.Pid}}' sink)
	log "$e: sink's eth0: $(nsenter --net="/proc/$pid/ns/net" ip -d -o link show eth0 | sed 's/  */ /g')"
	for l in $(in_ns "$e" ip -o link show master "$([ "$e" = berth ] && echo bcnb1 || echo bcnd1)" | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | head -1); do
		log "$e: host side $l: $(in_ns "$e" ip -d -o link show "$l" | sed 's/  */ /g')"
	done
	log "$e: sysctls: $(in_ns "$e" sh -c 'for k in net/ipv4/ip_forward net/bridge/bridge-nf-call-iptables; do printf "%s=%s " $k $(cat /proc/sys/$k 2>/dev/null || echo -); done')"
done

# Warm-up (and the sinks are listening): one small transfer on each path.
for e in berth docker; do
	in_ns "$e" "$NB" send -addr 127.0.0.1:15001 -bytes 1048576 >/dev/null
	in_ns "$e" "$NB" send -addr "$(sinkip "$e")":5001 -bytes 1048576 >/dev/null
	cli "$e" exec sender /netbench send -addr sink:5001 -bytes 1048576 >/dev/null
done

# --- 1 and 2: throughput -----------------------------------------------------------
PT0=$(proxy_ticks)
log "throughput: $N interleaved repetitions, $MIB MiB per connection"
ENGINES=(berth docker)
for i in $(seq "$N"); do
	line="rep $i:"
	for e in $(rotate "$i" "${ENGINES[@]}"); do
		p=$(in_ns "$e" "$NB" send -addr 127.0.0.1:15001 -bytes "$BYTES")
		d=$(in_ns "$e" "$NB" send -addr "$(sinkip "$e")":5001 -bytes "$BYTES")
		c=$(cli "$e" exec sender /netbench send -addr sink:5001 -bytes "$BYTES")
		echo "$p" >>"$TMP/pub.$e"
		echo "$d" >>"$TMP/direct.$e"
		echo "$c" >>"$TMP/c2c.$e"
		line="$line $e published $p direct $d c2c $c"
	done
	log "$line MB/s"
done

PT1=$(proxy_ticks)
log "docker-proxy CPU during the throughput runs: $(((PT1 - PT0) * 1000 / $(getconf CLK_TCK))) ms"

# --- 3: run --rm, bridge vs none ---------------------------------------------------------
VARIANTS=(berth:none berth:bridge docker:none docker:bridge)
log "run --rm: $RM_N interleaved repetitions of ${VARIANTS[*]} (after 2 warm-ups)"
time_rm() { # engine:network
	local e=${1%%:*} net=${1#*:}
	case $e in
	berth) as_berth "$EB" time -- "$DOCKER" run --rm --network "$net" nb true ;;
	docker) as_docker "$EB" time -- "$DOCKER" run --rm --network "$net" nb true ;;
	esac
}
for _ in 1 2; do for v in "${VARIANTS[@]}"; do time_rm "$v" >/dev/null; done; done
: >"$TMP/log.rm.bridge"
for i in $(seq "$RM_N"); do
	line="rep $i:"
	for v in $(rotate "$i" "${VARIANTS[@]}"); do
		o0=$(stat -c %s "$B/berthd.log")
		t=$(time_rm "$v")
		o1=$(stat -c %s "$B/berthd.log")
		# berthd's log lines of the bridge runs alone, for their phases.
		[ "$v" = berth:bridge ] && head -c "$o1" "$B/berthd.log" | tail -c +$((o0 + 1)) >>"$TMP/log.rm.bridge"
		echo "$t" >>"$TMP/rm.${v/:/.}"
		line="$line $v $t"
	done
	log "$line ms"
done
"$EB" phases "$TMP/log.rm.bridge" >"$TMP/phases.rm" || true

# --- 4: DNS with DNS_CONTAINERS containers on the network -----------------------------------
NAMES=$(seq -f 'd%g' 1 "$DNS_CONTAINERS" | paste -sd,)
for e in berth docker; do
	log "$e: starting $DNS_CONTAINERS containers on nbnet"
	t0=$(date +%s%N)
	for k in $(seq "$DNS_CONTAINERS"); do
		cli "$e" run -d --name "d$k" --network nbnet nb sleep 3600 >/dev/null
	done
	t1=$(date +%s%N)
	echo $(((t1 - t0) / 1000000)) >"$TMP/dnsstart.$e"
	log "$e: $DNS_CONTAINERS run -d on nbnet took $(((t1 - t0) / 1000000)) ms"
	cli "$e" exec sender /netbench dns -names "$NAMES" -n "$DNS_CONTAINERS" >/dev/null # warm-up
done
log "DNS: $N interleaved repetitions of $DNS_QUERIES queries"
for i in $(seq "$N"); do
	line="rep $i:"
	for e in $(rotate "$i" "${ENGINES[@]}"); do
		out=$(cli "$e" exec sender /netbench dns -names "$NAMES" -n "$DNS_QUERIES")
		med=$(sed 's/.*median_us=\([0-9]*\).*/\1/' <<<"$out")
		p9=$(sed 's/.*p90_us=\([0-9]*\).*/\1/' <<<"$out")
		ans=$(sed 's/.*answered=\([0-9]*\).*/\1/' <<<"$out")
		[ "$ans" = "$DNS_QUERIES" ] || log "$e: only $ans of $DNS_QUERIES queries answered with a record"
		echo "$med" >>"$TMP/dns.$e"
		echo "$p9" >>"$TMP/dns90.$e"
		line="$line $e ${med}µs (p90 ${p9})"
	done
	log "$line"
done

# --- report ---------------------------------------------------------------------------
med() { [ -s "$1" ] && median <"$1" || echo n/a; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (a=="n/a"||b=="n/a"||b==0) print "n/a"; else printf "%.2fx", a/b}'; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN{if (a=="n/a"||b=="n/a") print "n/a"; else printf "%.1f", a-b}'; }
PB=$(med "$TMP/pub.berth") PD=$(med "$TMP/pub.docker")
DB=$(med "$TMP/direct.berth") DD=$(med "$TMP/direct.docker")
CB=$(med "$TMP/c2c.berth") CD=$(med "$TMP/c2c.docker")
RBN=$(med "$TMP/rm.berth.none") RBB=$(med "$TMP/rm.berth.bridge")
RDN=$(med "$TMP/rm.docker.none") RDB=$(med "$TMP/rm.docker.bridge")
NETB=$(awk '$1=="network"{print $2}' "$TMP/phases.rm")
QB=$(med "$TMP/dns.berth") QD=$(med "$TMP/dns.docker")
# The median of the per-repetition ratios berth / dockerd: each pair ran
# back to back, under the same outside load.
paired() { paste "$TMP/$1.berth" "$TMP/$1.docker" | awk '$2>0{printf "%.3f\n", $1/$2}' | median; }
PR1=$(paired pub) PR1D=$(paired direct) PR2=$(paired c2c) PR4=$(paired dns)
yes_if() { awk -v c="$1" 'BEGIN{print (c ? "yes" : "**no**")}'; }
MET1=$(awk -v a="$PB" -v b="$PD" 'BEGIN{print (a>=2*b ? "yes" : "**no**")}')
MET2=$(awk -v a="$CB" -v b="$CD" 'BEGIN{print (a>=b ? "yes" : "**no**")}')
MET3=$(awk -v d="$(sub "$RBB" "$RBN")" 'BEGIN{if (d=="n/a") print "n/a"; else print (d<=5 ? "yes" : "**no**")}')
MET3P=$(awk -v p="${NETB:-n/a}" 'BEGIN{if (p=="n/a") print "n/a"; else print (p<=5 ? "yes" : "**no**")}')
MET4=$(awk -v q="$QB" 'BEGIN{print (q<1000 ? "yes" : "**no**")}')

cat <<EOF

$N interleaved repetitions (throughput: $MIB MiB per connection; DNS: $DNS_QUERIES queries each), $RM_N of \`run --rm\`; $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg).
berth $BERTH_REV (berthd --log-level $BERTH_LOG_LEVEL); dockerd $DVER (iptables on, nf_tables backend, in its own network namespace, FORWARD policy $DFWD; userland proxy on: $NPROXY docker-proxy processes for the published port, $(((PT1 - PT0) * 1000 / $(getconf CLK_TCK))) ms of CPU in them during the throughput runs); docker CLI for both.

| median | target | berth | dockerd 20.10 | berth / dockerd | median of the per-repetition ratios | target met |
| --- | ---: | ---: | ---: | ---: | ---: | :---: |
| 1. host → container, published port on 127.0.0.1 | ≥ 2× dockerd | $PB MB/s | $PD MB/s | $(ratio "$PB" "$PD") | ${PR1}x | $MET1 |
| (reference: host → the container's address, no NAT) | | $DB MB/s | $DD MB/s | $(ratio "$DB" "$DD") | ${PR1D}x | |
| 2. container → container, user-defined bridge, by name | ≥ dockerd | $CB MB/s | $CD MB/s | $(ratio "$CB" "$CD") | ${PR2}x | $MET2 |
| 3. \`run --rm nb true\`, --network none | | $RBN ms | $RDN ms | | | |
| 3. \`run --rm nb true\`, default bridge | | $RBB ms | $RDB ms | | | |
| 3. bridge − none (set-up + teardown, end to end) | ≤ 5 ms | $(sub "$RBB" "$RBN") ms | $(sub "$RDB" "$RDN") ms | | | $MET3 |
| 3. berthd's "network" start phase in the bridge runs (debug log, $(awk '$1=="network"{print $3}' "$TMP/phases.rm") starts) | ≤ 5 ms | ${NETB:-n/a} ms | | | | $MET3P |
| 4. DNS answer, $DNS_CONTAINERS containers on the network (time) | < 1 ms | $QB µs | $QD µs | $(ratio "$QB" "$QD") | ${PR4}x | $MET4 |

$DNS_CONTAINERS × \`run -d --network nbnet nb sleep 3600\` (sequential, untimed otherwise): berth $(cat "$TMP/dnsstart.berth") ms, dockerd $(cat "$TMP/dnsstart.docker") ms.
DNS p90 (median over repetitions): berth $(med "$TMP/dns90.berth") µs, dockerd $(med "$TMP/dns90.docker") µs.
Per repetition, MB/s: published berth $(paste -sd' ' "$TMP/pub.berth"); dockerd $(paste -sd' ' "$TMP/pub.docker"). c2c berth $(paste -sd' ' "$TMP/c2c.berth"); dockerd $(paste -sd' ' "$TMP/c2c.docker"). direct berth $(paste -sd' ' "$TMP/direct.berth"); dockerd $(paste -sd' ' "$TMP/direct.docker").
Per repetition, run --rm ms: berth none $(paste -sd' ' "$TMP/rm.berth.none"); bridge $(paste -sd' ' "$TMP/rm.berth.bridge"); dockerd none $(paste -sd' ' "$TMP/rm.docker.none"); bridge $(paste -sd' ' "$TMP/rm.docker.bridge").
Per repetition, DNS median µs: berth $(paste -sd' ' "$TMP/dns.berth"); dockerd $(paste -sd' ' "$TMP/dns.docker").
berthd start phases during the bridge run --rm (median ms since the previous phase; starts seen): $(awk '{printf "%s%s %s (%s)", (NR>1?", ":""), $1, $2, $3}' "$TMP/phases.rm").
EOF
