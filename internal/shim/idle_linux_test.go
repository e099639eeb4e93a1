package shim_test

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// threadScheds returns the scheduling policy and nice value of every
// thread of pid (tid -> attr).
func threadScheds(t *testing.T, pid int) map[int]*unix.SchedAttr {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]*unix.SchedAttr{}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if a, err := unix.SchedGetAttr(tid, 0); err == nil {
			out[tid] = a
		}
	}
	return out
}

// checkPolicy fails unless every thread of pid has policy and nice.
func checkPolicy(t *testing.T, what string, pid int, policy uint32, nice int32) {
	t.Helper()
	ths := threadScheds(t, pid)
	if len(ths) == 0 {
		t.Fatalf("%s %d: no threads", what, pid)
	}
	for tid, a := range ths {
		if a.Policy != policy || a.Nice != nice {
			t.Errorf("%s %d thread %d: policy %d nice %d, want policy %d nice %d", what, pid, tid, a.Policy, a.Nice, policy, nice)
		}
	}
}

// TestSpareIdleUntilClaimed: with BERTH_SPARE_IDLE=1, a warm spare shim and the init it
// pre-forked run every thread under SCHED_IDLE while unclaimed; the
// claim puts both back under SCHED_OTHER with the nice value they had,
// and the container's program (a Go program: its threads are all made
// after the exec) runs SCHED_OTHER nice 0 in every thread, as a cold
// container's would.
func TestSpareIdleUntilClaimed(t *testing.T) {
	t.Setenv("BERTH_SPARE_IDLE", "1") // opt-in; the shims get it
	defer shim.ReleaseSpare()
	if a, err := unix.SchedGetAttr(0, 0); err != nil || a.Policy != unix.SCHED_NORMAL || a.Nice != 0 {
		t.Skipf("the test runs under policy/nice %+v %v, not SCHED_OTHER nice 0", a, err)
	}
	y := newCtr(t, "", func(s *specs.Spec) { s.Process.Args = []string{"/probe", "sleep", "60"} })
	sp, s := spareFor(t, y, nil)
	_, initPid := startSpare(t, sp, y.opts.Env)
	shimPid := parentOf(initPid)
	// The init's Go runtime may still be starting: the threads it makes
	// meanwhile inherit the policy, so every thread seen is idle.
	waitFor(t, "the pre-forked init's Go runtime", func() bool { return len(threadScheds(t, initPid)) > 1 })
	checkPolicy(t, "unclaimed spare shim", shimPid, unix.SCHED_IDLE, 0)
	checkPolicy(t, "unclaimed spare's init", initPid, unix.SCHED_IDLE, 0)

	p := shim.ClaimSpare(shim.PrepareOpts{
		Binary: y.opts.Binary, ID: y.id, RuntimeRoot: y.opts.RuntimeRoot, Env: y.opts.Env,
		CgroupsPath: s.Linux.CgroupsPath, Namespaces: s.Linux.Namespaces,
	})
	if p == nil {
		t.Fatal("the spare was not claimed for its own container")
	}
	checkPolicy(t, "claimed shim", shimPid, unix.SCHED_NORMAL, 0)
	y.opts.Prepared = p
	c := y.spawn()
	if !c.Preforked() {
		t.Fatal("the container was not created from the spare's init")
	}
	pid, err := c.Start(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if pid != initPid {
		t.Fatalf("container pid %d, the spare's init %d", pid, initPid)
	}
	// The program's Go runtime makes its threads after the exec.
	waitFor(t, "the program's threads", func() bool {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return string(comm) == "probe\n" && len(threadScheds(t, pid)) > 2
	})
	checkPolicy(t, "container program", pid, unix.SCHED_NORMAL, 0)
	checkPolicy(t, "container's shim", shimPid, unix.SCHED_NORMAL, 0)
	if err := c.Kill(ctx(t), syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
}
