package shim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/runtime/initproc"
	"github.com/berth-dev/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSpawnStart: with SpawnOpts.Start the shim starts the container as
// soon as it is created and Spawn's answer carries the start's result;
// the container then runs, exits and is recorded as after a Start
// request, and a Start request finds it already started.
func TestSpawnStart(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprint("early-", early), func(t *testing.T) { spawnStart(t, early) })
	}
}

func spawnStart(t *testing.T, early bool) {
	x := newCtr(t, "echo started-with-spawn; exit 4", nil)
	if early {
		x.opts.Env = append(x.opts.Env, initproc.EnvEarlyStart+"=1")
	}
	x.opts.Start = true
	c := x.spawn()
	started, pid, err := c.SpawnStarted()
	if !started || err != nil || pid <= 0 {
		t.Fatalf("SpawnStarted: %v, pid %d, %v", started, pid, err)
	}
	if _, err := c.Start(ctx(t)); err == nil {
		t.Error("a second start succeeded")
	}
	e := wait(t, c)
	if e.Code != 4 || e.Error != "" {
		t.Fatalf("exit %+v, want code 4", e)
	}
	st, err := c.State(ctx(t))
	if err != nil || st.Status != shim.StatusStopped || st.StartedAt.IsZero() {
		t.Fatalf("state after exit: %+v, %v", st, err)
	}
	if got := strings.TrimSpace(x.logText("stdout")); got != "started-with-spawn" {
		t.Errorf("log %q", got)
	}
	// Without Start, Spawn leaves the container created.
	y := newCtr(t, "exit 0", nil)
	c2 := y.spawn()
	if started, _, _ := c2.SpawnStarted(); started {
		t.Error("started without SpawnOpts.Start")
	}
	if st, err := c2.State(ctx(t)); err != nil || st.Status != shim.StatusCreated {
		t.Errorf("state without Start: %+v, %v", st, err)
	}
}

// TestSpawnStartExecFails: a program the kernel refuses to execute (found
// and executable for the container's user, so create and start succeed)
// is, as with runc and Docker, the container's own failure: Spawn's start
// succeeds (with or without the early answer, MsgExec), the
// container exits 255 with "exec <path>: exec format error" on its
// stderr (the log) and no start error. A script whose interpreter is
// missing fails the same way ("no such file or directory").
func TestSpawnStartExecFails(t *testing.T) {
	for _, tc := range []struct {
		name, content, msg string
		early              bool // the init's MsgExec (initproc.EnvEarlyStart)
	}{
		{"format", "neither ELF nor script\n", "exec /not-a-program: exec format error\n", false},
		{"interpreter", "#!/no/such/interpreter\n", "exec /not-a-program: no such file or directory\n", false},
		{"format-early", "neither ELF nor script\n", "exec /not-a-program: exec format error\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newCtr(t, "", func(s *specs.Spec) { s.Process.Args = []string{"/not-a-program"} })
			if tc.early {
				x.opts.Env = append(x.opts.Env, initproc.EnvEarlyStart+"=1")
			}
			if err := os.WriteFile(filepath.Join(x.opts.Bundle, "rootfs", "not-a-program"), []byte(tc.content), 0o755); err != nil {
				t.Fatal(err)
			}
			x.opts.Start = true
			c := x.spawn()
			started, pid, err := c.SpawnStarted()
			if !started || err != nil || pid <= 0 {
				t.Fatalf("SpawnStarted: %v, pid %d, %v; want started", started, pid, err)
			}
			e := wait(t, c)
			if e.Code != 255 || e.Error != "" {
				t.Fatalf("exit %+v, want 255 without a start error", e)
			}
			if st, err := c.State(ctx(t)); err != nil || st.Status != shim.StatusStopped || st.StartedAt.IsZero() {
				t.Fatalf("state: %+v, %v; want stopped after a start", st, err)
			}
			if got := x.logText("stderr"); got != tc.msg {
				t.Fatalf("stderr log %q, want %q", got, tc.msg)
			}
			if e2, err := shim.ReadExit(x.opts.StateDir); err == nil && (e2.Code != 255 || e2.Error != "") {
				t.Fatalf("exit file %+v", e2)
			}
		})
	}
}

// TestStartChecksBeforeExec: what the init checks before it tells start
// it is about to execute still fails the start, with Docker's exit codes:
// a program only root may execute, for a user without capabilities
// (access with the container's credentials: 126), and a program gone
// between create and start (127). Nothing runs, the exit records the
// start's error.
func TestStartChecksBeforeExec(t *testing.T) {
	t.Run("permission", func(t *testing.T) {
		x := newCtr(t, "", func(s *specs.Spec) {
			s.Process.Args = []string{"/root-only"}
			s.Process.User = specs.User{UID: 1000, GID: 1000}
			s.Process.Capabilities = &specs.LinuxCapabilities{}
		})
		if err := os.WriteFile(filepath.Join(x.opts.Bundle, "rootfs", "root-only"), []byte("#!/bin/sh\necho ran\n"), 0o700); err != nil {
			t.Fatal(err)
		}
		c := x.spawn()
		_, err := c.Start(ctx(t))
		if err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("start: %v, want permission denied", err)
		}
		if e := wait(t, c); e.Code != 126 || !strings.Contains(e.Error, "permission denied") {
			t.Fatalf("exit %+v, want 126 with the start's error", e)
		}
		if out := x.logText("stdout"); out != "" {
			t.Fatalf("the program ran: %q", out)
		}
	})
	t.Run("not-found", func(t *testing.T) {
		x := newCtr(t, "", func(s *specs.Spec) { s.Process.Args = []string{"/gone"} })
		prog := filepath.Join(x.opts.Bundle, "rootfs", "gone")
		if err := os.WriteFile(prog, []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		c := x.spawn()
		if err := os.Remove(prog); err != nil {
			t.Fatal(err)
		}
		_, err := c.Start(ctx(t))
		if err == nil || !strings.Contains(err.Error(), "no such file or directory") {
			t.Fatalf("start: %v, want not found", err)
		}
		if e := wait(t, c); e.Code != 127 || e.Error == "" {
			t.Fatalf("exit %+v, want 127 with the start's error", e)
		}
	})
}

// TestAttachStartLosesNothing: AttachStart registers the stream, then
// starts the container and answers with the start's result; the program's
// output, written at once, is all on the stream (and in the log), and an
// earlier plain Attach loses nothing either. A program the kernel refuses
// to execute: the start succeeds, the stream has the message, the exit is
// 255 (as runc's init, Docker).
func TestAttachStartLosesNothing(t *testing.T) {
	const n = 20000
	x := newCtr(t, fmt.Sprintf("seq 1 %d; seq 1 %d >&2; exit 5", n, n), nil)
	c := x.spawn()
	conn2, err := c.Attach(ctx(t), shim.AttachOpts{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	conn, started, pid, startErr, err := c.AttachStart(ctx(t), shim.AttachOpts{Stdout: true, Stderr: true})
	if err != nil || !started || startErr != nil || pid <= 0 {
		t.Fatalf("AttachStart: started %v pid %d, start %v, %v", started, pid, startErr, err)
	}
	defer conn.Close()
	if _, err := c.Start(ctx(t)); err == nil {
		t.Error("a second start succeeded")
	}
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	stdout, stderr := demux(t, conn)
	if stdout != want.String() || stderr != want.String() {
		t.Fatalf("lost output: stdout %d bytes, stderr %d, want %d", len(stdout), len(stderr), want.Len())
	}
	if stdout2, _ := demux(t, conn2); stdout2 != want.String() {
		t.Fatalf("earlier attach: stdout %d bytes", len(stdout2))
	}
	if e := wait(t, c); e.Code != 5 {
		t.Fatalf("exit %+v, want 5", e)
	}

	y := newCtr(t, "", func(s *specs.Spec) { s.Process.Args = []string{"/not-a-program"} })
	if err := os.WriteFile(filepath.Join(y.opts.Bundle, "rootfs", "not-a-program"), []byte("neither ELF nor script\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c2 := y.spawn()
	conn3, started, _, startErr, err := c2.AttachStart(ctx(t), shim.AttachOpts{Stdout: true, Stderr: true})
	if err != nil || !started || startErr != nil {
		t.Fatalf("AttachStart of a program that cannot run: started %v, start %v, %v; want started", started, startErr, err)
	}
	defer conn3.Close()
	if out, errOut := demux(t, conn3); out != "" || errOut != "exec /not-a-program: exec format error\n" {
		t.Errorf("stream of a program that cannot run: %q %q", out, errOut)
	}
	if e := wait(t, c2); e.Code != 255 || e.Error != "" {
		t.Fatalf("exit %+v, want 255", e)
	}
}

// TestDeletedWithoutCollector: the shim deletes an exited container once
// a wait collected the exit, but also when nobody asks (berthd down):
// its runtime state and cgroups go on their own, and a later wait still
// gets the exit.
func TestDeletedWithoutCollector(t *testing.T) {
	x := newCtr(t, "exit 6", nil)
	x.opts.Start = true
	c := x.spawn()
	if started, _, err := c.SpawnStarted(); !started || err != nil {
		t.Fatalf("SpawnStarted: %v, %v", started, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, _ := os.ReadDir(x.opts.RuntimeRoot)
		left, _ := filepath.Glob("/sys/fs/cgroup/*" + x.cgroup)
		if len(entries) == 0 && len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not deleted without a wait: runtime state %d entries, cgroups %v", len(entries), left)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if e := wait(t, c); e.Code != 6 {
		t.Fatalf("exit %+v, want 6", e)
	}
}

// TestSpawnAttach: with SpawnOpts.Attach (and Start) the connection that
// created the container carries the attach's stream: registered before
// the start, so the first output is there, demultiplexed into stdout and
// stderr, and the stream takes the container's stdin. Without Start the
// attach is not made.
func TestSpawnAttach(t *testing.T) {
	x := newCtr(t, "echo first; read l; echo out-$l; echo err >&2; exit 5", nil)
	x.opts.Stdin, x.opts.StdinOnce = true, true
	x.opts.Start = true
	x.opts.Attach = &shim.AttachOpts{Stdin: true, Stdout: true, Stderr: true}
	c := x.spawn()
	started, pid, err := c.SpawnStarted()
	if !started || err != nil || pid <= 0 {
		t.Fatalf("SpawnStarted: %v, pid %d, %v", started, pid, err)
	}
	stream := c.SpawnStream()
	if stream == nil {
		t.Fatal("no stream from Spawn")
	}
	if c.SpawnStream() != nil {
		t.Error("the stream was handed out twice")
	}
	if _, err := stream.Write([]byte("x\n")); err != nil {
		t.Fatal(err)
	}
	if err := stream.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	stdout, stderr := demux(t, stream)
	stream.Close()
	if stdout != "first\nout-x\n" || stderr != "err\n" {
		t.Fatalf("stdout %q stderr %q", stdout, stderr)
	}
	if e := wait(t, c); e.Code != 5 {
		t.Fatalf("exit %+v, want 5", e)
	}

	y := newCtr(t, "exit 0", nil)
	y.opts.Attach = &shim.AttachOpts{Stdout: true}
	c2 := y.spawn()
	if started, _, _ := c2.SpawnStarted(); started || c2.SpawnStream() != nil {
		t.Fatalf("attached or started without SpawnOpts.Start")
	}
	if st, err := c2.State(ctx(t)); err != nil || st.Status != shim.StatusCreated {
		t.Errorf("state: %+v, %v", st, err)
	}
}
