package shim

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Stream ids of Docker's multiplexed stream.
const (
	streamRaw    = 0 // terminal: no framing
	streamStdout = 1
	streamStderr = 2
)

// connWriter writes output to one client connection. Its mutex orders the
// frames of both streams and, held by the handler until the response is
// written, keeps output from overtaking the response. A failed write
// closes the connection.
type connWriter struct {
	mu   sync.Mutex
	c    *net.UnixConn
	buf  []byte
	dead bool
}

func (w *connWriter) write(stream byte, p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead {
		return 0, net.ErrClosed
	}
	var err error
	if stream == streamRaw {
		_, err = w.c.Write(p)
	} else {
		// One write per frame: header and payload never interleave with
		// another stream's frame.
		w.buf = append(w.buf[:0], stream, 0, 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint32(w.buf[4:8], uint32(len(p)))
		w.buf = append(w.buf, p...)
		_, err = w.c.Write(w.buf)
		if cap(w.buf) > 64<<10 {
			w.buf = nil
		}
	}
	if err != nil {
		w.dead = true
		w.c.Close()
		return 0, err
	}
	return len(p), nil
}

func (w *connWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.dead {
		w.dead = true
		w.c.Close()
	}
}

// streamWriter is the io.Writer of one stream of a connWriter.
type streamWriter struct {
	w      *connWriter
	stream byte
}

func (s streamWriter) Write(p []byte) (int, error) { return s.w.write(s.stream, p) }

// attach subscribes conn to the container's output and forwards its input
// to the container's stdin.
func (s *server) attach(conn *net.UnixConn, req *request) {
	if s.attachStart(conn, req, &response{}) {
		s.attachInput(conn, req)
	}
}

// attachStart subscribes conn to the container's output, starts the
// container with req.Start, and answers resp (completed with the start's
// result). false: conn is closed (the container had exited, or the answer
// could not be written).
func (s *server) attachStart(conn *net.UnixConn, req *request, resp *response) bool {
	w := &connWriter{c: conn}
	w.mu.Lock() // output waits for the response
	s.mu.Lock()
	if s.status == StatusStopped {
		s.mu.Unlock()
		_ = writeFrame(conn, resp)
		w.mu.Unlock()
		conn.Close() // the stream of an exited container is empty
		return false
	}
	s.attached[w] = struct{}{}
	s.mu.Unlock()
	if s.tty {
		if req.Stdout || req.Stderr {
			s.copier.Attach("stdout", streamWriter{w, streamRaw})
		}
	} else {
		if req.Stdout {
			s.copier.Attach("stdout", streamWriter{w, streamStdout})
		}
		if req.Stderr {
			s.copier.Attach("stderr", streamWriter{w, streamStderr})
		}
	}
	if req.Start {
		// Registered: start the container now (Client.AttachStart, or
		// Spawn with SpawnOpts.Attach). Its output waits for the answer
		// (w.mu), so none is lost.
		s.startInto(resp)
	}
	err := writeFrame(conn, resp)
	w.mu.Unlock()
	if err != nil {
		w.close()
		return false
	}
	return true
}

// attachInput forwards what the client of an attach writes to the
// container's stdin (with req.Stdin), until the client's end of input.
func (s *server) attachInput(conn *net.UnixConn, req *request) {
	if req.Stdin && s.stdinFile() != nil {
		copyInput(conn, s.stdinFile)
		if s.cfg.StdinOnce {
			s.closeStdin()
		}
	}
}

// copyInput forwards a client's bytes to the file dst returns, until the
// client's end of input (CloseWrite or close) or dst is gone.
func copyInput(conn *net.UnixConn, dst func() *os.File) {
	buf := make([]byte, 16<<10)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			f := dst()
			if f == nil {
				return
			}
			if _, werr := f.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// execProc is one exec: registered by Exec, started by ExecStart.
type execProc struct {
	id                    string
	spec                  *specs.Process
	stdin, stdout, stderr bool

	mu       sync.Mutex
	started  bool
	proc     process
	pid      int
	master   *os.File
	stdinW   *os.File
	exited   bool
	exitedAt time.Time
	created  time.Time
	code     int
	done     chan struct{} // closed when exited
}

func (s *server) execCreate(req *request) *response {
	if req.ID == "" || req.Process == nil || len(req.Process.Args) == 0 {
		return errResponse(errdefs.Newf(errdefs.InvalidArgument, "exec: id and process args are required"))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != StatusRunning {
		return errResponse(errdefs.Newf(errdefs.Conflict, "container %s is not running", s.cfg.ID))
	}
	if _, ok := s.execs[req.ID]; ok {
		return errResponse(errdefs.Newf(errdefs.AlreadyExists, "exec %s already exists", req.ID))
	}
	s.pruneExecs()
	s.execs[req.ID] = &execProc{
		id: req.ID, spec: req.Process, stdin: req.Stdin, stdout: req.Stdout, stderr: req.Stderr,
		code: -1, done: make(chan struct{}), created: time.Now(),
	}
	return &response{}
}

// execRetention is how long an exited exec stays known (ExecState,
// ExecWait) before the next Exec may forget it: a healthcheck execs every
// few seconds for the life of the container, and the shim must not grow.
const execRetention = 5 * time.Minute

// pruneExecs forgets execs that exited more than execRetention ago, and
// those registered but never started for as long. Called with s.mu held.
func (s *server) pruneExecs() {
	now := time.Now()
	for id, e := range s.execs {
		e.mu.Lock()
		old := (e.exited && now.Sub(e.exitedAt) > execRetention) || (!e.started && now.Sub(e.created) > execRetention)
		e.mu.Unlock()
		if old {
			delete(s.execs, id)
		}
	}
}

func (s *server) lookupExec(id string) (*execProc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.execs[id]
	if e == nil {
		return nil, errdefs.Newf(errdefs.NotFound, "no such exec: %s", id)
	}
	return e, nil
}

// execStart starts an exec and, unless detached, streams its stdio over
// conn until it exited and its output was drained.
func (s *server) execStart(ctx context.Context, conn *net.UnixConn, req *request) {
	fail := func(err error) {
		_ = writeFrame(conn, errResponse(err))
		conn.Close()
	}
	e, err := s.lookupExec(req.ID)
	if err != nil {
		fail(err)
		return
	}
	s.mu.Lock()
	running := s.status == StatusRunning
	s.mu.Unlock()
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		fail(errdefs.Newf(errdefs.Conflict, "exec %s has already been started", e.id))
		return
	}
	if !running {
		e.mu.Unlock()
		fail(errdefs.Newf(errdefs.Conflict, "container %s is not running", s.cfg.ID))
		return
	}
	e.started = true
	spec := e.spec
	e.spec = nil // not needed once started
	e.mu.Unlock()

	detach := req.Detach
	tty := spec.Terminal
	var childEnds, ours []*os.File
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		s.execFailed(e, err)
		fail(err)
		return
	}
	childEnds = append(childEnds, devnull)
	stdio := runtime.IO{Stdin: devnull, Stdout: devnull, Stderr: devnull}
	var outR, errR, inW *os.File
	pipe := func(read bool) (*os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		if read { // we read, the child writes
			childEnds, ours = append(childEnds, w), append(ours, r)
			return r, nil
		}
		childEnds, ours = append(childEnds, r), append(ours, w)
		stdio.Stdin = r
		return w, nil
	}
	if !detach && !tty {
		if e.stdout {
			if outR, err = pipe(true); err == nil {
				stdio.Stdout = childEnds[len(childEnds)-1]
			}
		}
		if err == nil && e.stderr {
			if errR, err = pipe(true); err == nil {
				stdio.Stderr = childEnds[len(childEnds)-1]
			}
		}
		if err == nil && e.stdin {
			inW, err = pipe(false)
		}
	}
	var proc process
	if err == nil {
		proc, err = s.rt.StartExec(ctx, s.cfg.ID, spec, runtime.ExecOpts{IO: stdio})
	}
	for _, f := range childEnds {
		f.Close()
	}
	var master *os.File
	if err == nil && tty {
		if master, err = proc.Console(); err != nil {
			_ = proc.Signal(syscall.SIGKILL)
			_, _ = proc.Wait()
		}
	}
	if err != nil {
		for _, f := range ours {
			f.Close()
		}
		s.execFailed(e, err)
		fail(err)
		return
	}
	e.mu.Lock()
	e.proc, e.pid, e.master = proc, proc.Pid(), master
	if tty && e.stdin {
		e.stdinW = master
	} else {
		e.stdinW = inW
	}
	e.mu.Unlock()

	w := &connWriter{c: conn}
	werr := writeFrame(conn, &response{Pid: e.pid})
	if detach || werr != nil {
		conn.Close()
	}
	// Output: to the client, or discarded once it is gone; a detached
	// terminal is drained so the process never blocks on it.
	var wg sync.WaitGroup
	copyOut := func(r *os.File, stream byte, want bool) {
		defer wg.Done()
		var dst io.Writer = io.Discard
		if want && !detach && werr == nil {
			dst = &fallback{w: streamWriter{w, stream}}
		}
		buf := make([]byte, 16<<10)
		_, _ = io.CopyBuffer(dst, r, buf)
	}
	if tty {
		wg.Add(1)
		go copyOut(master, streamRaw, e.stdout || e.stderr)
	} else {
		if outR != nil {
			wg.Add(1)
			go copyOut(outR, streamStdout, true)
		}
		if errR != nil {
			wg.Add(1)
			go copyOut(errR, streamStderr, true)
		}
	}
	go s.execReap(e, w, &wg, outR, errR, detach || werr != nil)
	if !detach && werr == nil && e.stdin {
		copyInput(conn, func() *os.File {
			e.mu.Lock()
			defer e.mu.Unlock()
			return e.stdinW
		})
		// The client's end of input is the process's (Docker closes an
		// exec's stdin when the client's ends); a terminal keeps its pty.
		e.mu.Lock()
		if !tty && e.stdinW != nil {
			e.stdinW.Close()
		}
		e.stdinW = nil
		e.mu.Unlock()
	}
}

// fallback writes to w until a write fails, then discards.
type fallback struct {
	w    io.Writer
	dead bool
}

func (f *fallback) Write(p []byte) (int, error) {
	if !f.dead {
		if _, err := f.w.Write(p); err != nil {
			f.dead = true
		}
	}
	return len(p), nil
}

// execReap waits for an exec, drains its output and records its exit.
func (s *server) execReap(e *execProc, w *connWriter, wg *sync.WaitGroup, outR, errR *os.File, closed bool) {
	ws, werr := e.proc.Wait()
	code := runtime.ExitCode(ws)
	if werr != nil {
		code = 255
	}
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		for _, f := range []*os.File{outR, errR, e.master} {
			if f != nil {
				f.Close()
			}
		}
		<-drained
	}
	e.mu.Lock()
	for _, f := range []*os.File{outR, errR, e.master} {
		if f != nil {
			f.Close()
		}
	}
	if e.stdinW != nil {
		e.stdinW.Close()
		e.stdinW = nil
	}
	e.master = nil
	e.exited, e.exitedAt, e.code = true, time.Now(), code
	close(e.done)
	e.mu.Unlock()
	if !closed {
		w.close()
	}
}

// execFailed records an exec that could not be started, with Docker's
// codes (127 not found, 126 not executable).
func (s *server) execFailed(e *execProc, err error) {
	code := 126
	msg := err.Error()
	if strings.Contains(msg, "not found") || strings.Contains(msg, "no such file") {
		code = 127
	}
	e.mu.Lock()
	e.exited, e.exitedAt, e.code = true, time.Now(), code
	close(e.done)
	e.mu.Unlock()
}

func (s *server) execState(req *request) *response {
	e, err := s.lookupExec(req.ID)
	if err != nil {
		return errResponse(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return &response{Pid: e.pid, Running: e.started && !e.exited, Code: e.code}
}

// execWait answers when exec req.ID exited; nil when the client hung up.
func (s *server) execWait(conn *net.UnixConn, req *request) *response {
	e, err := s.lookupExec(req.ID)
	if err != nil {
		return errResponse(err)
	}
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if !started {
		return errResponse(errdefs.Newf(errdefs.Conflict, "exec %s has not been started", e.id))
	}
	if !waitOrHangup(conn, e.done) {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return &response{Code: e.code}
}
