// Package quiet runs the daemon's work ahead of time — the next warm
// spare shim and the init it pre-forks, the next create's snapshot and its
// mount — when the daemon is quiet rather than at once.
//
// That work used to start the moment a create took the spare, so on a
// small host its ~5 ms of CPU, its cgroup and mount operations and its
// file creations ran beside the very container being created, started,
// waited for and removed: a lone `run --rm` paid for the next one. A Gate
// holds such work until no request has been in progress for QuietFor, or
// at most MaxWait. That is right for runs with any pause between them; in
// a tight loop (the next create comes before the held work is done, and
// finds no spare) holding it is wrong, so a consumer that misses calls
// Hurry: what is held runs at once, and so does new work until the daemon
// has been quiet for ResetAfter again (the tight loop ended).
package quiet

import (
	"sync"
	"time"
)

// Defaults for New's durations.
const (
	// DefaultQuietFor is longer than a client's turn-around between the
	// requests of one run (create's answer to the attach or start: ~1 ms
	// for the docker CLI here) and shorter than the pause between two
	// commands of a script.
	DefaultQuietFor = 3 * time.Millisecond
	// DefaultMaxWait bounds the hold behind a long request (an attached
	// session, an events stream, a build).
	DefaultMaxWait = 50 * time.Millisecond
	// DefaultResetAfter: a pause this long ends a tight loop.
	DefaultResetAfter = 30 * time.Millisecond
)

// A Gate holds work until the daemon is quiet. The zero value is not
// usable; a nil *Gate runs work at once.
type Gate struct {
	quietFor, maxWait, resetAfter time.Duration

	mu      sync.Mutex
	busy    int       // activities in progress (Busy)
	last    time.Time // when the last activity began or ended
	tight   bool      // Hurry was called: run work at once
	pending []held
	timer   *time.Timer
	closed  bool
	// ran counts work started (Stats).
	ranHeld, ranAtOnce, hurried uint64
}

type held struct {
	f        func()
	deadline time.Time
}

// New returns a gate that runs held work once nothing has been busy for
// quietFor, at the latest maxWait after it was handed over, and leaves a
// tight loop after resetAfter without activity. Zero durations take the
// defaults.
func New(quietFor, maxWait, resetAfter time.Duration) *Gate {
	if quietFor <= 0 {
		quietFor = DefaultQuietFor
	}
	if maxWait <= 0 {
		maxWait = DefaultMaxWait
	}
	if resetAfter <= 0 {
		resetAfter = DefaultResetAfter
	}
	return &Gate{quietFor: quietFor, maxWait: maxWait, resetAfter: resetAfter, last: time.Now()}
}

// Busy marks an activity held work must not compete with (an API request
// in progress) until the returned function is called (once; later calls
// do nothing).
func (g *Gate) Busy() (done func()) {
	if g == nil {
		return func() {}
	}
	g.mu.Lock()
	now := time.Now()
	if g.busy == 0 && g.tight && now.Sub(g.last) >= g.resetAfter {
		g.tight = false
	}
	g.busy++
	g.last = now
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			g.busy--
			g.last = time.Now()
			g.kickLocked()
			g.mu.Unlock()
		})
	}
}

// Go runs f on a goroutine of its own once the daemon is quiet (at the
// latest MaxWait from now); at once in a tight loop, on a nil gate and
// after Close.
func (g *Gate) Go(f func()) {
	if g == nil {
		go f()
		return
	}
	g.mu.Lock()
	if g.tight || g.closed {
		g.ranAtOnce++
		g.mu.Unlock()
		go f()
		return
	}
	g.pending = append(g.pending, held{f: f, deadline: time.Now().Add(g.maxWait)})
	g.kickLocked()
	g.mu.Unlock()
}

// Hurry runs the held work at once, and new work at once until the
// daemon has been quiet for ResetAfter: someone needed its result already
// (a create found no spare ready).
func (g *Gate) Hurry() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.tight = true
	g.hurried++
	g.runLocked()
	g.mu.Unlock()
}

// Close runs the held work at once (its owners wait for it when they shut
// down) and makes Go run work at once from now on.
func (g *Gate) Close() {
	if g == nil {
		return
	}
	g.mu.Lock()
	g.closed = true
	g.runLocked()
	g.mu.Unlock()
}

// Stats says how much work ran after a hold, how much at once (tight
// loop or closed), and how many times Hurry was called.
func (g *Gate) Stats() (held, atOnce, hurried uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ranHeld, g.ranAtOnce, g.hurried
}

// kickLocked runs the held work if its time has come, else arms the timer
// for that time.
func (g *Gate) kickLocked() {
	if len(g.pending) == 0 {
		if g.timer != nil {
			g.timer.Stop()
		}
		return
	}
	at := g.pending[0].deadline // the earliest: held in the order handed over
	if g.busy == 0 {
		if q := g.last.Add(g.quietFor); q.Before(at) {
			at = q
		}
	}
	wait := time.Until(at)
	if wait <= 0 {
		g.runLocked()
		return
	}
	if g.timer == nil {
		g.timer = time.AfterFunc(wait, func() {
			g.mu.Lock()
			g.kickLocked()
			g.mu.Unlock()
		})
		return
	}
	g.timer.Reset(wait)
}

// runLocked starts every held function.
func (g *Gate) runLocked() {
	if g.timer != nil {
		g.timer.Stop()
	}
	for _, h := range g.pending {
		g.ranHeld++
		go h.f()
	}
	g.pending = nil
}
