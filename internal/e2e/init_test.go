package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestInitStopsAtOnce: a PID 1 without a SIGTERM handler ignores stop's
// signal and is killed after the timeout (137); under --init the signal
// is forwarded and the container stops at once (143).
func TestInitStopsAtOnce(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, tc := range []struct{ cli, name string }{{bins.docker, "i-docker"}, {bins.cli, "i-berth"}} {
		if _, e, code := d.cli(tc.cli, nil, "run", "-d", "--name", tc.name+"-plain", "busybox", "sleep", "3600"); code != 0 {
			t.Fatalf("run: %s", e)
		}
		if _, e, code := d.cli(tc.cli, nil, "run", "-d", "--init", "--name", tc.name, "busybox", "sleep", "3600"); code != 0 {
			t.Fatalf("run --init: %s", e)
		}
		start := time.Now()
		if _, e, code := d.cli(tc.cli, nil, "stop", "-t", "1", tc.name+"-plain"); code != 0 {
			t.Fatalf("stop: %s", e)
		}
		if el := time.Since(start); el < time.Second {
			t.Fatalf("plain PID 1 stopped in %s: it should ignore SIGTERM", el)
		}
		if st, _ := d.inspectState(tc.name + "-plain"); st.ExitCode != 137 {
			t.Fatalf("plain exit code %d, want 137", st.ExitCode)
		}
		start = time.Now()
		if _, e, code := d.cli(tc.cli, nil, "stop", "-t", "30", tc.name); code != 0 {
			t.Fatalf("stop --init: %s", e)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Fatalf("--init container took %s to stop", el)
		}
		if st, _ := d.inspectState(tc.name); st.ExitCode != 143 {
			t.Fatalf("--init exit code %d, want 143 (SIGTERM forwarded)", st.ExitCode)
		}
	}
}

// TestInitForwardsAndReaps: berth-init is PID 1 (/sbin/docker-init,
// read-only), forwards signals, reaps orphans (a plain PID 1 that does not
// wait leaves them zombies) and exits with the child's status.
func TestInitForwardsAndReaps(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dk := bins.docker
	if _, e, code := d.cli(dk, nil, "run", "-d", "--init", "--name", "fw", "busybox", "sh", "-c",
		`trap 'echo got USR1' USR1; trap 'echo got HUP' HUP; echo ready; while true; do sleep 0.05; done`); code != 0 {
		t.Fatalf("run: %s", e)
	}
	waitFor(t, "fw ready", 10*time.Second, func() bool { o, _, _ := d.cli(dk, nil, "logs", "fw"); return strings.Contains(o, "ready") })
	o, _, _ := d.cli(dk, nil, "exec", "fw", "cat", "/proc/1/cmdline")
	if !strings.HasPrefix(o, "/sbin/docker-init\x00--\x00sh\x00") {
		t.Fatalf("PID 1 is %q", o)
	}
	if _, e, code := d.cli(dk, nil, "exec", "fw", "sh", "-c", "echo x > /sbin/docker-init"); code == 0 {
		t.Fatalf("init binary is writable: %s", e)
	}
	if _, e, code := d.cli(dk, nil, "kill", "-s", "USR1", "fw"); code != 0 {
		t.Fatalf("kill -s USR1: %s", e)
	}
	if _, e, code := d.cli(bins.cli, nil, "kill", "-s", "HUP", "fw"); code != 0 {
		t.Fatalf("berth kill -s HUP: %s", e)
	}
	waitFor(t, "signals forwarded", 10*time.Second, func() bool {
		o, _, _ := d.cli(dk, nil, "logs", "fw")
		return strings.Contains(o, "got USR1") && strings.Contains(o, "got HUP")
	})

	// An orphan that exits: berth-init reaps it; a plain `sleep` PID 1
	// never does.
	orphan := `(sleep 0.2 &); exec sleep 3600`
	for _, tc := range []struct {
		name   string
		init   bool
		zombie bool
	}{{"reap-plain", false, true}, {"reap-init", true, false}} {
		args := []string{"run", "-d", "--name", tc.name}
		if tc.init {
			args = append(args, "--init")
		}
		if _, e, code := d.cli(bins.cli, nil, append(args, "busybox", "sh", "-c", orphan)...); code != 0 {
			t.Fatalf("run %s: %s", tc.name, e)
		}
		var last string
		waitFor(t, tc.name+" orphan's end", 10*time.Second, func() bool {
			o, _, _ := d.cli(dk, nil, "exec", tc.name, "ps", "-o", "pid,stat,args")
			last = o
			if tc.zombie {
				return zombies(o) == 1
			}
			return !strings.Contains(o, " sleep 0.2\n") && zombies(o) == 0 && strings.Contains(o, " sleep 3600\n")
		})
		if tc.zombie {
			continue
		}
		if zombies(last) != 0 {
			t.Fatalf("zombies under berth-init:\n%s", last)
		}
	}

	// Exit statuses come through.
	for _, tc := range []struct {
		cmd  string
		code int
	}{{"exit 7", 7}, {"kill -KILL $$", 137}, {"nosuchcommand", 127}} {
		_, _, code := d.cli(bins.cli, nil, "run", "--rm", "--init", "busybox", "sh", "-c", tc.cmd)
		if code != tc.code {
			t.Fatalf("run --init sh -c %q: exit %d, want %d", tc.cmd, code, tc.code)
		}
	}
}

// zombies counts ps rows in state Z.
func zombies(ps string) int {
	n := 0
	for _, line := range strings.Split(ps, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], "Z") {
			n++
		}
	}
	return n
}

// TestDaemonInitDefault: berthd --init runs every container under the
// init unless it says --init=false; --init-path names the binary, and a
// missing one fails the start clearly.
func TestDaemonInitDefault(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	d.stop()
	d.args = []string{"--init", "--init-path", bins.berthInit}
	d.start()
	if _, e, code := d.cli(bins.docker, nil, "run", "-d", "--name", "def", "busybox", "sleep", "3600"); code != 0 {
		t.Fatalf("run: %s", e)
	}
	if _, e, code := d.cli(bins.cli, nil, "run", "-d", "--init=false", "--name", "noinit", "busybox", "sleep", "3600"); code != 0 {
		t.Fatalf("run --init=false: %s", e)
	}
	if o, _, _ := d.cli(bins.docker, nil, "exec", "def", "cat", "/proc/1/cmdline"); !strings.HasPrefix(o, "/sbin/docker-init\x00") {
		t.Fatalf("default init: PID 1 is %q", o)
	}
	if o, _, _ := d.cli(bins.docker, nil, "exec", "noinit", "cat", "/proc/1/cmdline"); !strings.HasPrefix(o, "sleep\x00") {
		t.Fatalf("--init=false: PID 1 is %q", o)
	}
	d.stop()
	d.args = []string{"--init-path", "/nonexistent/berth-init"}
	d.start()
	_, e, code := d.cli(bins.docker, nil, "run", "--init", "busybox", "true")
	if code == 0 || !strings.Contains(e, "/nonexistent/berth-init") {
		t.Fatalf("missing init binary: %d %q", code, e)
	}
}
