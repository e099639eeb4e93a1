package shim_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSpawnStart: with SpawnOpts.Start the shim starts the container as
// soon as it is created and Spawn's answer carries the start's result;
// the container then runs, exits and is recorded as after a Start
// request, and a Start request finds it already started.
func TestSpawnStart(t *testing.T) {
	x := newCtr(t, "echo started-with-spawn; exit 4", nil)
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

// TestSpawnStartFails: a program the kernel refuses to execute (found and
// executable at create, so create succeeds) fails the start that Spawn
// did; Spawn still succeeds, SpawnStarted has the error, and the exit is
// recorded as for a failed Start request.
func TestSpawnStartFails(t *testing.T) {
	x := newCtr(t, "", func(s *specs.Spec) { s.Process.Args = []string{"/not-a-program"} })
	if err := os.WriteFile(filepath.Join(x.opts.Bundle, "rootfs", "not-a-program"), []byte("neither ELF nor script\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	x.opts.Start = true
	c := x.spawn()
	started, _, err := c.SpawnStarted()
	if !started || err == nil || !strings.Contains(err.Error(), "exec format error") {
		t.Fatalf("SpawnStarted: %v, %v; want the start's exec format error", started, err)
	}
	e := wait(t, c)
	if e.Code != 128 || !strings.Contains(e.Error, "exec format error") {
		t.Fatalf("exit %+v, want 128 with the start's error", e)
	}
}

// TestAttachStartLosesNothing: AttachStart registers the stream, then
// starts the container and answers with the start's result; the program's
// output, written at once, is all on the stream (and in the log), and an
// earlier plain Attach loses nothing either. A container whose start
// fails: AttachStart reports the start's error, the stream ends.
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
	if err != nil || !started || startErr == nil || !strings.Contains(startErr.Error(), "exec format error") {
		t.Fatalf("AttachStart of a program that cannot run: started %v, start %v, %v", started, startErr, err)
	}
	defer conn3.Close()
	if out, errOut := demux(t, conn3); out != "" || errOut != "" {
		t.Errorf("stream of a failed start: %q %q", out, errOut)
	}
	if e := wait(t, c2); e.Code != 128 {
		t.Fatalf("exit %+v, want 128", e)
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
