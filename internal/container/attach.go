package container

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/shim"
)

// AttachOptions are attach's query parameters.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	// DetachKeys overrides ctrl-p,ctrl-q.
	DetachKeys string
	// Ready, if set, is called once the attach is accepted and before
	// waiting for the container to start: the API answers the upgrade
	// there, so that a client that attaches before starting (docker run)
	// can go on to start.
	Ready func() error
}

// Client is the hijacked connection of an attached client.
type Client interface {
	io.ReadWriteCloser
}

// ErrDetached is returned by Attach and ExecStart when the client typed
// the detach keys.
var ErrDetached = errors.New("detached")

// Attach connects client to the container's stdio until the container's
// output ends, the client goes away or it types the detach keys. Without
// a terminal the output is Docker's multiplexed stream (the shim frames
// it), with one it is raw. On a created container it waits for start.
func (s *Service) Attach(ctx context.Context, ref string, o AttachOptions, client Client) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	keys, err := parseDetachKeys(o.DetachKeys)
	if err != nil {
		return err
	}
	opts := shim.AttachOpts{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr}
	c.mu.Lock()
	if !c.rec.Config.OpenStdin {
		opts.Stdin = false
	}
	cl := c.shim
	var p *pendingAttach
	switch {
	case cl != nil:
	case c.rec.State.Status == container.StateCreated || c.rec.State.Status == container.StateExited && c.rec.Host.RestartPolicy.Name != "" && !c.rec.Host.RestartPolicy.IsNone():
		p = &pendingAttach{opts: opts, ch: make(chan attachResult, 1)}
		c.pending = append(c.pending, p)
	default:
		c.mu.Unlock()
		return errdefs.Newf(errdefs.Conflict, "You cannot attach to a stopped container, start it first")
	}
	rec := c.rec
	c.mu.Unlock()
	if o.Ready != nil {
		if err := o.Ready(); err != nil {
			if p != nil {
				s.dropPending(c, p)
			}
			return err
		}
	}
	var conn net.Conn
	if p != nil {
		select {
		case r := <-p.ch:
			if r.err == errStartFailed {
				return nil
			}
			if r.err != nil {
				return r.err
			}
			conn = r.conn
		case <-ctx.Done():
			s.dropPending(c, p)
			return ctx.Err()
		}
	} else {
		if conn, err = cl.Attach(ctx, opts); err != nil {
			return err
		}
	}
	s.event("attach", &rec, nil)
	// As dockerd, the detach keys are watched for only with a terminal:
	// without one, stdin is passed through byte for byte.
	if !rec.Config.Tty {
		keys = nil
	}
	return splice(ctx, conn, client, opts.Stdin, keys)
}

// dropPending withdraws an early attach.
func (s *Service) dropPending(c *Container, p *pendingAttach) {
	c.mu.Lock()
	for i, q := range c.pending {
		if q == p {
			c.pending = append(c.pending[:i], c.pending[i+1:]...)
			break
		}
	}
	c.mu.Unlock()
	// A start may have raced us: close what it handed over.
	select {
	case r := <-p.ch:
		if r.conn != nil {
			r.conn.Close()
		}
	default:
	}
}

// splice copies output from the shim to the client and, with stdin, the
// client's input to the shim (half-closing it when the client's input
// ends). It returns when the output ends or the client detaches.
func splice(ctx context.Context, conn net.Conn, client Client, stdin bool, keys []byte) error {
	defer conn.Close()
	outDone := make(chan error, 1)
	go func() {
		_, err := io.Copy(client, conn)
		outDone <- err
	}()
	detached := make(chan struct{})
	var once sync.Once
	if stdin {
		go func() {
			var r io.Reader = client
			if len(keys) > 0 {
				r = &detachReader{r: client, keys: keys, onDetach: func() { once.Do(func() { close(detached) }) }}
			}
			_, _ = io.Copy(conn, r)
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				_ = cw.CloseWrite()
			}
		}()
	}
	select {
	case err := <-outDone:
		if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "broken pipe") && !strings.Contains(err.Error(), "connection reset") {
			return err
		}
		return nil
	case <-detached:
		return ErrDetached
	case <-ctx.Done():
		slog.Debug("attach: client went away", "err", context.Cause(ctx))
		return nil
	}
}

// parseDetachKeys turns "ctrl-p,ctrl-q" into bytes, as Docker does.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return []byte{16, 17}, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			ch := k[5]
			switch {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch == '[':
				out = append(out, 27)
			case ch == '\\':
				out = append(out, 28)
			case ch == ']':
				out = append(out, 29)
			case ch == '^':
				out = append(out, 30)
			case ch == '_':
				out = append(out, 31)
			default:
				return nil, errdefs.Newf(errdefs.InvalidArgument, "Invalid detach keys (%s) provided", s)
			}
		default:
			return nil, errdefs.Newf(errdefs.InvalidArgument, "Invalid detach keys (%s) provided", s)
		}
	}
	return out, nil
}

// detachReader passes input through until the detach sequence appears;
// a partial match is held back until it is decided.
type detachReader struct {
	r        io.Reader
	keys     []byte
	matched  int
	onDetach func()
	done     bool
}

func (d *detachReader) Read(p []byte) (int, error) {
	if d.done {
		return 0, io.EOF
	}
	// Room for bytes of a partial match held back from the last read.
	size := len(p) - len(d.keys)
	if size < 1 {
		size = 1
	}
	buf := make([]byte, size)
	n, err := d.r.Read(buf)
	var out bytes.Buffer
	for _, b := range buf[:n] {
		if b == d.keys[d.matched] {
			d.matched++
			if d.matched == len(d.keys) {
				d.done = true
				d.onDetach()
				copy(p, out.Bytes())
				if out.Len() > 0 {
					return out.Len(), nil
				}
				return 0, io.EOF
			}
			continue
		}
		if d.matched > 0 {
			out.Write(d.keys[:d.matched])
			d.matched = 0
		}
		if b == d.keys[0] {
			d.matched = 1
			continue
		}
		out.WriteByte(b)
	}
	return copy(p, out.Bytes()), err
}
