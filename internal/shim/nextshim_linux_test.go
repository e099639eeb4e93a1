package shim_test

import (
	"os"
	"path/filepath"
	"testing"
)

// TestShutdownThenNextShim: a start after a stop spawns the container's
// next shim in the same state directory as soon as the previous one's
// Shutdown answered. The previous shim's exit must not remove the next
// one's socket and pid file (its Main removed them again after the
// answer: when a loaded machine let that come after the next shim made
// them, berthd lost that shim: "container shim lost", exec "is not
// running", and the shim stayed behind). Each round checks, once the
// previous shim is gone, that the next one's files are there and that it
// answers. (The race needs the previous shim to be held off the CPU for
// milliseconds right after its answer: this test does not force that.)
func TestShutdownThenNextShim(t *testing.T) {
	x := newCtr(t, "true", nil)
	c := x.spawn()
	for round := 0; round < 10; round++ {
		if _, err := c.Start(ctx(t)); err != nil {
			t.Fatalf("round %d: start: %v", round, err)
		}
		wait(t, c)
		prev := c.ShimPid()
		if err := c.Shutdown(ctx(t)); err != nil {
			t.Fatalf("round %d: shutdown: %v", round, err)
		}
		c = x.spawn()
		waitGone(t, prev)
		for _, f := range []string{"shim.sock", "shim.pid"} {
			if _, err := os.Stat(filepath.Join(x.opts.StateDir, f)); err != nil {
				t.Fatalf("round %d: the next shim's %s: %v", round, f, err)
			}
		}
		if _, err := c.State(ctx(t)); err != nil {
			t.Fatalf("round %d: the next shim: %v", round, err)
		}
	}
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatal(err)
	}
	wait(t, c)
}
