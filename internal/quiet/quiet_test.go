package quiet

import (
	"testing"
	"time"
)

// ran returns a function that signals on the channel it also returns.
func ran() (func(), chan struct{}) {
	ch := make(chan struct{})
	return func() { close(ch) }, ch
}

func done(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// stillHeld fails if ch is signalled within d (what holds it must hold it
// that long).
func stillHeld(t *testing.T, ch chan struct{}, d time.Duration, msg string) {
	t.Helper()
	time.Sleep(d)
	if done(ch) {
		t.Fatal(msg)
	}
}

func await(t *testing.T, what string, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s never ran", what)
	}
}

// TestHeldWhileBusy: work handed over while a request is in progress runs
// only once no request has been in progress for QuietFor; a request that
// begins meanwhile holds it again.
func TestHeldWhileBusy(t *testing.T) {
	g := New(20*time.Millisecond, time.Hour, time.Hour)
	end := g.Busy()
	f, ch := ran()
	g.Go(f)
	stillHeld(t, ch, 60*time.Millisecond, "ran while a request was in progress")
	end()
	end() // a second call does nothing
	end2 := g.Busy()
	stillHeld(t, ch, 60*time.Millisecond, "ran while a second request was in progress")
	start := time.Now()
	end2()
	await(t, "the held work", ch)
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("ran %v after the last request ended, before QuietFor", d)
	}
	if h, n, hu := g.Stats(); h != 1 || n != 0 || hu != 0 {
		t.Errorf("stats held %d, at once %d, hurried %d", h, n, hu)
	}
}

// TestIdleRunsAfterQuietFor: with nothing in progress, work runs once the
// last request is QuietFor old.
func TestIdleRunsAfterQuietFor(t *testing.T) {
	g := New(10*time.Millisecond, time.Hour, time.Hour)
	g.Busy()()
	f, ch := ran()
	g.Go(f)
	await(t, "the work", ch)
}

// TestMaxWait: a request that goes on and on holds work for MaxWait at
// most.
func TestMaxWait(t *testing.T) {
	g := New(time.Millisecond, 30*time.Millisecond, time.Hour)
	end := g.Busy()
	defer end()
	f, ch := ran()
	start := time.Now()
	g.Go(f)
	await(t, "the work held past MaxWait", ch)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("ran after %v, before MaxWait", d)
	}
}

// TestHurryTightLoop: Hurry runs what is held at once and new work at
// once (a tight loop), until the daemon was quiet for ResetAfter before a
// request began.
func TestHurryTightLoop(t *testing.T) {
	g := New(time.Millisecond, time.Hour, 80*time.Millisecond)
	end := g.Busy()
	f1, ch1 := ran()
	g.Go(f1)
	g.Hurry()
	await(t, "the hurried work", ch1)
	f2, ch2 := ran()
	g.Go(f2) // still busy: in a tight loop it runs at once all the same
	await(t, "work in a tight loop", ch2)
	end()
	// A request right after: still a tight loop.
	end = g.Busy()
	f3, ch3 := ran()
	g.Go(f3)
	await(t, "work in a tight loop", ch3)
	end()
	// Quiet for ResetAfter: held again.
	time.Sleep(120 * time.Millisecond)
	end = g.Busy()
	f4, ch4 := ran()
	g.Go(f4)
	stillHeld(t, ch4, 40*time.Millisecond, "ran while busy after the tight loop ended")
	end()
	await(t, "the held work", ch4)
	if h, n, hu := g.Stats(); h != 2 || n != 2 || hu != 1 {
		t.Errorf("stats held %d, at once %d, hurried %d; want 2, 2, 1", h, n, hu)
	}
}

// TestCloseRunsHeld: Close runs what is held, and later work at once.
func TestCloseRunsHeld(t *testing.T) {
	g := New(time.Millisecond, time.Hour, time.Hour)
	end := g.Busy()
	defer end()
	f1, ch1 := ran()
	g.Go(f1)
	g.Close()
	await(t, "the held work at Close", ch1)
	f2, ch2 := ran()
	g.Go(f2)
	await(t, "work after Close", ch2)
}

// TestNilGate: a nil gate runs work at once and its other methods do
// nothing.
func TestNilGate(t *testing.T) {
	var g *Gate
	g.Busy()()
	g.Hurry()
	g.Close()
	f, ch := ran()
	g.Go(f)
	await(t, "work on a nil gate", ch)
}
