package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestStatsNoStreamCPUAndBlockIO: `stats --no-stream` gives a busy
// container a CPU share (no second-long wait for a previous sample) and
// counts block I/O (cgroup v1 blkio or v2 io.stat), through both CLIs.
func TestStatsNoStreamCPUAndBlockIO(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "busy", "busybox", "sh", "-c", "while true; do :; done"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "io", "busybox", "sh", "-c",
		"dd if=/dev/zero of=/f bs=1M count=4 oflag=direct && echo written && sleep 3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	waitFor(t, "io's write", 20*time.Second, func() bool { o, _, _ := d.cli(bins.docker, nil, "logs", "io"); return strings.Contains(o, "written") })
	for _, cli := range []string{bins.docker, bins.cli} {
		start := time.Now()
		o, e, code := d.cli(cli, nil, "stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.BlockIO}}")
		if code != 0 {
			t.Fatalf("%s stats: %s", cli, e)
		}
		if el := time.Since(start); el > 900*time.Millisecond {
			t.Logf("%s stats --no-stream took %s", cli, el)
		}
		rows := map[string][]string{}
		for _, l := range strings.Split(strings.TrimSpace(o), "\n") {
			f := strings.Fields(l)
			rows[f[0]] = f[1:]
		}
		if b := rows["busy"]; len(b) == 0 || b[0] == "0.00%" {
			t.Fatalf("%s: busy container's CPU: %q", cli, o)
		}
		// "0B / 4.19MB": at least the 4 MiB written with O_DIRECT.
		if b := rows["io"]; len(b) < 4 || !strings.HasSuffix(b[3], "MB") || strings.HasPrefix(b[3], "0") {
			t.Fatalf("%s: io container's block I/O: %q", cli, o)
		}
	}
	def, _, _ := d.cli(bins.cli, nil, "stats", "--no-stream", "busy")
	if lines := strings.Split(strings.TrimSpace(def), "\n"); len(lines) != 2 ||
		!strings.HasPrefix(lines[0], "CONTAINER ID   NAME      CPU %") || !strings.Contains(lines[0], "MEM USAGE / LIMIT") || !strings.Contains(lines[1], "busy") {
		t.Fatalf("berth stats default table:\n%s", def)
	}
}
