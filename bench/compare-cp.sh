#!/usr/bin/env bash
# Compatibility oracle for `cp` and the archive API: the same scenarios
# (HEAD stats, GET archive names, copies into and out of a container with
# Docker's path rules, their errors) run three ways, and the results are
# diffed:
#   1. the docker CLI against a private dockerd 20.10 (the reference),
#   2. the docker CLI against berthd (this checkout),
#   3. the berth CLI against berthd.
#
#   bench/compare-cp.sh            # exit 0 when all three agree
#
# Environment: DOCKERD (default /usr/sbin/dockerd), DOCKER (default
# /usr/local/bin/docker), BUSYBOX (default /bin/busybox, static).
#
# Needs root. Runs in network and mount namespaces of its own (loopback
# only, private propagation); on exit it removes its containers, stops
# both daemons, removes dockerd's cgroup parent and its temporary
# directory. The docker CLI's own
# racy log lines ("Can't add file ... to tar: io: read/write on closed
# pipe", printed when the daemon refuses a copy early) are left out of the
# comparison.
set -euo pipefail

DOCKERD=${DOCKERD:-/usr/sbin/dockerd}
DOCKER=${DOCKER:-/usr/local/bin/docker}
BUSYBOX=${BUSYBOX:-/bin/busybox}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)

log() { echo "compare-cp: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root"
[ -x "$DOCKERD" ] || die "$DOCKERD missing (Debian: docker.io)"
[ -e /run/containerd/containerd.sock ] && die "/run/containerd/containerd.sock exists: dockerd would use that containerd"
if [ -z "${COMPARE_CP_NETNS:-}" ]; then
	exec unshare --net --mount --propagation private env COMPARE_CP_NETNS=1 "$0" "$@"
fi
ip link set lo up

TMP=$(mktemp -d /tmp/bcp.XXXXXX)
DCG=bcp-${TMP##*.} # dockerd's cgroup parent, ours alone
BPID= DPID=
cleanup() {
	set +e
	for h in "unix://$TMP/b.sock" "unix://$TMP/d.sock"; do
		DOCKER_HOST=$h timeout 30 "$DOCKER" rm -f s1 >/dev/null 2>&1
	done
	[ -n "$BPID" ] && kill "$BPID" 2>/dev/null && wait "$BPID" 2>/dev/null
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	for m in $(awk -v t="$TMP" 'index($2, t) == 1 {print $2}' /proc/self/mounts | sort -r); do
		umount -l "$m"
	done
	# dockerd's cgroup parent, in every hierarchy (children first).
	find /sys/fs/cgroup -maxdepth 3 -type d -name "$DCG" 2>/dev/null | while read -r d; do
		find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

log "building berth"
mkdir -p "$TMP/bin"
for c in berthd berth-shim berth-runtime-init berth; do
	(cd "$REPO_ROOT" && go build -tags netgo,osusergo -o "$TMP/bin/$c" "./cmd/$c")
done

log "busybox rootfs"
R=$TMP/rootfs
mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/proc" "$R/sys" "$R/dev"
cp "$BUSYBOX" "$R/bin/busybox"
for a in $("$BUSYBOX" --list); do [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nberth:x:1000:1000::/home/berth:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\nberth:x:1000:\n' >"$R/etc/group"

wait_up() { for _ in $(seq 150); do DOCKER_HOST=$1 "$DOCKER" version >/dev/null 2>&1 && return 0; sleep 0.2; done; return 1; }

log "starting berthd and dockerd"
mkdir -p "$TMP/b" "$TMP/d/data" "$TMP/d/exec"
echo '{}' >"$TMP/b/daemon.json"
echo '{}' >"$TMP/d/daemon.json"
"$TMP/bin/berthd" --data-root "$TMP/b/data" --exec-root "$TMP/bx" -H "unix://$TMP/b.sock" \
	--pidfile "$TMP/b/pid" --config-file "$TMP/b/daemon.json" --shim-binary "$TMP/bin/berth-shim" \
	>"$TMP/b/log" 2>&1 &
BPID=$!
"$DOCKERD" --config-file "$TMP/d/daemon.json" --data-root "$TMP/d/data" --exec-root "$TMP/d/exec" \
	-H "unix://$TMP/d.sock" --pidfile "$TMP/d/pid" --bridge=none --iptables=false --ip6tables=false \
	--ip-masq=false --storage-driver overlay2 --cgroup-parent "/$DCG" >"$TMP/d/log" 2>&1 &
DPID=$!
wait_up "unix://$TMP/b.sock" || die "berthd did not start"
wait_up "unix://$TMP/d.sock" || die "dockerd did not start"
for h in "unix://$TMP/b.sock" "unix://$TMP/d.sock"; do
	tar -C "$R" -c . | DOCKER_HOST=$h "$DOCKER" import - busybox:latest >/dev/null
done

# scenarios CLI HOST: prints one line per observation.
scenarios() {
	local cli=$1 host=$2 w
	w=$(mktemp -d "$TMP/w.XXXX")
	export DOCKER_HOST=$host BERTH_HOST=$host DOCKER_CONFIG=$TMP/cfg DOCKER_CLI_HINTS=false
	cd "$w"
	"$cli" run --name s1 busybox sh -c 'mkdir -p /data/sub /data/e && echo hi > /data/sub/x.txt &&
		ln -s sub /data/ln && ln -s /data/sub/x.txt /data/fl && ln -s /nowhere /data/dangling &&
		ln -s ../../../../data/sub /data/up' >/dev/null
	for p in / /data /data/ /data/. /data/sub/x.txt /data/ln /data/ln/ /data/ln/. /data/fl /data/dangling /data/up /data/up/x.txt /nope /data/sub/x.txt/; do
		printf 'HEAD %s: ' "$p"
		curl -s -I --unix-socket "${host#unix://}" "http://x/containers/s1/archive?path=$p" |
			awk 'tolower($1) == "x-docker-container-path-stat:" {print $2}' | tr -d '\r' | base64 -d 2>/dev/null |
			sed 's/"mtime":"[^"]*",//'
		echo
	done
	# (The whole root is left out: dockerd adds /.dockerenv.)
	for p in /data /data/ /data/. /data/ln /data/ln/ /data/ln/. /data/fl /data/up/ /data/dangling; do
		echo "GET $p: $("$cli" cp "s1:$p" - 2>&1 | tar t 2>&1 | sort | tr '\n' ' ')"
	done
	mkdir L
	echo a >L/a
	mkdir -p L/d/s
	echo b >L/d/s/b
	ln -s a L/la
	for c in "L/a s1:/data/e/" "L/a s1:/data/e/new" "L/d s1:/data/e/" "L/d s1:/data/e/nd" "L/d/. s1:/data/e/nd2" \
		"L/d/. s1:/data/e" "L/la s1:/data/e/" "-L L/la s1:/data/e/lf" "L/a s1:/data/ln" "L/a s1:/data/fl" \
		"L/d s1:/data/sub/x.txt" "L/a s1:/data/none/" "L/a s1:/data/none/x" "L/a s1:/data/dangling" "L/d s1:/data/dangling"; do
		# shellcheck disable=SC2086
		echo "PUT $c: rc=$("$cli" cp $c >out 2>&1; echo $?) $(grep -v 'level=error' out | tr '\n' ' ')"
	done
	# Numeric owners: dockerd also names them (root/root) from its own
	# user database; berth leaves names out.
	echo "TREE: $("$cli" cp s1:/data - | tar tv --numeric-owner | awk '{print $1, $2, $6, $7, $8}' | sort | tr '\n' ';')"
	for c in "s1:/data/sub/x.txt O1" "s1:/data/sub O2" "s1:/data/sub/. O3" "s1:/data/ln O4" "-L s1:/data/ln O5" \
		"s1:/data/ln/ O6" "-L s1:/data/fl O7" "s1:/data/fl O8" "s1:/nope O9" "s1:/data/sub O10/" "s1:/data/sub/x.txt O11/" "s1:/data O12"; do
		# shellcheck disable=SC2086
		echo "OUT $c: rc=$("$cli" cp $c >out 2>&1; echo $?) $(sed "s|$w|W|g" out | tr '\n' ' ')"
	done
	echo "LOCAL: $(find O* -maxdepth 2 -printf '%y %p %l\n' | sort | tr '\n' ';')"
	"$cli" rm -f s1 >/dev/null
	cd /
	rm -rf "$w"
}

log "running the scenarios"
scenarios "$DOCKER" "unix://$TMP/d.sock" >"$TMP/docker-dockerd.txt"
scenarios "$DOCKER" "unix://$TMP/b.sock" >"$TMP/docker-berthd.txt"
scenarios "$TMP/bin/berth" "unix://$TMP/b.sock" >"$TMP/berth-berthd.txt"
log "$(wc -l <"$TMP/docker-dockerd.txt") observations"
status=0
for f in docker-berthd berth-berthd; do
	if diff -u "$TMP/docker-dockerd.txt" "$TMP/$f.txt"; then
		log "$f: same as docker CLI + dockerd"
	else
		log "$f: differs from docker CLI + dockerd"
		status=1
	fi
done
exit $status
