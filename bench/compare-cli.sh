#!/usr/bin/env bash
# Time the berth CLI's own start-up: the berth binary of an older revision
# against this checkout's, interleaved, on one private berthd (this
# checkout's) with busybox-static imported as busybox.
#
#   bench/compare-cli.sh OLD_REV [N]    # N interleaved repetitions (default 20)
#
# Each repetition runs, for each binary in a rotating order,
#   berth version                                  (one API round trip)
#   berth run --rm --network none busybox true     (the whole client side of run)
#   berth run -d --network none busybox true       (create + start; removed untimed)
# and times it with enginebench (fork to wait4); and, as the reference, the
# same `run --rm` through the Go client in a warm process (bench/cmd/clientrun:
# the requests berth run --rm sends, without process start-up or the first
# connection). It prints the medians and p90s in ms, the new/old ratios and
# how far the new CLI's `run --rm` is from the Go client's.
# GODEBUG=inittrace=1 of `berth version` is printed for both binaries too
# (its total and its largest packages), and their sizes.
#
# Then the same CLI commands against bench/cmd/stubd, an Engine API stub
# that answers at once: the CLI's own share without the daemon's work, next
# to the floor of any Go program doing that `run --rm` with the Go client
# from a cold start (clientrun -warmup 0, started fresh each time).
#
# The old berth is built as scripts/build.sh built it then (static, external
# linker); the new one as scripts/build.sh builds it now (CGO_ENABLED=0:
# Go's own linker, no C start-up code; see docs/benchmarks.md).
#
# Runs as root in a network and mount namespace of its own (NETNS=host
# skips that). On exit it stops berthd, kills any shim of it left after 3 s,
# unmounts what is left under its temporary directory and removes it.
set -euo pipefail

OLD=${1:?usage: bench/compare-cli.sh OLD_REV [N]}
N=${2:-20}
BUSYBOX=${BUSYBOX:-/bin/busybox}
REPO_ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=lib.sh
. "$REPO_ROOT/bench/lib.sh"

log() { echo "compare-cli: $*" >&2; }
die() { log "$*"; exit 1; }

[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"
[ "$(id -u)" = 0 ] || die "needs root (it starts berthd and containers)"
[ -x "$BUSYBOX" ] || die "$BUSYBOX missing (Debian: busybox-static)"
git -C "$REPO_ROOT" rev-parse --verify -q "$OLD^{commit}" >/dev/null || die "no such revision: $OLD"

if [ "${NETNS:-}" != host ] && [ -z "${COMPARE_CLI_NETNS:-}" ]; then
	exec unshare --net --mount --propagation private env COMPARE_CLI_NETNS=1 "$0" "$@"
fi
[ -n "${COMPARE_CLI_NETNS:-}" ] && ip link set lo up

# Short: berth-shim's socket lives under <exec-root>/c/<64-hex-id>/.
TMP=$(mktemp -d /tmp/bcl.XXXXXX)
BIN=$TMP/new OLDBIN=$TMP/old B=$TMP/b EB=$TMP/enginebench
BPID= SPID=
SOCK=unix://$B/s.sock

cleanup() {
	local status=$?
	trap - EXIT INT TERM HUP
	set +e
	[ -n "$BPID" ] && [ -x "$EB" ] && "$EB" pids --parent "$BPID" --comm berth-shim >"$TMP/shims" 2>/dev/null
	stop_pid "$BPID" 10
	stop_pid "$SPID" 10
	for p in $(cat "$TMP/shims" 2>/dev/null); do
		for _ in $(seq 30); do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = berth-shim ] || break; sleep 0.1; done
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = berth-shim ] && kill -KILL "$p" 2>/dev/null
	done
	umount_under "$TMP"
	rm -rf "$TMP"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

log "building berth at $OLD and at this checkout (static, as scripts/build.sh)"
mkdir -p "$TMP/src"
git -C "$REPO_ROOT" archive "$OLD" | tar -x -C "$TMP/src"
mkdir -p "$OLDBIN/.b" "$BIN/.b"
(cd "$TMP/src" && go build -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static' -o "$OLDBIN/.b/" ./cmd/berth)
(cd "$REPO_ROOT" && go build -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static' -o "$BIN/.b/" \
	./cmd/berthd ./cmd/berth-shim ./cmd/berth-runtime-init ./cmd/berth-init &&
	CGO_ENABLED=0 go build -tags netgo,osusergo -o "$BIN/.b/" ./cmd/berth ./cmd/berth-compose &&
	go build -o "$TMP/enginebench" ./bench/cmd/enginebench && go build -o "$TMP/stubd" ./bench/cmd/stubd &&
	CGO_ENABLED=0 go build -o "$TMP/clientrun" ./bench/cmd/clientrun)
# Run copies (a binary fresh from the linker maps more of its text).
for d in "$OLDBIN" "$BIN"; do cp "$d/.b/"* "$d/" && rm -rf "$d/.b"; done
rm -rf "$TMP/src"

busybox_rootfs "$BUSYBOX" "$TMP/rootfs"
mkdir -p "$B" "$TMP/dcfg" && echo '{}' >"$B/daemon.json" && echo '{}' >"$TMP/dcfg/config.json"
"$BIN/berthd" --data-root "$B/data" --exec-root "$TMP/x" -H "$SOCK" --pidfile "$B/pid" \
	--config-file "$B/daemon.json" --shim-binary "$BIN/berth-shim" --log-level info >"$B/berthd.log" 2>&1 &
BPID=$!
as_berth() { env BERTH_HOST="$SOCK" DOCKER_CONFIG="$TMP/dcfg" "$@"; }
wait_cli berthd as_berth "$BIN/berth" version || { tail -20 "$B/berthd.log" >&2; die "berthd did not start"; }
tar -C "$TMP/rootfs" -c . | as_berth "$BIN/berth" import - busybox:latest >/dev/null

for v in old new; do
	d=$OLDBIN
	[ $v = new ] && d=$BIN
	GODEBUG=inittrace=1 as_berth "$d/berth" version 2>"$TMP/init.$v" >/dev/null
	echo "binary $v: $(stat -c %s "$d/berth") bytes"
	echo "inittrace $v: $(awk '{ms+=$5} END {printf "%d packages, %.2f ms", NR, ms}' "$TMP/init.$v"); largest: $(sort -k5 -g -r "$TMP/init.$v" | head -3 | awk '{printf "%s%s %s ms", (NR>1?", ":""), $2, $5}')"
done

# Warm-up, then the interleaved repetitions.
for v in "$OLDBIN" "$BIN"; do
	as_berth "$v/berth" run --rm --network none busybox true
	as_berth "$v/berth" version >/dev/null
done
for i in $(seq 0 $((N - 1))); do
	for v in $(rotate "$i" old new go); do
		if [ "$v" = go ]; then
			as_berth "$TMP/clientrun" -n 1 -warmup 1 busybox true >>"$TMP/run.go"
			continue
		fi
		d=$OLDBIN
		[ "$v" = new ] && d=$BIN
		as_berth "$EB" time -- "$d/berth" version >>"$TMP/version.$v"
		as_berth "$EB" time -- "$d/berth" run --rm --network none busybox true >>"$TMP/run.$v"
		as_berth "$EB" time -- "$d/berth" run -d --name "cli-$v-$i" --network none busybox true >>"$TMP/rund.$v"
		as_berth "$d/berth" rm -f "cli-$v-$i" >/dev/null
	done
done

echo "berth CLI at $OLD (old) vs $(git -C "$REPO_ROOT" rev-parse --short HEAD) (new), $N interleaved repetitions, median / p90 ms:"
for t in version run rund; do
	mo=$(median <"$TMP/$t.old") mn=$(median <"$TMP/$t.new")
	printf '%-8s old %s / %s   new %s / %s   new/old %s\n' "$t" \
		"$mo" "$(p90 <"$TMP/$t.old")" "$mn" "$(p90 <"$TMP/$t.new")" "$(awk -v a="$mn" -v b="$mo" 'BEGIN {printf "%.2f", a/b}')"
done
mg=$(median <"$TMP/run.go")
echo "run --rm through the Go client (warm process): $mg / $(p90 <"$TMP/run.go");" \
	"berth CLI - Go client: old $(awk -v a="$(median <"$TMP/run.old")" -v b="$mg" 'BEGIN {printf "%.2f", a-b}') ms," \
	"new $(awk -v a="$(median <"$TMP/run.new")" -v b="$mg" 'BEGIN {printf "%.2f", a-b}') ms"

# The CLI's own share: the same commands against the instant stub.
"$TMP/stubd" "$TMP/stub.sock" &
SPID=$!
as_stub() { env BERTH_HOST="unix://$TMP/stub.sock" DOCKER_CONFIG="$TMP/dcfg" "$@"; }
wait_cli stubd as_stub "$BIN/berth" version || die "stubd did not start"
for i in $(seq 0 $((N - 1))); do
	for v in $(rotate "$i" old new go); do
		if [ "$v" = go ]; then
			as_stub "$EB" time -- "$TMP/clientrun" -n 1 -warmup 0 busybox true >>"$TMP/srun.go"
			continue
		fi
		d=$OLDBIN
		[ "$v" = new ] && d=$BIN
		as_stub "$EB" time -- "$d/berth" version >>"$TMP/sversion.$v"
		as_stub "$EB" time -- "$d/berth" run --rm busybox true >>"$TMP/srun.$v"
		as_stub "$EB" time -- "$d/berth" run -d busybox true >>"$TMP/srund.$v"
	done
done
echo "against stubd (the CLI's own share), median / p90 ms:"
for t in version run rund; do
	mo=$(median <"$TMP/s$t.old") mn=$(median <"$TMP/s$t.new")
	printf '%-8s old %s / %s   new %s / %s   new/old %s\n' "$t" \
		"$mo" "$(p90 <"$TMP/s$t.old")" "$mn" "$(p90 <"$TMP/s$t.new")" "$(awk -v a="$mn" -v b="$mo" 'BEGIN {printf "%.2f", a/b}')"
done
echo "run --rm by a fresh Go-client process (clientrun -warmup 0): $(median <"$TMP/srun.go") / $(p90 <"$TMP/srun.go")"
