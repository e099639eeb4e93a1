package container

import (
	"context"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logger"
)

// LogsOptions are logs' query parameters (timestamps and details are the
// API's to render).
type LogsOptions struct {
	Stdout, Stderr, Follow bool
	Since, Until           time.Time
	Tail                   int // -1: all
}

// Logs reads the container's log. start is called once, before any
// output, with whether the container has a terminal (the stream is then
// raw, not multiplexed); write gets each record (m and m.Line are reused
// after it returns). Following ends when the container stops and
// everything it wrote was delivered.
func (s *Service) Logs(ctx context.Context, ref string, o LogsOptions, start func(tty bool) error, write func(m *logger.Message) error) error {
	if !o.Stdout && !o.Stderr {
		return errdefs.Newf(errdefs.InvalidArgument, "Bad parameters: you must choose at least one stream")
	}
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	rec := c.snapshot()
	r, err := logger.NewReader(s.logConfig(&rec))
	if err != nil {
		return err
	}
	rc := logger.ReadConfig{Since: o.Since, Until: o.Until, Tail: o.Tail, Follow: o.Follow}
	if o.Follow {
		rc.Stopped = s.stoppedChan(ctx, c)
	}
	if err := start(rec.Config.Tty); err != nil {
		return err
	}
	err = r.ReadLogs(ctx, rc, func(m *logger.Message) error {
		if m.Source == "stdout" && !o.Stdout || m.Source == "stderr" && !o.Stderr {
			return nil
		}
		return write(m)
	})
	if err != nil && ctx.Err() != nil {
		return nil
	}
	return err
}

// stoppedChan is closed once c does not run (at once if it does not).
func (s *Service) stoppedChan(ctx context.Context, c *Container) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		for {
			c.mu.Lock()
			running, changed := c.rec.State.Running() || c.shim != nil, c.changed
			c.mu.Unlock()
			if !running {
				return
			}
			select {
			case <-changed:
			case <-c.removed:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// Tty reports whether the container has a terminal.
func (c *Container) Tty() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec.Config.Tty
}
