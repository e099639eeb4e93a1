package logger

import (
	"bytes"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Copier moves a container's output into a Logger. It runs in the shim:
// one goroutine and one MaxLineSize buffer per stream, no allocation per
// message. Each read is first copied raw to the attached writers (live
// `docker attach`), then cut into lines: a line is logged without its
// newline; a line longer than MaxLineSize is logged in Partial chunks; a
// last line without a newline at end of stream is logged as a whole line
// (Docker does the same and json-file then stores it with "\n").
//
// Timestamps are taken under one lock together with the Log call, so the
// records of all streams reach the Logger in timestamp order, which the
// readers' bisection relies on.
//
// Lifecycle: NewCopier, any number of Attach, Run once, Wait until the
// streams reach end of file (the container and everything holding its
// pipes exited), then Close the Logger. A pty master is a single stream,
// "stdout"; its EIO at hang-up counts as end of file.
type Copier struct {
	l       Logger
	sources map[string]io.Reader

	logMu sync.Mutex // timestamp + Log, across streams

	subMu sync.Mutex
	subs  map[string]*atomic.Pointer[[]*subscriber]

	wg     sync.WaitGroup
	errMu  sync.Mutex
	err    error
	runOne sync.Once
}

type subscriber struct {
	w    io.Writer
	dead atomic.Bool
}

// NewCopier prepares a copier of sources (keyed "stdout", "stderr") to l.
func NewCopier(l Logger, sources map[string]io.Reader) *Copier {
	c := &Copier{l: l, sources: sources, subs: map[string]*atomic.Pointer[[]*subscriber]{}}
	for name := range sources {
		c.subs[name] = new(atomic.Pointer[[]*subscriber])
	}
	return c
}

// Attach copies the raw bytes of stream source to w from now on, until
// detach is called or a write to w fails. Writes happen on the stream's
// goroutine: a slow w slows the container's output, so attach servers
// should write to a socket with a deadline or a bounded buffer.
func (c *Copier) Attach(source string, w io.Writer) (detach func()) {
	p := c.subs[source]
	if p == nil {
		return func() {}
	}
	s := &subscriber{w: w}
	c.subMu.Lock()
	var list []*subscriber
	if old := p.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, s)
	p.Store(&list)
	c.subMu.Unlock()
	return func() { c.remove(p, s) }
}

func (c *Copier) remove(p *atomic.Pointer[[]*subscriber], s *subscriber) {
	s.dead.Store(true)
	c.subMu.Lock()
	defer c.subMu.Unlock()
	old := p.Load()
	if old == nil {
		return
	}
	list := make([]*subscriber, 0, len(*old))
	for _, x := range *old {
		if x != s {
			list = append(list, x)
		}
	}
	p.Store(&list)
}

// Run starts copying; calling it again does nothing.
func (c *Copier) Run() {
	c.runOne.Do(func() {
		names := make([]string, 0, len(c.sources))
		for name := range c.sources {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			c.wg.Add(1)
			go c.copy(name, c.sources[name])
		}
	})
}

// Wait blocks until every stream has ended and returns the first error
// the Logger reported (the copier keeps going after Log errors: a full
// disk must not block the container).
func (c *Copier) Wait() error {
	c.wg.Wait()
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Close closes the sources that are io.Closers, which ends their reads,
// and waits for the copy goroutines. It does not close the Logger.
func (c *Copier) Close() error {
	for _, r := range c.sources {
		if cl, ok := r.(io.Closer); ok {
			_ = cl.Close()
		}
	}
	return c.Wait()
}

func (c *Copier) copy(name string, r io.Reader) {
	defer c.wg.Done()
	subs := c.subs[name]
	buf := make([]byte, MaxLineSize)
	m := &Message{Source: name}
	n := 0
	for {
		k, rerr := r.Read(buf[n:])
		if k > 0 {
			c.fanout(subs, buf[n:n+k])
		}
		n += k
		start := 0
		for {
			i := bytes.IndexByte(buf[start:n], '\n')
			if i < 0 {
				break
			}
			c.log(m, buf[start:start+i], false)
			start += i + 1
		}
		switch {
		case start == 0 && n == len(buf):
			c.log(m, buf[:n], true)
			n = 0
		case start > 0:
			n = copy(buf, buf[start:n])
		}
		if rerr != nil {
			if n > 0 {
				c.log(m, buf[:n], false)
			}
			return
		}
	}
}

func (c *Copier) fanout(p *atomic.Pointer[[]*subscriber], b []byte) {
	list := p.Load()
	if list == nil {
		return
	}
	for _, s := range *list {
		if s.dead.Load() {
			continue
		}
		if _, err := s.w.Write(b); err != nil {
			c.remove(p, s)
		}
	}
}

func (c *Copier) log(m *Message, line []byte, partial bool) {
	c.logMu.Lock()
	m.Line, m.Partial, m.Timestamp = line, partial, time.Now().UTC()
	err := c.l.Log(m)
	c.logMu.Unlock()
	if err != nil {
		c.errMu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.errMu.Unlock()
	}
}
