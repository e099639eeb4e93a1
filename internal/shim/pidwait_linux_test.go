package shim

import (
	"os/exec"
	"testing"
	"time"
)

// TestWaitExitedLeavesTheZombie: waitExited returns once the child has
// exited, not before, and leaves it to be reaped (with its status) by
// the caller's Wait.
func TestWaitExitedLeavesTheZombie(t *testing.T) {
	cmd := exec.Command("sh", "-c", "read x; exit 7")
	w, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { waitExited(cmd.Process.Pid); close(done) }()
	select {
	case <-done:
		t.Fatal("waitExited returned while the child runs")
	case <-time.After(50 * time.Millisecond):
	}
	w.Close() // the child reads EOF and exits
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("waitExited did not return after the exit")
	}
	if err := cmd.Wait(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 7 {
		t.Fatalf("Wait after waitExited: %v, %v", cmd.ProcessState, err)
	}
}
