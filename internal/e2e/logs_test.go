package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLogsOptionsAndDrivers(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	out, e, code := d.cli(dk, nil, "run", "-d", "--name", "lines", "busybox", "sh", "-c", "i=1; while [ $i -le 50 ]; do echo line $i; i=$((i+1)); done; sleep 0.3; echo oops >&2")
	if code != 0 {
		t.Fatalf("run: %s", e)
	}
	id := strings.TrimSpace(out)
	d.cli(dk, nil, "wait", "lines")
	o, errOut, _ := d.cli(dk, nil, "logs", "--tail", "3", "lines")
	if o != "line 49\nline 50\n" || errOut != "oops\n" { // stderr was written 0.3 s after stdout
		t.Fatalf("tail 3: out %q err %q", o, errOut)
	}
	// The last record is stderr's.
	o, errOut, _ = d.cli(dk, nil, "logs", "-t", "--tail", "1", "lines")
	f := strings.Fields(errOut)
	if o != "" || len(f) != 2 || f[1] != "oops" {
		t.Fatalf("timestamps: out %q err %q", o, errOut)
	}
	if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
		t.Fatalf("timestamp %q: %v", f[0], err)
	}
	o, _, _ = d.cli(dk, nil, "logs", "--since", "1h", "lines")
	if strings.Count(o, "line ") != 50 {
		t.Fatalf("since 1h: %d lines", strings.Count(o, "line "))
	}
	o, _, _ = d.cli(dk, nil, "logs", "--until", "2000-01-01T00:00:00Z", "lines")
	if o != "" {
		t.Fatalf("until 2000: %q", o)
	}
	// --since keeps only what came after.
	// "late" only once the test has taken mid (exec touches /go): a
	// sleep in the container left a loaded machine room to see "early"
	// only after "late" was logged.
	d.cli(dk, nil, "run", "-d", "--name", "twice", "busybox", "sh", "-c", "echo early; until [ -e /go ]; do sleep 0.05; done; echo late")
	waitFor(t, "early", 10*time.Second, func() bool { o, _, _ := d.cli(dk, nil, "logs", "twice"); return o == "early\n" })
	time.Sleep(10 * time.Millisecond) // mid strictly after early's timestamp
	mid := time.Now().UTC().Format(time.RFC3339Nano)
	if _, e, code := d.cli(dk, nil, "exec", "twice", "touch", "/go"); code != 0 {
		t.Fatalf("exec: %s", e)
	}
	d.cli(dk, nil, "wait", "twice")
	if o, _, _ := d.cli(dk, nil, "logs", "--since", mid, "twice"); o != "late\n" {
		t.Fatalf("since %s: %q", mid, o)
	}
	if o, _, _ := d.cli(dk, nil, "logs", "--until", mid, "twice"); o != "early\n" {
		t.Fatalf("until %s: %q", mid, o)
	}

	// The json-file log is where inspect says, in Docker's format.
	lp, _, _ := d.cli(dk, nil, "inspect", "--format", "{{.LogPath}}", "lines")
	lp = strings.TrimSpace(lp)
	if filepath.Base(lp) != id+"-json.log" {
		t.Fatalf("log path %q", lp)
	}
	b, err := os.ReadFile(lp)
	if err != nil || !strings.HasPrefix(string(b), `{"log":"line 1\n","stream":"stdout","time":"`) {
		t.Fatalf("json-file content %q (%v)", string(b[:min(len(b), 80)]), err)
	}

	// Follow ends when the container does.
	d.cli(dk, nil, "run", "-d", "--name", "slow", "busybox", "sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.3; done")
	start := time.Now()
	o, _, code = d.cli(dk, nil, "logs", "-f", "slow")
	if code != 0 || o != "tick 1\ntick 2\ntick 3\n" || time.Since(start) > 10*time.Second {
		t.Fatalf("logs -f: %d %q after %s", code, o, time.Since(start))
	}

	// Rotation: max-size and max-file bound the files.
	d.cli(dk, nil, "run", "--name", "rot", "--log-opt", "max-size=10k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
		"i=0; while [ $i -lt 2000 ]; do echo 0123456789012345678901234567890123456789 $i; i=$((i+1)); done")
	lp, _, _ = d.cli(dk, nil, "inspect", "--format", "{{.LogPath}}", "rot")
	files, _ := filepath.Glob(strings.TrimSpace(lp) + "*")
	var logs []string
	for _, f := range files {
		if !strings.HasSuffix(f, ".lock") {
			logs = append(logs, f)
		}
	}
	if len(logs) != 2 {
		t.Fatalf("rotation kept %v, want 2 files", logs)
	}
	o, _, _ = d.cli(dk, nil, "logs", "--tail", "1", "rot")
	if !strings.HasSuffix(o, " 1999\n") {
		t.Fatalf("tail after rotation: %q", o)
	}

	// Drivers: none cannot be read; local can.
	d.cli(dk, nil, "run", "--name", "quiet", "--log-driver", "none", "busybox", "echo", "hidden")
	_, errOut, code = d.cli(dk, nil, "logs", "quiet")
	if code == 0 || !strings.Contains(errOut, "does not support reading") {
		t.Fatalf("logs with none: %d %q", code, errOut)
	}
	d.cli(dk, nil, "run", "--name", "loc", "--log-driver", "local", "busybox", "echo", "kept locally")
	o, _, code = d.cli(dk, nil, "logs", "loc")
	if code != 0 || o != "kept locally\n" {
		t.Fatalf("logs with local: %d %q", code, o)
	}
	_, errOut, code = d.cli(dk, nil, "run", "--log-opt", "bogus=1", "busybox", "true")
	if code != 125 || !strings.Contains(errOut, "unknown log opt 'bogus'") {
		t.Fatalf("bad log opt: %d %q", code, errOut)
	}
}
