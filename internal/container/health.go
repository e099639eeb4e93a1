package container

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/shim"
)

// Healthchecks, with dockerd's semantics (its daemon/health.go):
//
//   - The test comes from the container's Config.Healthcheck (the image's
//     HEALTHCHECK merged with --health-* at create); ["NONE"] disables it.
//     "CMD-SHELL cmd" runs the container's shell (Config.Shell, else
//     /bin/sh -c), "CMD args..." runs args.
//   - At each start the state is "starting" with an empty log. A probe
//     runs every Interval (default 30 s), every StartInterval (default
//     5 s) while starting within StartPeriod. Exit 0 is healthy (and
//     resets the failing streak); any other result counts as a failure,
//     except while starting within StartPeriod; Retries (default 3)
//     consecutive failures make it unhealthy.
//   - A probe is an exec through the container's shim (stdout and stderr,
//     at most 4096 bytes kept, then "..."). After Timeout (default 30 s)
//     it is killed (SIGKILL; dockerd leaves it running) and recorded with
//     exit code -1 and "Health check exceeded timeout (...)".
//   - The last 5 results are kept (State.Health.Log); a change of status
//     emits "health_status: <status>"; when the container stops, the
//     status becomes "unhealthy" (as dockerd).
//   - Each container's monitor is one goroutine that holds no lock while
//     a probe runs: a slow or hung probe delays only its own container's
//     next probe, never the daemon.
//   - Beyond Docker: the label berth.health-on-failure=none|kill|restart|
//     stop acts when the container becomes unhealthy (the berth CLI sets
//     it with --health-on-failure): kill sends SIGKILL (the restart
//     policy then applies), restart restarts the container, stop stops it
//     (as a user's stop: no restart policy applies).
//
// Unlike dockerd, probes emit no exec_create/exec_start/exec_die events
// and are not listed in ExecIDs.

// HealthOnFailureLabel carries --health-on-failure (the Engine API has no
// field for it).
const HealthOnFailureLabel = "berth.health-on-failure"

const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultStartInterval = 5 * time.Second
	defaultProbeRetries  = 3
	maxHealthLog         = 5
	maxProbeOutput       = 4096
)

// healthMonitor is one container run's probe loop.
type healthMonitor struct {
	stop chan struct{}
}

// healthEnabled reports whether cfg has a healthcheck that runs.
func healthEnabled(cfg *container.Config) bool {
	if cfg == nil || cfg.Healthcheck == nil || len(cfg.Healthcheck.Test) == 0 {
		return false
	}
	return cfg.Healthcheck.Test[0] != "NONE"
}

// initialHealth is the state a run starts with.
func initialHealth(cfg *container.Config) *container.Health {
	if !healthEnabled(cfg) {
		return nil
	}
	return &container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
}

// healthString is the part of ps's status in parentheses.
func healthString(h *container.Health) string {
	if h == nil {
		return ""
	}
	if h.Status == container.Starting {
		return "health: starting"
	}
	return string(h.Status)
}

// healthFilter is the value ps's health filter compares.
func healthFilter(h *container.Health) string {
	if h == nil {
		return string(container.NoHealthcheck)
	}
	return string(h.Status)
}

func healthSummary(h *container.Health) *container.HealthSummary {
	if h == nil {
		return &container.HealthSummary{Status: container.NoHealthcheck}
	}
	return &container.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
}

// exitHealth ends the run's monitor; c.mu held.
func exitHealth(c *Container) {
	if c.hs != nil {
		close(c.hs.stop)
		c.hs = nil
	}
	if h := c.rec.State.Health; h != nil {
		// dockerd: "unhealthy when the monitor has stopped".
		h2 := *h
		h2.Status = container.Unhealthy
		c.rec.State.Health = &h2
	}
}

// stopHealth ends c's monitor, if any.
func (s *Service) stopHealth(c *Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hs != nil {
		close(c.hs.stop)
		c.hs = nil
	}
}

// startHealth starts the monitor of a running container that has a
// healthcheck.
func (s *Service) startHealth(c *Container) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hs != nil || !c.rec.State.Running() || c.shim == nil || !healthEnabled(c.rec.Config) {
		return
	}
	if c.rec.State.Health == nil {
		c.rec.State.Health = initialHealth(c.rec.Config)
	}
	m := &healthMonitor{stop: make(chan struct{})}
	c.hs = m
	hc := *c.rec.Config.Healthcheck
	go s.healthLoop(c, m, hc, c.rec.State.StartedAt, c.shim)
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (s *Service) healthLoop(c *Container, m *healthMonitor, hc container.HealthConfig, started time.Time, cl *shim.Client) {
	interval := durationOr(hc.Interval, defaultProbeInterval)
	startInterval := durationOr(hc.StartInterval, defaultStartInterval)
	startPeriod := durationOr(hc.StartPeriod, 0)
	timeout := durationOr(hc.Timeout, defaultProbeTimeout)
	next := func() time.Duration {
		if time.Since(started) >= startPeriod {
			return interval
		}
		c.mu.Lock()
		h := c.rec.State.Health
		c.mu.Unlock()
		if h != nil && h.Status == container.Starting {
			return startInterval
		}
		return interval
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-m.stop
		cancel()
	}()
	var proc *specs.Process
	t := time.NewTimer(next())
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		c.mu.Lock()
		paused := c.rec.State.Paused
		c.mu.Unlock()
		if paused {
			// A probe would freeze with the container: skip it.
			t.Reset(next())
			continue
		}
		res := s.probe(ctx, c, cl, hc, timeout, &proc)
		select {
		case <-m.stop:
			return // the container stopped meanwhile: its result is moot
		default:
		}
		s.healthResult(c, m, hc, res, startPeriod)
		t.Reset(next())
	}
}

// probe runs one healthcheck probe through the shim's exec path.
func (s *Service) probe(ctx context.Context, c *Container, cl *shim.Client, hc container.HealthConfig, timeout time.Duration, proc **specs.Process) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now().UTC(), ExitCode: -1}
	fail := func(err error) *container.HealthcheckResult {
		res.End = time.Now().UTC()
		res.Output = err.Error()
		return res
	}
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	var args []string
	switch hc.Test[0] {
	case "CMD":
		args = hc.Test[1:]
	case "CMD-SHELL":
		shell := rec.Config.Shell
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		args = append(append([]string{}, shell...), strings.Join(hc.Test[1:], " "))
	default:
		return fail(fmt.Errorf("unknown healthcheck type %q (must be CMD or CMD-SHELL)", hc.Test[0]))
	}
	if len(args) == 0 {
		return fail(fmt.Errorf("healthcheck has no command"))
	}
	// The process (user, capabilities, seccomp, environment) is the
	// container's: generated once per run, only the arguments change.
	if *proc == nil {
		e := &execInstance{cfg: container.ExecCreateRequest{Cmd: args}}
		p, err := s.execProcess(ctx, &rec, e)
		if err != nil {
			return fail(err)
		}
		*proc = p
	}
	p := **proc
	p.Args = args
	p.Terminal = false
	id := "health-" + newID()[:32]
	if err := cl.Exec(ctx, id, &p, shim.AttachOpts{Stdout: true, Stderr: true}); err != nil {
		return fail(err)
	}
	conn, err := cl.ExecStart(ctx, id, false)
	if err != nil {
		return fail(err)
	}
	out := &limitedBuffer{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		demux(conn, out)
	}()
	wctx, wcancel := context.WithTimeout(ctx, timeout)
	code, werr := cl.ExecWait(wctx, id)
	// The client's connection deadline can fire just before the
	// context's own: either means the timeout.
	timedOut := errors.Is(werr, context.DeadlineExceeded) || errors.Is(wctx.Err(), context.DeadlineExceeded) || time.Since(res.Start) >= timeout
	wcancel()
	if werr != nil {
		// Timed out (or the container went away): the probe must not
		// linger.
		kctx, kcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = cl.KillExec(kctx, id, syscall.SIGKILL)
		kcancel()
		conn.Close()
		<-copied
		res.End = time.Now().UTC()
		switch {
		case ctx.Err() != nil:
			res.Output = "Health check was cancelled"
		case timedOut:
			res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		default:
			res.Output = werr.Error()
		}
		return res
	}
	// The shim closes the stream once the output is drained.
	select {
	case <-copied:
	case <-time.After(time.Second):
		conn.Close()
		<-copied
	}
	conn.Close()
	res.End = time.Now().UTC()
	res.ExitCode = code
	res.Output = out.String()
	return res
}

// healthResult records a probe's result and moves the status as dockerd's
// handleProbeResult does.
func (s *Service) healthResult(c *Container, m *healthMonitor, hc container.HealthConfig, res *container.HealthcheckResult, startPeriod time.Duration) {
	retries := hc.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	c.mu.Lock()
	if c.hs != m || c.rec.State.Health == nil {
		c.mu.Unlock()
		return
	}
	h := *c.rec.State.Health
	h.Log = append(append([]*container.HealthcheckResult{}, h.Log...), res)
	if len(h.Log) > maxHealthLog {
		h.Log = h.Log[len(h.Log)-maxHealthLog:]
	}
	before := h.Status
	if res.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = container.Healthy
	} else {
		count := true
		if h.Status == container.Starting && res.Start.Sub(c.rec.State.StartedAt) < startPeriod {
			count = false
		}
		if count {
			h.FailingStreak++
			if h.FailingStreak >= retries {
				h.Status = container.Unhealthy
			}
		}
	}
	c.rec.State.Health = &h
	changed := before != h.Status
	rec := c.rec
	if changed {
		c.notify()
	}
	c.mu.Unlock()
	if !changed {
		return
	}
	// Only a change of status is written to disk: probes every second
	// on many containers must not become a stream of transactions.
	if err := s.store.save(&rec); err != nil {
		s.log.Error("save container state", "id", rec.ID, "err", err)
	}
	s.event("health_status: "+string(h.Status), &rec, nil)
	if h.Status == container.Unhealthy {
		s.onUnhealthy(&rec)
	}
}

// onUnhealthy applies berth.health-on-failure.
func (s *Service) onUnhealthy(rec *Record) {
	action := rec.Config.Labels[HealthOnFailureLabel]
	if action == "" || action == "none" {
		return
	}
	id := rec.ID
	s.log.Info("container unhealthy", "id", id, "action", action)
	go func() {
		ctx := context.Background()
		var err error
		switch action {
		case "kill":
			c, gerr := s.Get(id)
			if gerr != nil {
				return
			}
			c.mu.Lock()
			cl := c.shim
			c.mu.Unlock()
			if cl != nil {
				err = cl.Kill(ctx, syscall.SIGKILL, false)
			}
		case "restart":
			err = s.Restart(ctx, id, StopOptions{})
		case "stop":
			err = s.Stop(ctx, id, StopOptions{})
		default:
			s.log.Warn("unknown health-on-failure action", "id", id, "action", action)
		}
		if err != nil && !errdefs.Is(err, errdefs.NotFound) && !errdefs.Is(err, errdefs.NotModified) {
			s.log.Warn("health-on-failure", "id", id, "action", action, "err", err)
		}
	}()
}

// ValidateHealthOnFailure checks the label's value at create.
func ValidateHealthOnFailure(labels map[string]string) error {
	switch v := labels[HealthOnFailureLabel]; v {
	case "", "none", "kill", "restart", "stop":
		return nil
	default:
		return errdefs.Newf(errdefs.InvalidArgument, "invalid %s %q: must be none, kill, restart or stop", HealthOnFailureLabel, v)
	}
}

// limitedBuffer keeps the first maxProbeOutput bytes, as dockerd.
type limitedBuffer struct {
	buf       bytes.Buffer
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	keep := maxProbeOutput - b.buf.Len()
	if keep > len(p) {
		keep = len(p)
	}
	if keep > 0 {
		b.buf.Write(p[:keep])
	}
	if keep < len(p) {
		b.truncated = true
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	if b.truncated {
		return b.buf.String() + "..."
	}
	return b.buf.String()
}

// demux copies the payload of a multiplexed stream (8-byte headers: stream,
// 3 zero bytes, big-endian length) into w until EOF.
func demux(r io.Reader, w io.Writer) {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		if _, err := io.CopyN(w, r, n); err != nil {
			return
		}
	}
}
