#!/usr/bin/env bash
# Compare the start-up cost of berth-runtime and runc, side by side.
#
#   sudo bench/compare.sh [N]        (N iterations, default 200)
#
# Each iteration runs, one after the other and in an order that rotates
# every iteration, three commands that all end in /bin/true:
#
#   berth-runtime --root R1 run -b BUNDLE ID
#   runc          --root R2 run -b BUNDLE ID
#   unshare --fork --pid --mount --uts --ipc --net chroot ROOTFS /bin/true
#
# The last is the kernel floor: the same namespaces with no runtime. Since
# the runtimes alternate, machine noise hits all of them alike. Each run is
# timed (fork to wait) and its peak RSS taken from wait4's rusage by the
# small helper bench/cmd/runstat. At the end the script prints a Markdown
# table (medians, p90, ratio berth/runc, peak RSS) on stdout; progress goes
# to stderr.
#
# Environment: N, WARMUP (untimed runs of each first, default 5),
# RUNC (default /usr/bin/runc), BUSYBOX (default /bin/busybox, must be
# static: Debian busybox-static), BERTH_RUNTIME (a prebuilt binary; by
# default berth-runtime is built from this checkout).
#
# Everything it creates lives in one temporary directory that is removed
# on exit, after every container left in its state roots is deleted with
# `delete -f`, also when interrupted.
set -euo pipefail

N=${1:-${N:-200}}
WARMUP=${WARMUP:-5}
RUNC=${RUNC:-/usr/bin/runc}
BUSYBOX=${BUSYBOX:-/bin/busybox}

die() { echo "compare.sh: $*" >&2; exit 1; }
log() { echo "compare.sh: $*" >&2; }

[[ $N =~ ^[1-9][0-9]*$ ]] || die "N must be a positive integer, not '$N'"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be a number, not '$WARMUP'"
[[ $(id -u) -eq 0 ]] || die "must run as root (it creates containers)"
[[ -x $RUNC ]] || die "$RUNC not found (Debian: apt-get install -y runc)"
[[ -x $BUSYBOX ]] || die "$BUSYBOX not found (Debian: apt-get install -y busybox-static)"
command -v unshare >/dev/null || die "unshare not found (util-linux)"
command -v go >/dev/null || die "go not found"

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-bench.XXXXXX")
# Both runtimes run from copies in $work/bin, made the same way: how a
# binary's pages got into the page cache changes its resident size (a file
# fresh from the Go linker maps ~800 KiB more here than a copy of it).
berth=$work/bin/berth-runtime
runc=$work/bin/runc
root_berth=$work/state-berth
root_runc=$work/state-runc

cleanup() {
	local status=$?
	trap - EXIT INT TERM HUP
	set +e
	local bin root id
	for pair in "$berth|$root_berth" "$runc|$root_runc" "$RUNC|$root_runc"; do
		bin=${pair%%|*} root=${pair#*|}
		[[ -d $root && -x $bin ]] || continue
		for id in $("$bin" --root "$root" list -q 2>/dev/null); do
			"$bin" --root "$root" delete -f "$id" >/dev/null 2>&1 ||
				log "could not delete container $id in $root"
		done
	done
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

cd "$repo"
mkdir "$work/bin" "$work/build"
berth_src=${BERTH_RUNTIME:-$work/build/berth-runtime}
if [[ -z ${BERTH_RUNTIME:-} ]]; then
	log "building berth-runtime"
	# The same flags as scripts/build.sh (static binary).
	go build -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static' -o "$work/build/" ./cmd/berth-runtime ./cmd/berth-runtime-init
fi
cp "$berth_src" "$berth"
# berth-runtime starts the container init binary found beside it.
init_src=$(dirname "$berth_src")/berth-runtime-init
if [[ -x $init_src ]]; then
	cp "$init_src" "$work/bin/berth-runtime-init"
fi
cp "$RUNC" "$runc"
go build -o "$work/build/runstat" ./bench/cmd/runstat
runstat=$work/build/runstat
rootfs=$("$runstat" bundle "$work/bundle" "$berth" "$BUSYBOX")

names=(berth runc unshare)
# cmd_for NAME ID: the command line of one run, in the array "cmd".
cmd_for() {
	case $1 in
	berth) cmd=("$berth" --root "$root_berth" run -b "$work/bundle" "$2") ;;
	runc) cmd=("$runc" --root "$root_runc" run -b "$work/bundle" "$2") ;;
	unshare) cmd=(unshare --fork --pid --mount --uts --ipc --net chroot "$rootfs" /bin/true) ;;
	esac
}

for ((i = 1; i <= WARMUP; i++)); do
	for name in "${names[@]}"; do
		cmd_for "$name" "warm-$name-$i"
		"$runstat" run "${cmd[@]}" >/dev/null
	done
done

log "running $N interleaved iterations"
for ((i = 0; i < N; i++)); do
	for ((k = 0; k < 3; k++)); do
		name=${names[(i + k) % 3]}
		cmd_for "$name" "bench-$name-$i"
		# "<iteration> <wall-ns> <peak-rss-KiB> <runstat's own peak RSS>"
		echo "$i $("$runstat" run "${cmd[@]}")" >>"$work/$name.dat"
	done
	if (((i + 1) % 50 == 0)); then log "$((i + 1))/$N"; fi
done

# stats FILE COLUMN: "<median> <p90>" of a column (p90 by nearest rank).
stats() {
	sort -n -k"$2,$2" "$1" | awk -v c="$2" '
		{ v[NR] = $c }
		END {
			med = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			r = int(0.9 * NR); if (r < 0.9 * NR) r++
			print med, v[r]
		}'
}
declare -A med p90 rss floor
for name in "${names[@]}"; do
	read -r "med[$name]" "p90[$name]" < <(stats "$work/$name.dat" 2)
	read -r "rss[$name]" _ < <(stats "$work/$name.dat" 3)
	read -r "floor[$name]" _ < <(stats "$work/$name.dat" 4)
done
# Median over iterations of berth's time divided by runc's in the same one.
paired=$(awk 'NR == FNR { t[$1] = $2; next } ($1 in t) { print t[$1] / $2 }' \
	"$work/berth.dat" "$work/runc.dat" | sort -g |
	awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')

ms() { awk -v x="$1" 'BEGIN { printf "%.2f", x / 1e6 }'; }
# kib NAME: the median peak RSS, or "≤ floor" when it is within 64 KiB of
# runstat's own peak RSS, which ru_maxrss inherits (see bench.Result).
kib() {
	awk -v x="${rss[$1]}" -v f="${floor[$1]}" 'BEGIN {
		if (x <= f + 64) printf "≤ %.0f KiB (launcher floor)", f
		else printf "%.0f KiB (%.1f MiB)", x, x / 1024 }'
}
ratio=$(awk -v a="${med[berth]}" -v b="${med[runc]}" 'BEGIN { printf "%.2f", a / b }')
paired=$(awk -v x="$paired" 'BEGIN { printf "%.2f", x }')
above=$(awk -v a="${med[berth]}" -v b="${med[runc]}" -v f="${med[unshare]}" \
	'BEGIN { if (b > f) printf "%.2f", (a - f) / (b - f); else print "n/a" }')
rssdiff=$(awk -v a="${rss[berth]}" -v b="${rss[runc]}" 'BEGIN { printf "%+.0f KiB", a - b }')
time_ok=$(awk -v r="$ratio" 'BEGIN { print (r <= 0.60) ? "yes" : "no" }')
rss_ok=$(awk -v a="${rss[berth]}" -v b="${rss[runc]}" 'BEGIN { print (a < b) ? "yes" : "no" }')

rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git -C "$repo" status --porcelain -- cmd internal go.mod go.sum 2>/dev/null) ]]; then
	rev="$rev, with uncommitted changes"
fi
[[ -n ${BERTH_RUNTIME:-} ]] && rev="prebuilt $BERTH_RUNTIME"
runc_version=$("$RUNC" --version | awk 'NR == 1 { print $3 }')

cat <<EOF
$N interleaved iterations after $WARMUP warm-up runs each, $(date -u +%Y-%m-%d),
Linux $(uname -r), $(nproc) CPUs. berth-runtime: $rev; runc $runc_version.

| command (process /bin/true) | median | p90 | median peak RSS |
| --- | ---: | ---: | ---: |
| \`berth-runtime run\` | $(ms "${med[berth]}") ms | $(ms "${p90[berth]}") ms | $(kib berth) |
| \`runc run\` | $(ms "${med[runc]}") ms | $(ms "${p90[runc]}") ms | $(kib runc) |
| \`unshare ... chroot\` (kernel floor) | $(ms "${med[unshare]}") ms | $(ms "${p90[unshare]}") ms | $(kib unshare) |

| berth vs runc | measured | target | met |
| --- | ---: | ---: | :---: |
| time, ratio of medians | ${ratio}x | ≤ 0.60x | $time_ok |
| time, median of per-iteration ratios | ${paired}x | | |
| time above the kernel floor, ratio | ${above}x | | |
| peak RSS, berth − runc | $rssdiff | < 0 | $rss_ok |
EOF
