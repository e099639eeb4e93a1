package shim_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
