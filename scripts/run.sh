#!/usr/bin/env bash
# The main job: build berth, make a root filesystem from busybox-static,
# and run a real container workload with berth-runtime (namespaces,
# cgroup limits, seccomp, read-only rootfs), then clean up.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/build.sh

work=$(mktemp -d /tmp/berth-demo.XXXXXX)
state="$work/state"
id="berth-demo-$$"
cleanup() {
	bin/berth-runtime --root "$state" delete -f "$id" >/dev/null 2>&1 || true
	rm -rf "$work"
}
[ -n "${BERTH_KEEP:-}" ] || trap cleanup EXIT

bundle="$work/bundle"
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/etc" "$bundle/rootfs/tmp"
cp "$(command -v busybox || echo /bin/busybox)" "$bundle/rootfs/bin/busybox"
for applet in $("$bundle/rootfs/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$bundle/rootfs/etc/passwd"
echo 'root:x:0:' >"$bundle/rootfs/etc/group"

runtime_bin="$PWD/bin/berth-runtime"
(cd "$bundle" && "$runtime_bin" spec)
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
s = json.load(open(path))
s["process"]["terminal"] = False
s["process"]["args"] = ["sh", "-c",
  "echo \"hello from $(hostname), pid $$ in its own namespace\"; "
  "echo \"memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)\"; "
  "echo \"capabilities: $(grep CapEff /proc/self/status)\"; "
  "echo \"seccomp mode: $(grep '^Seccomp:' /proc/self/status)\"; "
  "i=0; s=0; while [ $i -lt 20000 ]; do s=$((s+i)); i=$((i+1)); done; echo \"computed sum: $s\"; "
  "touch /cannot-write 2>/dev/null || echo 'root filesystem is read-only'"]
s["hostname"] = "berth-demo"
s["linux"]["resources"]["memory"] = {"limit": 64 << 20}
s["linux"]["resources"]["pids"] = {"limit": 64}
s["linux"]["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
  "syscalls": [{"names": ["kexec_load", "reboot", "swapon"], "action": "SCMP_ACT_ERRNO"}]}
json.dump(s, open(path, "w"), indent=1)
PY
echo "berth: running container $id with berth-runtime" >&2
status=0
bin/berth-runtime --root "$state" run -b "$bundle" "$id" || status=$?
echo "berth: container exited with status $status" >&2
exit "$status"
