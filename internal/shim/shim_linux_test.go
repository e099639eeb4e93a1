package shim_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"encoding/json"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
	}{{"exit 0", 0}, {"exit 3", 3}, {"true", 0}} {
		t.Run(fmt.Sprint(tc.code, "-", tc.script), func(t *testing.T) {
			x := newCtr(t, tc.script, nil)
			c := x.spawn()
			st, err := c.State(ctx(t))
			if err != nil || st.Status != shim.StatusCreated || st.Pid <= 0 {
				t.Fatalf("state before start: %+v, %v", st, err)
			}
			pid, err := c.Start(ctx(t))
			if err != nil || pid != st.Pid {
				t.Fatalf("start: pid %d (created %d), %v", pid, st.Pid, err)
			}
			e := wait(t, c)
			if e.Code != tc.code || e.OOMKilled || e.Error != "" || e.ExitedAt.IsZero() {
				t.Fatalf("exit %+v, want code %d", e, tc.code)
			}
			st, err = c.State(ctx(t))
			if err != nil || st.Status != shim.StatusStopped || st.Exit == nil || st.Exit.Code != tc.code || st.StartedAt.IsZero() {
				t.Fatalf("state after exit: %+v, %v", st, err)
			}
			// The runtime state and cgroups are gone once Shutdown returns
			// (with a PID namespace of its own they are deleted just after
			// the waiters are woken, off the exit's path).
			if err := c.Shutdown(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if entries, _ := os.ReadDir(x.opts.RuntimeRoot); len(entries) > 0 {
				t.Fatalf("runtime state left after exit: %s", entries[0].Name())
			}
			if left, _ := filepath.Glob("/sys/fs/cgroup/*" + x.cgroup); len(left) > 0 {
				t.Fatalf("cgroups left after exit: %v", left)
			}
			waitGone(t, x.shimPid)
			if e2, err := shim.ReadExit(x.opts.StateDir); err != nil || e2.Code != tc.code {
				t.Fatalf("ReadExit: %+v, %v", e2, err)
			}
			if err := c.Shutdown(ctx(t)); err != nil {
				t.Fatalf("second shutdown: %v", err)
			}
			if _, err := os.Stat(filepath.Join(x.opts.StateDir, "shim.sock")); !os.IsNotExist(err) {
				t.Fatalf("socket left after shutdown: %v", err)
			}
		})
	}
}

func TestKill(t *testing.T) {
	t.Run("SIGKILL", func(t *testing.T) {
		x := newCtr(t, "sleep 1000", nil)
		c := x.spawn()
		if _, err := c.Start(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if err := c.Kill(ctx(t), syscall.SIGKILL, false); err != nil {
			t.Fatal(err)
		}
		if e := wait(t, c); e.Code != 137 || e.OOMKilled {
			t.Fatalf("exit %+v, want 137", e)
		}
		if err := c.Kill(ctx(t), syscall.SIGKILL, false); !errdefs.Is(err, errdefs.Conflict) {
			t.Fatalf("kill after exit: %v, want conflict", err)
		}
	})
	t.Run("SIGTERM-trapped", func(t *testing.T) {
		x := newCtr(t, `trap "exit 7" TERM; echo ready; while :; do sleep 0.05; done`, nil)
		c := x.spawn()
		out, err := c.Attach(ctx(t), shim.AttachOpts{Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		if _, err := c.Start(ctx(t)); err != nil {
			t.Fatal(err)
		}
		readUntil(t, out, "ready")
		if err := c.Kill(ctx(t), syscall.SIGTERM, false); err != nil {
			t.Fatal(err)
		}
		if e := wait(t, c); e.Code != 7 {
			t.Fatalf("exit %+v, want 7", e)
		}
	})
	t.Run("all-created", func(t *testing.T) {
		// docker create; docker rm -f: kill a container never started.
		x := newCtr(t, "sleep 1000", nil)
		c := x.spawn()
		if err := c.Kill(ctx(t), syscall.SIGKILL, true); err != nil {
			t.Fatal(err)
		}
		if e := wait(t, c); e.Code != 137 {
			t.Fatalf("exit %+v, want 137", e)
		}
		if _, err := c.Start(ctx(t)); !errdefs.Is(err, errdefs.Conflict) {
			t.Fatalf("start after exit: %v, want conflict", err)
		}
	})
	t.Run("shutdown-running", func(t *testing.T) {
		x := newCtr(t, "sleep 1000", nil)
		c := x.spawn()
		if _, err := c.Start(ctx(t)); err != nil {
			t.Fatal(err)
		}
		if err := c.Shutdown(ctx(t)); err != nil {
			t.Fatal(err)
		}
		waitGone(t, x.shimPid)
		if e, err := shim.ReadExit(x.opts.StateDir); err != nil || e.Code != 137 {
			t.Fatalf("ReadExit: %+v, %v", e, err)
		}
	})
}

func TestOutputLoggedAndAttached(t *testing.T) {
	x := newCtr(t, `echo out1; echo err1 >&2; printf 'no newline'`, nil)
	c := x.spawn()
	conn, err := c.Attach(ctx(t), shim.AttachOpts{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := demux(t, conn)
	if stdout != "out1\nno newline" || stderr != "err1\n" {
		t.Fatalf("attached stdout %q stderr %q", stdout, stderr)
	}
	if e := wait(t, c); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	if got := x.logText("stdout"); got != "out1\nno newline\n" {
		t.Fatalf("logged stdout %q", got)
	}
	if got := x.logText("stderr"); got != "err1\n" {
		t.Fatalf("logged stderr %q", got)
	}
}

func TestAttachBeforeStartLosesNothing(t *testing.T) {
	const n = 20000
	x := newCtr(t, fmt.Sprintf("seq 1 %d; seq 1 %d >&2", n, n), nil)
	c := x.spawn()
	conn, err := c.Attach(ctx(t), shim.AttachOpts{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A second client attached to stdout only.
	conn2, err := c.Attach(ctx(t), shim.AttachOpts{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	stdout, stderr := demux(t, conn)
	if stdout != want.String() || stderr != want.String() {
		t.Fatalf("lost output: stdout %d bytes, stderr %d, want %d", len(stdout), len(stderr), want.Len())
	}
	stdout2, stderr2 := demux(t, conn2)
	if stdout2 != want.String() || stderr2 != "" {
		t.Fatalf("second client: stdout %d bytes, stderr %d", len(stdout2), len(stderr2))
	}
	wait(t, c)
	if got := x.logText("stdout"); got != want.String() {
		t.Fatalf("log lost output: %d bytes", len(got))
	}
}

func TestStdin(t *testing.T) {
	x := newCtr(t, "cat; echo done", nil)
	x.opts.Stdin, x.opts.StdinOnce = true, true
	c := x.spawn()
	conn, err := c.Attach(ctx(t), shim.AttachOpts{Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("hello\nworld\n")); err != nil {
		t.Fatal(err)
	}
	closeWrite(t, conn)
	stdout, stderr := demux(t, conn)
	if stdout != "hello\nworld\ndone\n" || stderr != "" {
		t.Fatalf("stdout %q stderr %q", stdout, stderr)
	}
	if e := wait(t, c); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
}

func TestCloseStdin(t *testing.T) {
	// Without StdinOnce a client's EOF leaves stdin open; CloseStdin closes it.
	x := newCtr(t, "cat; echo done", nil)
	x.opts.Stdin = true
	c := x.spawn()
	out, err := c.Attach(ctx(t), shim.AttachOpts{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	in, err := c.Attach(ctx(t), shim.AttachOpts{Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write([]byte("a\n")); err != nil {
		t.Fatal(err)
	}
	closeWrite(t, in)
	got := readUntil(t, out, "a\n")
	time.Sleep(100 * time.Millisecond)
	if st, _ := c.State(ctx(t)); st.Status != shim.StatusRunning {
		t.Fatalf("stdin closed by a client's EOF without StdinOnce: %+v", st)
	}
	if err := c.CloseStdin(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, c); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	stdout, _ := demux(t, out)
	if got := strings.TrimPrefix(got, "\x01"); !strings.Contains(got+stdout, "done\n") {
		t.Fatalf("no done: %q %q", got, stdout)
	}
}

func TestTTY(t *testing.T) {
	x := newCtr(t, `stty size; read line; echo "got $line"; stty size`, func(s *specs.Spec) {
		s.Process.Terminal = true
	})
	x.opts.Stdin, x.opts.StdinOnce = true, true
	c := x.spawn()
	conn, err := c.Attach(ctx(t), shim.AttachOpts{Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := c.Resize(ctx(t), "", 40, 120); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	// Raw: no framing; the pty turns \n into \r\n.
	readUntil(t, conn, "40 120\r\n")
	if err := c.Resize(ctx(t), "", 50, 132); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("hi\r")); err != nil {
		t.Fatal(err)
	}
	rest := readAll(t, conn)
	if !strings.Contains(rest, "got hi\r\n") || !strings.Contains(rest, "50 132\r\n") {
		t.Fatalf("tty output %q", rest)
	}
	if e := wait(t, c); e.Code != 0 {
		t.Fatalf("exit %+v", e)
	}
	if log := x.logText("stdout"); !strings.Contains(log, "40 120\r\n") {
		t.Fatalf("tty log %q", log)
	}
}

func TestExec(t *testing.T) {
	x := newCtr(t, "echo init; sleep 1000", nil)
	c := x.spawn()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	proc := func(tty bool, args ...string) *specs.Process {
		return &specs.Process{Args: args, Cwd: "/", Terminal: tty, Env: []string{"PATH=/bin:/usr/bin", "TERM=xterm"}}
	}
	t.Run("output-and-code", func(t *testing.T) {
		if err := c.Exec(ctx(t), "e1", proc(false, "sh", "-c", "echo hi; echo oops >&2; exit 5"), shim.AttachOpts{Stdout: true, Stderr: true}); err != nil {
			t.Fatal(err)
		}
		if pid, running, code, err := c.ExecState(ctx(t), "e1"); err != nil || pid != 0 || running || code != -1 {
			t.Fatalf("exec state before start: %d %v %d %v", pid, running, code, err)
		}
		conn, err := c.ExecStart(ctx(t), "e1", false)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		stdout, stderr := demux(t, conn)
		if stdout != "hi\n" || stderr != "oops\n" {
			t.Fatalf("exec stdout %q stderr %q", stdout, stderr)
		}
		if code, err := c.ExecWait(ctx(t), "e1"); err != nil || code != 5 {
			t.Fatalf("exec wait: %d %v", code, err)
		}
		if pid, running, code, err := c.ExecState(ctx(t), "e1"); err != nil || pid == 0 || running || code != 5 {
			t.Fatalf("exec state after exit: %d %v %d %v", pid, running, code, err)
		}
		if _, err := c.ExecStart(ctx(t), "e1", false); !errdefs.Is(err, errdefs.Conflict) {
			t.Fatalf("second exec start: %v", err)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		if err := c.Exec(ctx(t), "e2", proc(false, "cat"), shim.AttachOpts{Stdin: true, Stdout: true}); err != nil {
			t.Fatal(err)
		}
		conn, err := c.ExecStart(ctx(t), "e2", false)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write([]byte("piped\n")); err != nil {
			t.Fatal(err)
		}
		closeWrite(t, conn)
		if stdout, _ := demux(t, conn); stdout != "piped\n" {
			t.Fatalf("exec cat: %q", stdout)
		}
		if code, err := c.ExecWait(ctx(t), "e2"); err != nil || code != 0 {
			t.Fatalf("exec wait: %d %v", code, err)
		}
	})
	t.Run("tty", func(t *testing.T) {
		p := proc(true, "sh", "-c", "stty size; read l; echo got $l; stty size")
		p.ConsoleSize = &specs.Box{Height: 10, Width: 20}
		if err := c.Exec(ctx(t), "e3", p, shim.AttachOpts{Stdin: true, Stdout: true}); err != nil {
			t.Fatal(err)
		}
		conn, err := c.ExecStart(ctx(t), "e3", false)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		readUntil(t, conn, "10 20\r\n")
		if err := c.Resize(ctx(t), "e3", 24, 80); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Write([]byte("x\r")); err != nil {
			t.Fatal(err)
		}
		if out := readAll(t, conn); !strings.Contains(out, "got x\r\n") || !strings.Contains(out, "24 80\r\n") {
			t.Fatalf("exec tty output %q", out)
		}
		if code, err := c.ExecWait(ctx(t), "e3"); err != nil || code != 0 {
			t.Fatalf("exec wait: %d %v", code, err)
		}
	})
	t.Run("detached", func(t *testing.T) {
		if err := c.Exec(ctx(t), "e4", proc(false, "sh", "-c", "echo x; exit 9"), shim.AttachOpts{Stdout: true}); err != nil {
			t.Fatal(err)
		}
		conn, err := c.ExecStart(ctx(t), "e4", true)
		if err != nil || conn != nil {
			t.Fatalf("detached exec start: %v %v", conn, err)
		}
		if code, err := c.ExecWait(ctx(t), "e4"); err != nil || code != 9 {
			t.Fatalf("exec wait: %d %v", code, err)
		}
	})
	t.Run("not-found", func(t *testing.T) {
		if err := c.Exec(ctx(t), "e5", proc(false, "/nonexistent"), shim.AttachOpts{Stdout: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ExecStart(ctx(t), "e5", false); err == nil {
			t.Fatal("exec of a missing binary started")
		}
		if _, running, code, err := c.ExecState(ctx(t), "e5"); err != nil || running || code != 127 {
			t.Fatalf("exec state: %v %d %v", running, code, err)
		}
	})
	t.Run("kill-exec", func(t *testing.T) {
		// A healthcheck probe past its timeout: only the exec dies.
		if err := c.Exec(ctx(t), "e6", proc(false, "sleep", "1000"), shim.AttachOpts{Stdout: true}); err != nil {
			t.Fatal(err)
		}
		conn, err := c.ExecStart(ctx(t), "e6", false)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := c.KillExec(ctx(t), "e6", syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code, err := c.ExecWait(ctx(t), "e6"); err != nil || code != 137 {
			t.Fatalf("killed exec: %d %v", code, err)
		}
		if err := c.KillExec(ctx(t), "e6", syscall.SIGKILL); !errdefs.Is(err, errdefs.Conflict) {
			t.Fatalf("kill of an exited exec: %v", err)
		}
		if st, err := c.State(ctx(t)); err != nil || st.Status != shim.StatusRunning {
			t.Fatalf("container after exec kill: %+v %v", st, err)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, err := c.ExecStart(ctx(t), "nope", false); !errdefs.Is(err, errdefs.NotFound) {
			t.Fatalf("exec start unknown: %v", err)
		}
	})
	if err := c.Kill(ctx(t), syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
	// Exec output is not logged.
	if log := x.logText("stdout") + x.logText("stderr"); log != "init\n" {
		t.Fatalf("log %q", log)
	}
}

func TestOOMKilled(t *testing.T) {
	limit := int64(32 << 20)
	x := newCtr(t, "", func(s *specs.Spec) {
		s.Process.Args = []string{"/probe", "alloc", "256"}
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	})
	c := x.spawn()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	e := wait(t, c)
	if !e.OOMKilled || e.Code != 137 {
		t.Fatalf("exit %+v, want OOM killed with 137", e)
	}
	if err := c.Shutdown(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if e2, err := shim.ReadExit(x.opts.StateDir); err != nil || !e2.OOMKilled {
		t.Fatalf("ReadExit %+v %v", e2, err)
	}
}

// TestDaemonRestart spawns the shim from a separate process that exits
// (a daemon going away), then reconnects from the state directory.
func TestDaemonRestart(t *testing.T) {
	x := newCtr(t, `i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done`, nil)
	o, _ := json.Marshal(x.opts)
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(o))
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "started") {
		t.Fatalf("helper daemon: %v\n%s", err, out)
	}
	c, err := shim.Connect(ctx(t), x.opts.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	x.shimPid = c.ShimPid()
	pid := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if pid = readPid(x.opts.StateDir); pid != 0 {
			break
		}
	}
	if pid != x.shimPid || !alive(x.shimPid) {
		t.Fatalf("shim (pid %d, pid file %d) died with the daemon that spawned it", x.shimPid, pid)
	}
	st, err := c.State(ctx(t))
	if err != nil || st.Status != shim.StatusRunning {
		t.Fatalf("state: %+v %v", st, err)
	}
	conn, err := c.Attach(ctx(t), shim.AttachOpts{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	readUntilN(t, conn, "tick", 3)
	conn.Close()
	if err := c.Exec(ctx(t), "e", &specs.Process{Args: []string{"echo", "exec-ok"}, Cwd: "/"}, shim.AttachOpts{Stdout: true}); err != nil {
		t.Fatal(err)
	}
	ec, err := c.ExecStart(ctx(t), "e", false)
	if err != nil {
		t.Fatal(err)
	}
	if stdout, _ := demux(t, ec); stdout != "exec-ok\n" {
		t.Fatalf("exec after reconnect: %q", stdout)
	}
	// Drop this client too and connect once more.
	c2, err := shim.Connect(ctx(t), x.opts.StateDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Kill(ctx(t), syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, c2); e.Code != 137 {
		t.Fatalf("exit %+v", e)
	}
	if log := x.logText("stdout"); !strings.Contains(log, "tick 1\n") || !strings.Contains(log, "tick 3\n") {
		t.Fatal("log misses output")
	}
}

func TestIdleExit(t *testing.T) {
	x := newCtr(t, "exit 4", nil)
	x.opts.IdleTimeout = 200 * time.Millisecond
	c := x.spawn()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, c); e.Code != 4 {
		t.Fatalf("exit %+v", e)
	}
	waitGone(t, x.shimPid)
	if _, err := shim.Connect(ctx(t), x.opts.StateDir); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("connect to exited shim: %v, want not found", err)
	}
	if _, err := c.State(ctx(t)); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("state from exited shim: %v, want not found", err)
	}
	e, err := shim.ReadExit(x.opts.StateDir)
	if err != nil || e.Code != 4 {
		t.Fatalf("ReadExit: %+v %v", e, err)
	}
	if err := c.Shutdown(ctx(t)); err != nil {
		t.Fatalf("shutdown of a gone shim: %v", err)
	}
}

func TestSpawnFailureLeavesNothing(t *testing.T) {
	for name, mutate := range map[string]func(*specs.Spec){
		"missing-binary": func(s *specs.Spec) { s.Process.Args = []string{"/does/not/exist"} },
		"bad-cwd":        func(s *specs.Spec) { s.Process.Cwd = "relative" },
		"bad-mount": func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/does/not/exist"})
		},
	} {
		t.Run(name, func(t *testing.T) {
			x := newCtr(t, "true", mutate)
			_, err := x.trySpawn()
			if err == nil {
				t.Fatal("spawn succeeded")
			}
			t.Logf("spawn error: %v", err)
			if _, serr := os.Stat(x.opts.StateDir); !os.IsNotExist(serr) {
				t.Fatalf("state dir left: %v", serr)
			}
			if n := shimsOf(x.id); n > 0 {
				t.Fatalf("%d shims left", n)
			}
		})
	}
}

// TestSecondShimRefused: a Spawn into a state directory where a shim runs
// fails and leaves that shim serving.
func TestSecondShimRefused(t *testing.T) {
	x := newCtr(t, "sleep 1000", nil)
	c := x.spawn()
	o := x.opts
	o.ID = x.id + "-2"
	if _, err := shim.Spawn(ctx(t), o); !errdefs.Is(err, errdefs.AlreadyExists) {
		t.Fatalf("second spawn: %v, want already exists", err)
	}
	if n := shimsOf(o.ID); n > 0 {
		t.Fatalf("second shim left running")
	}
	if st, err := c.State(ctx(t)); err != nil || st.Status != shim.StatusCreated {
		t.Fatalf("first shim after the refused spawn: %+v %v", st, err)
	}
	if fi, err := os.Stat(filepath.Join(x.opts.StateDir, "shim.sock")); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("socket: %v %v", fi.Mode(), err)
	}
}

// TestWaitCancel: a Wait whose context ends returns, and the shim still
// answers a later one.
func TestWaitCancel(t *testing.T) {
	x := newCtr(t, "read x; exit 2", nil)
	x.opts.Stdin = true
	c := x.spawn()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		cctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := c.Wait(cctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("wait with an expired context: %v", err)
		}
	}
	if err := c.CloseStdin(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, c); e.Code != 2 {
		t.Fatalf("exit %+v", e)
	}
	// The abandoned waits left nothing behind in the shim.
	if n := openFDs(t, x.shimPid); n > 30 {
		t.Fatalf("shim has %d descriptors open", n)
	}
}

func openFDs(t testing.TB, pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestSpawnCanceled: a Spawn whose context ends before the shim answered
// returns the context's error and leaves nothing.
func TestSpawnCanceled(t *testing.T) {
	x := newCtr(t, "sleep 1000", nil)
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
	defer cancel()
	_, err := shim.Spawn(cctx, x.opts)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("spawn: %v, want deadline exceeded", err)
	}
	if _, serr := os.Stat(x.opts.StateDir); !os.IsNotExist(serr) {
		t.Fatalf("state dir left: %v", serr)
	}
	if n := shimsOf(x.id); n > 0 {
		t.Fatalf("%d shims left", n)
	}
	// cleanup checks the runtime root and cgroups.
}

// TestSeccomp: the container's seccomp profile applies to its init and to
// its execs (the shim compiles it in-process, once).
func TestSeccomp(t *testing.T) {
	ret := uint(1)
	x := newCtr(t, "/probe syscall getcwd; sleep 1000", func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: &ret}}}
	})
	c := x.spawn()
	out, err := c.Attach(ctx(t), shim.AttachOpts{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	readUntil(t, out, "EPERM")
	if err := c.Exec(ctx(t), "e", &specs.Process{Args: []string{"/probe", "syscall", "getcwd"}, Cwd: "/"}, shim.AttachOpts{Stdout: true}); err != nil {
		t.Fatal(err)
	}
	conn, err := c.ExecStart(ctx(t), "e", false)
	if err != nil {
		t.Fatal(err)
	}
	if stdout, _ := demux(t, conn); !strings.Contains(stdout, "EPERM") {
		t.Fatalf("exec under seccomp: %q", stdout)
	}
}

// TestManyExecsLeakNothing: execs (attached, detached, with a terminal)
// leave no descriptor, process or goroutine behind in the shim.
func TestManyExecsLeakNothing(t *testing.T) {
	x := newCtr(t, "sleep 1000", nil)
	c := x.spawn()
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	run := func(i int) {
		id := fmt.Sprint("e", i)
		p := &specs.Process{Args: []string{"sh", "-c", "echo hi"}, Cwd: "/", Terminal: i%3 == 2}
		if err := c.Exec(ctx(t), id, p, shim.AttachOpts{Stdin: i%2 == 0, Stdout: true, Stderr: true}); err != nil {
			t.Fatal(err)
		}
		conn, err := c.ExecStart(ctx(t), id, i%3 == 1)
		if err != nil {
			t.Fatal(err)
		}
		if conn != nil {
			readAll(t, conn)
			conn.Close()
		}
		if code, err := c.ExecWait(ctx(t), id); err != nil || code != 0 {
			t.Fatalf("exec %d: %d %v", i, code, err)
		}
	}
	run(0)
	before := openFDs(t, x.shimPid)
	for i := 1; i <= 30; i++ {
		run(i)
	}
	// The last exec's descriptors are closed by the shim's goroutines
	// just after its answers: give them until a deadline.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if openFDs(t, x.shimPid) <= before && childrenOf(x.shimPid) == 1 {
			break
		}
	}
	if after := openFDs(t, x.shimPid); after > before {
		t.Fatalf("shim descriptors: %d before, %d after 30 execs", before, after)
	}
	if n := childrenOf(x.shimPid); n != 1 {
		t.Fatalf("shim has %d children after the execs, want 1 (the init)", n)
	}
}

// childrenOf counts the processes whose parent is pid.
func childrenOf(pid int) int {
	n := 0
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == fmt.Sprint(pid) {
			n++
		}
	}
	return n
}

// TestWarmSpare: with WarmSpare the next Spawn takes over a shim started
// ahead of time, which then serves its container like any other.
func TestWarmSpare(t *testing.T) {
	defer shim.ReleaseSpare()
	var pids []int
	for i := 0; i < 3; i++ {
		x := newCtr(t, fmt.Sprintf("echo run %d", i), nil)
		x.opts.WarmSpare = true
		c := x.spawn()
		pids = append(pids, c.ShimPid())
		if stdout := startOutput(t, c); stdout != fmt.Sprintf("run %d\n", i) {
			t.Fatalf("run %d: %q", i, stdout)
		}
		if e := wait(t, c); e.Code != 0 {
			t.Fatalf("exit %+v", e)
		}
		// The next spare is started in the background: wait for it.
		for deadline := time.Now().Add(20 * time.Second); !shim.SpareWaiting(); {
			if time.Now().After(deadline) {
				t.Fatalf("run %d: no warm spare started", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The later shims were spares: started without a container id.
	for _, pid := range pids[1:] {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.Trim(string(b), "\x00") != shim.BinaryName {
			t.Fatalf("shim %d was not the spare: %q", pid, b)
		}
	}
}
