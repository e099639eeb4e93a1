package container

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/shim"
)

// ParseSignal accepts "SIGTERM", "TERM", "term" or "15", as Docker does.
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.Newf(errdefs.InvalidArgument, "Invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := signals[name]; ok {
		return sig, nil
	}
	if strings.HasPrefix(name, "RTMIN+") || strings.HasPrefix(name, "RTMAX-") {
		n, err := strconv.Atoi(name[6:])
		if err == nil {
			if name[:5] == "RTMIN" {
				return syscall.Signal(34 + n), nil
			}
			return syscall.Signal(64 - n), nil
		}
	}
	return 0, errdefs.Newf(errdefs.InvalidArgument, "Invalid signal: %s", s)
}

var signals = map[string]syscall.Signal{
	"ABRT": syscall.SIGABRT, "ALRM": syscall.SIGALRM, "BUS": syscall.SIGBUS, "CHLD": syscall.SIGCHLD,
	"CLD": syscall.SIGCHLD, "CONT": syscall.SIGCONT, "FPE": syscall.SIGFPE, "HUP": syscall.SIGHUP,
	"ILL": syscall.SIGILL, "INT": syscall.SIGINT, "IO": syscall.SIGIO, "IOT": syscall.SIGIOT,
	"KILL": syscall.SIGKILL, "PIPE": syscall.SIGPIPE, "POLL": syscall.SIGIO, "PROF": syscall.SIGPROF,
	"PWR": syscall.SIGPWR, "QUIT": syscall.SIGQUIT, "SEGV": syscall.SIGSEGV, "STKFLT": syscall.SIGSTKFLT,
	"STOP": syscall.SIGSTOP, "SYS": syscall.SIGSYS, "TERM": syscall.SIGTERM, "TRAP": syscall.SIGTRAP,
	"TSTP": syscall.SIGTSTP, "TTIN": syscall.SIGTTIN, "TTOU": syscall.SIGTTOU, "URG": syscall.SIGURG,
	"USR1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2, "VTALRM": syscall.SIGVTALRM, "WINCH": syscall.SIGWINCH,
	"XCPU": syscall.SIGXCPU, "XFSZ": syscall.SIGXFSZ, "RTMIN": 34, "RTMAX": 64,
}

// Kill sends sig (default SIGKILL) to the container's init.
func (s *Service) Kill(ctx context.Context, ref, signal string) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = ParseSignal(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	cl, running, name := c.shim, c.rec.State.Running(), strings.TrimPrefix(c.rec.Name, "/")
	restarting := c.rec.State.Status == container.StateRestarting
	marked := false
	if running || restarting {
		// dockerd marks any kill from the API as a stop by the user.
		marked = !c.rec.ManuallyStopped
		c.rec.ManuallyStopped = true
	}
	rec := c.rec
	c.mu.Unlock()
	if marked {
		s.saveStopIntent(&rec)
	}
	if (running || restarting) && killCancelsRestart(rec.Config, sig) {
		if s.cancelRestart(c) {
			// It was waiting to restart: nothing runs, it stays stopped.
			s.event("kill", &rec, map[string]string{"signal": strconv.Itoa(int(sig))})
			return nil
		}
	}
	if !running || cl == nil {
		return errdefs.Newf(errdefs.Conflict, "Cannot kill container: %s: container %s is not running", ref, name)
	}
	if err := s.signal(ctx, c, cl, sig, false, &rec, false); err != nil {
		return err
	}
	if sig == syscall.SIGKILL {
		// As dockerd: a kill with SIGKILL returns once the container has
		// stopped (up to 10 s), so a next command sees it stopped.
		s.waitStopped(ctx, c, 10)
	}
	return nil
}

// StopOptions are stop's and restart's parameters.
type StopOptions struct {
	Signal  string
	Timeout *int // seconds; nil: the container's StopTimeout or 10; -1: forever
}

// Stop sends the stop signal, waits up to the timeout, then kills. A
// stopped container answers NotModified.
func (s *Service) Stop(ctx context.Context, ref string, o StopOptions) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	c.busy.Lock()
	defer c.busy.Unlock()
	if err := s.stop(ctx, c, o); err != nil {
		return err
	}
	rec := c.snapshot()
	s.event("stop", &rec, nil)
	return nil
}

func (s *Service) stop(ctx context.Context, c *Container, o StopOptions) error {
	// A stop makes the next exit final (no restart policy applies); one
	// waiting to restart just stays stopped.
	if s.cancelRestart(c) {
		return nil
	}
	c.mu.Lock()
	cl, running := c.shim, c.rec.State.Running()
	marked := running && !c.rec.ManuallyStopped
	c.rec.ManuallyStopped = true
	cfg := c.rec.Config
	paused := c.rec.State.Paused
	rec := c.rec
	c.mu.Unlock()
	if !running || cl == nil {
		return errdefs.Newf(errdefs.NotModified, "container %s is already stopped", shortID(c.ID()))
	}
	if marked {
		s.saveStopIntent(&rec)
	}
	sigName := o.Signal
	if sigName == "" {
		sigName = cfg.StopSignal
	}
	sig := syscall.SIGTERM
	if sigName != "" {
		var err error
		if sig, err = ParseSignal(sigName); err != nil {
			return err
		}
	}
	timeout := 10
	if cfg.StopTimeout != nil {
		timeout = *cfg.StopTimeout
	}
	if o.Timeout != nil {
		timeout = *o.Timeout
	}
	if paused {
		// A frozen process cannot handle its signal: thaw it first.
		_ = s.runtimeOf(c.ID()).Resume(ctx, c.ID())
	}
	rec = c.snapshot()
	if err := s.signal(ctx, c, cl, sig, false, &rec, true); err != nil {
		s.log.Warn("stop signal", "id", c.ID(), "err", err)
	}
	if timeout != 0 && s.waitStopped(ctx, c, timeout) {
		return nil
	}
	var again *Record // a second SIGKILL is not reported again
	if sig != syscall.SIGKILL {
		again = &rec
	}
	if err := s.signal(ctx, c, cl, syscall.SIGKILL, true, again, true); err != nil {
		s.log.Warn("stop kill", "id", c.ID(), "err", err)
	}
	if !s.waitStopped(ctx, c, -1) {
		return ctx.Err()
	}
	return nil
}

// waitStopped waits up to timeout seconds (-1 forever) for c to stop.
func (s *Service) waitStopped(ctx context.Context, c *Container, timeout int) bool {
	var deadline <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(time.Duration(timeout) * time.Second)
		defer t.Stop()
		deadline = t.C
	}
	for {
		c.mu.Lock()
		running, ch := c.rec.State.Running() && c.shim != nil, c.changed
		c.mu.Unlock()
		if !running {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Restart stops (if running) and starts the container.
func (s *Service) Restart(ctx context.Context, ref string, o StopOptions) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	c.busy.Lock()
	defer c.busy.Unlock()
	if err := s.stop(ctx, c, o); err == nil {
		rec := c.snapshot()
		s.event("stop", &rec, nil)
	} else if !errdefs.Is(err, errdefs.NotModified) {
		return err
	}
	resetRestart(c)
	if err := s.start(ctx, c); err != nil {
		return err
	}
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	s.event("restart", &rec, nil)
	return nil
}

// WaitResult is wait's answer.
type WaitResult struct {
	StatusCode int
	Error      string
}

// Wait blocks until the container reaches the condition: not-running
// (default; at once if it is not running), next-exit (its next exit) or
// removed. ready is called once the wait is registered, so the API can
// send its headers before the container is started.
func (s *Service) Wait(ctx context.Context, ref string, cond container.WaitCondition, ready func()) (WaitResult, error) {
	c, err := s.Get(ref)
	if err != nil {
		return WaitResult{}, err
	}
	c.mu.Lock()
	startFinished := c.rec.State.FinishedAt
	c.mu.Unlock()
	if ready != nil {
		ready()
	}
	for {
		c.mu.Lock()
		st, ch := c.rec.State, c.changed
		hasShim := c.shim != nil
		c.mu.Unlock()
		switch cond {
		case container.WaitConditionRemoved:
		case container.WaitConditionNextExit:
			if !hasShim && st.Status != container.StateCreated && st.FinishedAt.After(startFinished) {
				return WaitResult{StatusCode: st.ExitCode, Error: st.Error}, nil
			}
		default:
			// Every exit ends the wait, also one a restart follows
			// (dockerd notifies waiters when it marks a container
			// restarting).
			if !st.Running() && !hasShim && st.Status != container.StateRestarting || st.FinishedAt.After(startFinished) {
				return WaitResult{StatusCode: st.ExitCode, Error: st.Error}, nil
			}
		}
		select {
		case <-ch:
		case <-c.removed:
			c.mu.Lock()
			st = c.rec.State
			c.mu.Unlock()
			return WaitResult{StatusCode: st.ExitCode, Error: st.Error}, nil
		case <-ctx.Done():
			return WaitResult{}, ctx.Err()
		}
	}
}

// Pause freezes every process of the container.
func (s *Service) Pause(ctx context.Context, ref string) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.rec.State.Running() {
		return errdefs.Newf(errdefs.Conflict, "Container %s is not running", c.rec.ID)
	}
	if c.rec.State.Paused {
		return errdefs.Newf(errdefs.Conflict, "Container %s is already paused", c.rec.ID)
	}
	if err := s.runtimeOf(c.rec.ID).Pause(ctx, c.rec.ID); err != nil {
		return err
	}
	c.rec.State.Paused = true
	c.rec.State.Status = container.StatePaused
	rec := c.rec
	c.notify()
	_ = s.store.save(&rec)
	s.event("pause", &rec, nil)
	return nil
}

// Unpause thaws a paused container.
func (s *Service) Unpause(ctx context.Context, ref string) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.rec.State.Paused {
		return errdefs.Newf(errdefs.Conflict, "Container %s is not paused", c.rec.ID)
	}
	if err := s.runtimeOf(c.rec.ID).Resume(ctx, c.rec.ID); err != nil {
		return err
	}
	c.rec.State.Paused = false
	c.rec.State.Status = container.StateRunning
	rec := c.rec
	c.notify()
	_ = s.store.save(&rec)
	s.event("unpause", &rec, nil)
	return nil
}

// Rename gives the container a new name.
func (s *Service) Rename(ctx context.Context, ref, newName string) error {
	if !validName.MatchString(newName) {
		return errdefs.Newf(errdefs.InvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	if !strings.HasPrefix(newName, "/") {
		newName = "/" + newName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.getLocked(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.rec.Name
	if old == newName {
		return errdefs.Newf(errdefs.InvalidArgument, "Renaming a container with the same name as its current name")
	}
	if owner, taken := s.names[newName]; taken {
		return errdefs.Newf(errdefs.Conflict, "Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", newName, owner)
	}
	c.rec.Name = newName
	if err := s.store.rename(&c.rec, old); err != nil {
		c.rec.Name = old
		return err
	}
	delete(s.names, old)
	s.names[newName] = c.rec.ID
	rec := c.rec
	s.event("rename", &rec, map[string]string{"oldName": old})
	return nil
}

// Update changes a container's resources (live when it runs) and restart
// policy.
func (s *Service) Update(ctx context.Context, ref string, hc *container.UpdateConfig) ([]string, error) {
	c, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := *c.rec.Host
	r := hc.Resources
	res := &next.Resources
	if r.Memory != 0 {
		res.Memory = r.Memory
	}
	if r.MemorySwap != 0 {
		res.MemorySwap = r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		res.MemoryReservation = r.MemoryReservation
	}
	if r.NanoCPUs != 0 {
		res.NanoCPUs = r.NanoCPUs
	}
	if r.CPUShares != 0 {
		res.CPUShares = r.CPUShares
	}
	if r.CPUQuota != 0 {
		res.CPUQuota = r.CPUQuota
	}
	if r.CPUPeriod != 0 {
		res.CPUPeriod = r.CPUPeriod
	}
	if r.CpusetCpus != "" {
		res.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		res.CpusetMems = r.CpusetMems
	}
	if r.PidsLimit != nil {
		res.PidsLimit = r.PidsLimit
	}
	if r.BlkioWeight != 0 {
		res.BlkioWeight = r.BlkioWeight
	}
	if hc.RestartPolicy.Name != "" {
		if next.AutoRemove && !hc.RestartPolicy.IsNone() {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		if err := container.ValidateRestartPolicy(hc.RestartPolicy); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, err)
		}
		next.RestartPolicy = hc.RestartPolicy
	}
	if _, err := s.validateHostConfig(&next); err != nil {
		return nil, err
	}
	if c.rec.State.Running() {
		if err := s.runtimeOf(c.rec.ID).Update(ctx, c.rec.ID, linuxResources(res)); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, err)
		}
	}
	c.rec.Host = &next
	rec := c.rec
	if err := s.store.save(&rec); err != nil {
		return nil, err
	}
	s.event("update", &rec, nil)
	return nil, nil
}

// linuxResources converts the resources update can change.
func linuxResources(r *container.Resources) *specs.LinuxResources {
	out := &specs.LinuxResources{Memory: &specs.LinuxMemory{}, CPU: &specs.LinuxCPU{}}
	if r.Memory != 0 {
		out.Memory.Limit = &r.Memory
	}
	if r.MemorySwap != 0 {
		out.Memory.Swap = &r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		out.Memory.Reservation = &r.MemoryReservation
	}
	if r.NanoCPUs != 0 {
		period := uint64(100000)
		quota := r.NanoCPUs * int64(period) / 1e9
		out.CPU.Period, out.CPU.Quota = &period, &quota
	}
	if r.CPUQuota != 0 {
		out.CPU.Quota = &r.CPUQuota
	}
	if r.CPUPeriod != 0 {
		p := uint64(r.CPUPeriod)
		out.CPU.Period = &p
	}
	if r.CPUShares != 0 {
		sh := uint64(r.CPUShares)
		out.CPU.Shares = &sh
	}
	out.CPU.Cpus, out.CPU.Mems = r.CpusetCpus, r.CpusetMems
	if r.PidsLimit != nil {
		out.Pids = &specs.LinuxPids{Limit: r.PidsLimit}
		if *r.PidsLimit <= 0 {
			v := int64(-1)
			out.Pids.Limit = &v
		}
	}
	if r.BlkioWeight != 0 {
		w := r.BlkioWeight
		out.BlockIO = &specs.LinuxBlockIO{Weight: &w}
	}
	return out
}

var errRemovalInProgress = errors.New("removal in progress")

// saveStopIntent records, before the signal is sent, that the user
// stopped a running container whose restart policy reads it: the exit's
// own write comes after the stop or kill has answered, and a berthd that
// crashes in between must not restart an unless-stopped container at its
// next start (dockerd writes the same before signalling). Without a
// restart policy nothing reads it: no write.
func (s *Service) saveStopIntent(r *Record) {
	if !keepsRunDurable(r) {
		return
	}
	if err := s.store.saveIfExists(r); err != nil {
		s.log.Error("save container state", "id", r.ID, "err", err)
	}
}

// signal sends sig to the container's init (with all, to all its
// processes) and, when ev is not nil, emits the "kill" event — before the
// container's "die" (see Container.signalling). A stop (all or not)
// treats a process already gone (NotFound) as signalled: its exit is on
// its way; a kill (stop false) returns that error, as dockerd does.
func (s *Service) signal(ctx context.Context, c *Container, cl *shim.Client, sig syscall.Signal, all bool, ev *Record, stop bool) error {
	c.signalling.Lock()
	defer c.signalling.Unlock()
	if err := cl.Kill(ctx, sig, all); err != nil && (!stop || !errdefs.Is(err, errdefs.NotFound)) {
		return err
	}
	if ev != nil {
		s.event("kill", ev, map[string]string{"signal": strconv.Itoa(int(sig))})
	}
	return nil
}
