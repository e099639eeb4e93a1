# Shared helpers of the bench/compare-*.sh scripts (sourced, not run).
# The caller defines log() (its own prefix) before using stop_pid.

# stop_pid PID SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
stop_pid() {
	local p=$1
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
	kill -TERM "$p"
	for _ in $(seq $(($2 * 10))); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	log "pid $p did not stop within $2 s: SIGKILL"
	kill -KILL "$p" 2>/dev/null
	sleep 0.2
}

# wait_cli WHAT CMD...: retry CMD (output discarded) for up to 30 s.
wait_cli() {
	shift
	for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

# Numbers on stdin, one a line -> their median / 90th percentile.
median() { sort -n | awk '{a[NR]=$1} END {if (!NR) {print "n/a"; exit} if (NR%2) print a[(NR+1)/2]; else {v=sprintf("%.2f", (a[NR/2]+a[NR/2+1])/2); sub(/\.?0+$/, "", v); print v}}'; }
p90() { sort -n | awk '{a[NR]=$1} END {if (!NR) {print "n/a"; exit} i=int(NR*0.9+0.999); if (i<1) i=1; print a[i]}'; }

# rotate I ITEMS... -> the items rotated left by I, one a line: the order
# of the engines changes from one repetition to the next.
rotate() {
	local i=$1
	shift
	local a=("$@") n=$#
	for k in $(seq 0 $((n - 1))); do echo "${a[$(((k + i) % n))]}"; done
}

# build_berth REPO DIR: berthd, berth-shim, berth-runtime-init and berth
# (static, as scripts/build.sh) into DIR, as copies: a binary fresh from
# the Go linker maps more of its text than a copy of the same file does.
build_berth() {
	local repo=$1 dir=$2
	mkdir -p "$dir/.build"
	# As scripts/build.sh: the CLI without cgo, built by Go's own linker
	# (no glibc start-up code on every command).
	(cd "$repo" &&
		go build -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static' -o "$dir/.build/" \
			./cmd/berthd ./cmd/berth-shim ./cmd/berth-runtime-init &&
		CGO_ENABLED=0 go build -tags netgo,osusergo -o "$dir/.build/" ./cmd/berth)
	cp "$dir/.build/"* "$dir/"
	rm -rf "$dir/.build"
}

# busybox_rootfs BUSYBOX DIR: a busybox image's root (every applet linked,
# /etc/passwd and /etc/group for root).
busybox_rootfs() {
	local bb=$1 root=$2
	mkdir -p "$root/bin" "$root/etc" "$root/tmp"
	cp "$bb" "$root/bin/busybox"
	for applet in $("$root/bin/busybox" --list); do
		[ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
	echo 'root:x:0:' >"$root/etc/group"
}

# kill_container_cgroups IDS_FILE GLOB...: for every container id in
# IDS_FILE, each GLOB (with @ standing for the id, e.g.
# "/sys/fs/cgroup/*/berth/@") names cgroup directories; processes still in
# them are killed and the directories removed.
kill_container_cgroups() {
	local ids=$1 id cg procs pat
	shift
	while read -r id; do
		for pat in "$@"; do
			for cg in ${pat//@/$id}; do
				[ -d "$cg" ] || continue
				procs=$(cat "$cg/cgroup.procs" 2>/dev/null)
				if [ -n "$procs" ]; then
					log "killing leftover container processes in $cg: $(echo $procs)"
					kill -KILL $procs 2>/dev/null
					sleep 0.2
				fi
				find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
			done
		done
	done <"$ids"
}

# umount_under DIR: lazily unmount everything mounted below DIR, deepest
# first.
umount_under() {
	grep -o " $1[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m"; done
}
