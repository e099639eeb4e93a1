package e2e

import (
	"strings"
	"testing"
)

func TestTopStatsPauseRenameUpdate(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	if _, e, code := d.cli(dk, nil, "run", "-d", "--name", "st", "-m", "64m", "--pids-limit", "50", "busybox", "sleep", "300"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	o, e, code := d.cli(dk, nil, "top", "st")
	if code != 0 || !strings.Contains(o, "PID") || !strings.Contains(o, "sleep 300") {
		t.Fatalf("top: %d %q %q", code, o, e)
	}
	o, e, code = d.cli(dk, nil, "stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}", "st")
	f := strings.Split(strings.TrimSpace(o), "|")
	if code != 0 || len(f) != 3 || f[0] != "st" || !strings.HasSuffix(f[1], "/ 64MiB") || f[2] != "1" {
		t.Fatalf("stats: %d %q %q", code, o, e)
	}
	if _, e, code := d.cli(dk, nil, "pause", "st"); code != 0 {
		t.Fatalf("pause: %s", e)
	}
	o, _, _ = d.cli(dk, nil, "inspect", "--format", "{{.State.Status}} {{.State.Paused}}", "st")
	if strings.TrimSpace(o) != "paused true" {
		t.Fatalf("after pause: %q", o)
	}
	if _, e, code := d.cli(dk, nil, "unpause", "st"); code != 0 {
		t.Fatalf("unpause: %s", e)
	}
	if _, e, code := d.cli(dk, nil, "rename", "st", "st2"); code != 0 {
		t.Fatalf("rename: %s", e)
	}
	if _, e, code := d.cli(dk, nil, "update", "-m", "128m", "--memory-swap", "256m", "st2"); code != 0 {
		t.Fatalf("update: %s", e)
	}
	o, _, _ = d.cli(dk, nil, "exec", "st2", "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
	if strings.TrimSpace(o) != "134217728" {
		t.Fatalf("memory limit after update: %q", o)
	}
	o, _, _ = d.cli(dk, nil, "inspect", "--format", "{{.Name}} {{.HostConfig.Memory}}", "st2")
	if strings.TrimSpace(o) != "/st2 134217728" {
		t.Fatalf("inspect after rename/update: %q", o)
	}
	_, e, code = d.cli(dk, nil, "start", "st2")
	if code != 0 {
		t.Fatalf("start of a running container (304) failed: %s", e)
	}
	if _, e, code := d.cli(dk, nil, "kill", "st2"); code != 0 {
		t.Fatalf("kill: %s", e)
	}
	_, e, code = d.cli(dk, nil, "kill", "st2")
	if code == 0 || !strings.Contains(e, "is not running") {
		t.Fatalf("kill stopped: %d %q", code, e)
	}
	o, _, _ = d.cli(dk, nil, "ps", "-a", "--filter", "exited=137", "--format", "{{.Names}}")
	if strings.TrimSpace(o) != "st2" {
		t.Fatalf("ps exited=137: %q", o)
	}
}
