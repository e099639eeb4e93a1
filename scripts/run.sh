#!/usr/bin/env bash
# The main job: build berth, start berthd with its defaults (data root
# /var/lib/berth, socket /run/berth/berth.sock), import a busybox root
# filesystem as an image, and run a real container workload through the
# berth CLI (and the docker CLI when it is installed): a foreground
# container with limits and a read-only root, a detached one with logs,
# exec and stop. Cleans up what it created; stops berthd if it started it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/build.sh

export BERTH_HOST=unix:///run/berth/berth.sock
berth() { bin/berth "$@"; }
started=
name="berth-demo-$$"
cleanup() {
	berth rm -f "$name" >/dev/null 2>&1 || true
	if [ -n "$started" ]; then
		kill -TERM "$started" 2>/dev/null || true
		wait "$started" 2>/dev/null || true
	fi
}
trap cleanup EXIT

if ! berth version >/dev/null 2>&1; then
	echo "berth: starting berthd (log: /tmp/berthd.log)" >&2
	bin/berthd >/tmp/berthd.log 2>&1 &
	started=$!
	for _ in $(seq 200); do berth version >/dev/null 2>&1 && break; sleep 0.05; done
fi
berth version
# `berth compose` execs bin/berth-compose, built beside bin/berth.
berth compose version

if ! berth image inspect busybox:latest >/dev/null 2>&1; then
	echo "berth: importing busybox-static as busybox:latest" >&2
	rootfs=$(mktemp -d /tmp/berth-rootfs.XXXXXX)
	mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
	cp "$(command -v busybox || echo /bin/busybox)" "$rootfs/bin/busybox"
	for applet in $("$rootfs/bin/busybox" --list); do
		[ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
	echo 'root:x:0:' >"$rootfs/etc/group"
	tar -C "$rootfs" -c . | berth import - busybox:latest
	rm -rf "$rootfs"
fi

echo "berth: a foreground container with limits and a read-only root" >&2
berth run --rm --hostname berth-demo -m 64m --pids-limit 64 --read-only busybox sh -c '
	echo "hello from $(hostname), pid $$ in its own namespace"
	echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"
	echo "capabilities: $(grep CapEff /proc/self/status)"
	echo "seccomp mode: $(grep "^Seccomp:" /proc/self/status)"
	i=0; s=0; while [ $i -lt 20000 ]; do s=$((s+i)); i=$((i+1)); done; echo "computed sum: $s"
	touch /cannot-write 2>/dev/null || echo "root filesystem is read-only"'

echo "berth: a detached container, its logs, an exec, stop and remove" >&2
berth run -d --name "$name" busybox sh -c 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 0.2; done' >/dev/null
sleep 1
berth ps --filter "name=$name"
berth exec "$name" sh -c 'echo "exec sees: $(ps | wc -l) processes"'
berth logs --tail 3 "$name"
berth stop -t 2 "$name" >/dev/null
berth inspect --format 'state: {{.State.Status}}, exit code {{.State.ExitCode}}' "$name"
berth rm "$name" >/dev/null
echo "berth: a user-defined network (embedded DNS) and a named volume" >&2
net=demo-net-$$ vol=demo-vol-$$ web=demo-web-$$
berth network create "$net" >/dev/null
berth volume create "$vol" >/dev/null
berth run --rm -v "$vol":/www busybox sh -c 'echo "served from a volume" > /www/index.html'
berth run -d --name "$web" --network "$net" -v "$vol":/www:ro busybox httpd -f -p 80 -h /www >/dev/null
berth run --rm --network "$net" busybox sh -c \
	"for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET / HTTP/1.0\r\n\r\n' | nc $web 80 && exit 0; sleep 0.2; done; exit 1" | tail -1
berth rm -f "$web" >/dev/null
berth network rm "$net" >/dev/null
berth volume rm "$vol" >/dev/null
if [ -x /usr/local/bin/docker ]; then
	echo "berth: the same daemon through the real docker CLI" >&2
	DOCKER_HOST=$BERTH_HOST /usr/local/bin/docker run --rm busybox echo "hello from docker CLI via berthd"
fi
echo "berth: done" >&2
