package container

import (
	"context"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
)

// Restart policies, with dockerd's semantics (its restartmanager):
//
//   - After every exit the back-off delay is updated first, whatever the
//     policy: a run of 10 s or more resets it; otherwise it starts at
//     100 ms and doubles, up to one minute.
//   - "always" restarts after any exit; "unless-stopped" unless the
//     container was stopped by the user (stop, or kill through the API);
//     "on-failure[:N]" after a non-zero exit while fewer than N restarts
//     happened since the last start by the user (N = 0: no limit).
//   - stop (and kill with the stop signal or SIGKILL, or any signal when
//     the container has no StopSignal) cancels restarts until the next
//     start by the user: the coming exit is final, even for "always".
//   - While it waits, the container is "restarting" (State.Restarting,
//     and State.Running as dockerd reports it), RestartCount counts the
//     restarts and the events are die, then start.
//   - When berthd starts, a container that is not running and has run
//     before is started (RestartCount reset) if its policy says so with
//     the exit it recorded: "always" even when stopped by the user,
//     "unless-stopped" only when it was not, "on-failure" after a
//     failure. A container recorded as running whose shim is gone died
//     while berthd was down: its exit goes through the policy as any
//     other (with back-off), and one that still runs is only re-attached.
//   - AutoRemove (--rm) is never combined with a policy (refused at
//     create and update).

const (
	restartInitialDelay = 100 * time.Millisecond
	restartMaxDelay     = time.Minute
	// restartResetAfter is how long a run must last for the back-off to
	// start over.
	restartResetAfter = 10 * time.Second
)

// restartState is a container's restart manager; guarded by the
// container's mu.
type restartState struct {
	delay time.Duration // the last back-off; 0 = start over
	// cancelled is set by a stop or kill from the user: the next exit is
	// final. Cleared by a start from the user.
	cancelled bool
	// gen identifies the pending restart; a timer whose gen is stale does
	// nothing.
	gen   uint64
	timer *time.Timer
}

// supervisor is the service's supervision state (restart timers and
// health monitors).
type supervisor struct {
	mu      sync.Mutex
	closing bool
	// stats are the containers' last stats samples (stats_prev.go).
	stats map[string]statsSample
}

func (s *Service) isClosing() bool {
	s.sup.mu.Lock()
	defer s.sup.mu.Unlock()
	return s.sup.closing
}

// shouldRestart decides, with c.mu held, whether the exit just recorded
// in c.rec.State is followed by a restart, and after which delay. It
// updates the back-off as dockerd does (before looking at the policy).
func (s *Service) shouldRestart(c *Container, code int, ranFor time.Duration) (bool, time.Duration) {
	p := c.rec.Host.RestartPolicy
	if p.IsNone() || p.Name == "" || c.rec.Host.AutoRemove {
		return false, 0
	}
	rs := &c.rs
	if rs.cancelled || s.isClosing() {
		return false, 0
	}
	if ranFor >= restartResetAfter {
		rs.delay = 0
	}
	switch {
	case rs.delay == 0:
		rs.delay = restartInitialDelay
	case rs.delay < restartMaxDelay:
		rs.delay *= 2
	}
	if rs.delay > restartMaxDelay {
		rs.delay = restartMaxDelay
	}
	if !policyAllows(p, code, c.rec.ManuallyStopped, c.rec.Restarts) {
		return false, 0
	}
	return true, rs.delay
}

// policyAllows is the policy's decision alone.
func policyAllows(p container.RestartPolicy, code int, manuallyStopped bool, restarts int) bool {
	switch {
	case p.IsAlways():
		return true
	case p.IsUnlessStopped():
		return !manuallyStopped
	case p.IsOnFailure():
		if p.MaximumRetryCount == 0 || restarts < p.MaximumRetryCount {
			return code != 0
		}
	}
	return false
}

// markRestarting turns the exit recorded in c.rec into "restarting";
// c.mu held.
func markRestarting(c *Container) {
	c.rec.State.Status = container.StateRestarting
	c.rec.State.Restarting = true
	c.rec.Restarts++
}

// scheduleRestart starts c again after delay unless something (a stop, a
// kill, a start or remove by the user, berthd closing) intervenes.
func (s *Service) scheduleRestart(c *Container, delay time.Duration) {
	c.mu.Lock()
	c.rs.gen++
	gen := c.rs.gen
	if c.rs.timer != nil {
		c.rs.timer.Stop()
	}
	c.rs.timer = time.AfterFunc(delay, func() { s.autoRestart(c, gen) })
	c.mu.Unlock()
}

// autoRestart is the end of a back-off: the container starts again if it
// is still waiting for it.
func (s *Service) autoRestart(c *Container, gen uint64) {
	if s.isClosing() {
		return
	}
	c.busy.Lock()
	defer c.busy.Unlock()
	c.mu.Lock()
	stale := gen != c.rs.gen || c.rs.cancelled || c.rec.State.Status != container.StateRestarting || c.rec.State.Removing
	c.rs.timer = nil
	c.mu.Unlock()
	select {
	case <-c.removed:
		return
	default:
	}
	if stale {
		return
	}
	if err := s.start(context.Background(), c); err != nil {
		// Docker gives up after a failed restart: the container stays
		// exited (startFailed recorded why).
		s.log.Warn("restart policy: start failed", "id", c.ID(), "err", err)
		c.mu.Lock()
		if c.rec.State.Status == container.StateRestarting {
			c.rec.State.Status = container.StateExited
		}
		c.rec.State.Restarting = false
		saved := c.rec
		c.notify()
		c.mu.Unlock()
		_ = s.store.save(&saved)
	}
}

// cancelRestart makes the next exit final (stop, kill). When the
// container is waiting to restart, the wait ends and it is recorded as
// exited; the answer is then true (nothing runs to be stopped).
func (s *Service) cancelRestart(c *Container) bool {
	c.mu.Lock()
	c.rs.cancelled = true
	c.rs.gen++
	if c.rs.timer != nil {
		c.rs.timer.Stop()
		c.rs.timer = nil
	}
	if c.rec.State.Status != container.StateRestarting {
		c.mu.Unlock()
		return false
	}
	c.rec.State.Status = container.StateExited
	c.rec.State.Restarting = false
	c.rec.ManuallyStopped = true
	saved := c.rec
	c.notify()
	c.mu.Unlock()
	if err := s.store.save(&saved); err != nil {
		s.log.Error("save container state", "id", saved.ID, "err", err)
	}
	return true
}

// resetRestart is a start by the user (start, restart, berthd's start):
// the restart manager starts over and RestartCount goes back to 0, as
// dockerd's ResetRestartManager.
func resetRestart(c *Container) {
	c.mu.Lock()
	c.rs.gen++
	if c.rs.timer != nil {
		c.rs.timer.Stop()
	}
	c.rs = restartState{gen: c.rs.gen}
	c.rec.Restarts = 0
	c.rec.ManuallyStopped = false
	if c.rec.State.Status == container.StateRestarting {
		c.rec.State.Status = container.StateExited
	}
	c.rec.State.Restarting = false
	c.mu.Unlock()
}

// isRestarting reports whether c waits to be restarted.
func isRestarting(c *Container) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.State.Status == container.StateRestarting
}

// killCancelsRestart is dockerd's rule for kill: the stop signal (any
// signal when the container has none configured) and SIGKILL make the
// next exit final.
func killCancelsRestart(cfg *container.Config, sig syscall.Signal) bool {
	if cfg == nil || cfg.StopSignal == "" || sig == syscall.SIGKILL {
		return true
	}
	stop, err := ParseSignal(cfg.StopSignal)
	return err == nil && stop == sig
}

// restartAtBoot starts, in the background, the containers whose policy
// brings them back when berthd starts (see the rules above).
func (s *Service) restartAtBoot(recs []*Record) {
	for _, r := range recs {
		p := r.Host.RestartPolicy
		if p.IsNone() || p.Name == "" || r.Host.AutoRemove || !r.HasBeenStartedBefore || r.State.Removing {
			continue
		}
		if r.State.Status != container.StateExited && r.State.Status != container.StateRestarting {
			continue
		}
		if !policyAllows(p, r.State.ExitCode, r.ManuallyStopped, r.Restarts) {
			continue
		}
		c := s.byID[r.ID]
		if c == nil {
			continue
		}
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			c.busy.Lock()
			defer c.busy.Unlock()
			c.mu.Lock()
			st := c.rec.State
			c.mu.Unlock()
			if st.Running() || st.Removing || s.isClosing() {
				return
			}
			select {
			case <-c.removed:
				return
			default:
			}
			resetRestart(c)
			if err := s.start(context.Background(), c); err != nil {
				s.log.Warn("restart policy at start-up: start failed", "id", c.ID(), "err", err)
				return
			}
			s.log.Info("restarted container (restart policy)", "id", c.ID())
		}()
	}
}

// stopSupervision is Close's part: no restart starts and no probe runs
// from now on.
func (s *Service) stopSupervision() {
	s.sup.mu.Lock()
	s.sup.closing = true
	s.sup.mu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.byID {
		c.mu.Lock()
		if c.rs.timer != nil {
			c.rs.timer.Stop()
		}
		c.mu.Unlock()
		s.stopHealth(c)
	}
}
