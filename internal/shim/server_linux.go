package shim

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logger"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	"golang.org/x/sys/unix"
)

// bootFD is the inherited socket Spawn talks to the new shim on.
const bootFD = 3

// drainTimeout bounds how long the output of an exited process is still
// read: a descendant that escaped the container's end can hold the pipes.
const drainTimeout = 2 * time.Second

// spareTrimDelay is how long a shim waits for its boot config before it
// trims its memory (a warm spare).
const spareTrimDelay = 2 * time.Second

// collectWait bounds how long the deletion of an exited container waits
// for the daemon to collect the exit (see reap).
const collectWait = 100 * time.Millisecond

// Main is the whole of berth-shim: it reads its boot config from fd 3,
// creates the container, answers Spawn and serves until shut down. It
// returns the process exit code.
func Main() int {
	// A shim is mostly idle: collect early, keep the heap small.
	debug.SetGCPercent(50)
	defer releasing.Wait() // pre-forked inits let go in the background
	if d := os.Getenv("BERTH_TRACE_DIR"); d != "" {
		// Tracing from the very start (a warm spare's stderr is
		// /dev/null until it has a container): <dir>/shim.<pid>.
		if f, err := os.Create(filepath.Join(d, "shim."+strconv.Itoa(os.Getpid()))); err == nil {
			_ = unix.Dup2(int(f.Fd()), 2)
		}
	}
	initproc.Tracef("shim: main")
	if len(os.Args) == 1 && idleSpare() {
		// A warm spare (started without a container id): idle priority
		// until claimed (idle_linux.go).
		if err := goIdle(); err != nil {
			logf("idle priority: %v", err)
		}
	}
	boot := os.NewFile(bootFD, "shim-boot")
	var cfg bootConfig
	// A warm spare may wait long for its container: trimmed meanwhile, it
	// costs the host little (what it touches again faults back in from the
	// page cache).
	stopSpareTrim := trimAfter(spareTrimDelay)
	err := readBoot(boot, &cfg)
	stopSpareTrim()
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth-shim: this program is started by berthd, not by hand:", err)
		return 2
	}
	initproc.Tracef("shim: boot config read")
	s, err := newServer(&cfg)
	if err != nil {
		logf("create %s: %v", cfg.ID, err)
		_ = writeFrame(boot, errResponse(err))
		return 1
	}
	initproc.Tracef("shim: created")
	resp := &response{Pid: s.ctr.Pid(), Preforked: preforked(s.ctr)}
	initproc.Tracef("shim: answering")
	var input func() // the boot attach's stdin forwarding, if any
	if cfg.Start && cfg.Attach != nil {
		// The boot connection becomes the attach's stream (Spawn with
		// SpawnOpts.Attach): registered, started, answered.
		input, err = s.bootAttach(boot, cfg.Attach, resp)
	} else {
		if cfg.Start {
			// Started at once, answered with the create (SpawnOpts.Start).
			s.startInto(resp)
		}
		err = writeFrame(boot, resp)
		boot.Close()
	}
	if err != nil {
		// The daemon gave up (its ctx ended, or it died): undo.
		logf("report to daemon: %v; deleting the container", err)
		s.abort()
		return 1
	}
	go s.serve()
	go s.reap()
	s.scheduleTrim()
	if input != nil {
		go input()
	}
	<-s.quit // the files went with the listener (stop)
	return 0
}

// bootAttach answers a boot whose connection carries the container's
// stream from now on (bootConfig.Attach): it subscribes the connection,
// starts the container and answers in the attach's frame (resp, with
// Attached). It returns the attach's stdin forwarding, to run once the
// shim serves.
func (s *server) bootAttach(boot *os.File, o *AttachOpts, resp *response) (input func(), err error) {
	fc, err := net.FileConn(boot)
	boot.Close()
	if err != nil {
		return nil, fmt.Errorf("boot connection as a stream: %w", err)
	}
	uc, ok := fc.(*net.UnixConn)
	if !ok {
		fc.Close()
		return nil, errors.New("boot connection as a stream: not a unix socket")
	}
	req := &request{Op: opAttach, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Start: true}
	resp.Attached = true
	if !s.attachStart(uc, req, resp) {
		return nil, errors.New("the boot connection is gone")
	}
	return func() { s.attachInput(uc, req) }, nil
}

// startInto starts the container and puts the start's result in resp:
// Started, and the init's pid or the start's error.
func (s *server) startInto(resp *response) {
	r := s.start(context.Background())
	resp.Started = true
	if r.Err != "" {
		resp.StartErr, resp.StartClass = r.Err, r.Class
	} else {
		resp.Pid = r.Pid
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s berth-shim[%d]: %s\n", time.Now().UTC().Format(time.RFC3339Nano), os.Getpid(), fmt.Sprintf(format, args...))
}

// server is one shim: one container, its stdio, its execs.
type server struct {
	cfg *bootConfig
	rt  taskRuntime // berthRuntime, or an external OCI runtime (task_linux.go)
	ctr task
	ln  *net.UnixListener

	log    logger.Logger
	copier *logger.Copier
	tty    bool
	master *os.File // pty master (tty)

	stdinMu     sync.Mutex
	stdin       *os.File // container stdin: pipe write end or pty master; nil once closed
	stdinClosed bool

	mu        sync.Mutex
	status    string // created | starting | running | stopped
	startedAt time.Time
	startErr  error
	startDone chan struct{} // closed when a start attempt finished
	exit      *Exit
	done      chan struct{} // closed once the exit is known (waiters wake)
	recorded  chan struct{} // closed once exit.json is written
	// collected is closed once a wait was answered with the exit (or a
	// shutdown came): the deletion may then hold the P (see reap).
	collected   chan struct{}
	collectOnce sync.Once
	execs       map[string]*execProc
	attached    map[*connWriter]struct{}

	active   atomic.Int32 // connections being served
	activity atomic.Int64 // unix nanos of the last accepted connection
	trimT    *time.Timer

	quitOnce  sync.Once
	filesOnce sync.Once // removeFiles
	quit      chan struct{}
}

// newServer listens on the state dir's socket, creates the container with
// pipes (or a pty) for its stdio and opens its logger.
func newServer(cfg *bootConfig) (_ *server, retErr error) {
	s := &server{
		cfg: cfg, status: StatusCreated, startDone: make(chan struct{}), done: make(chan struct{}), recorded: make(chan struct{}), collected: make(chan struct{}),
		execs: map[string]*execProc{}, attached: map[*connWriter]struct{}{}, quit: make(chan struct{}),
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	var cleanups []func()
	defer func() {
		if retErr != nil {
			for i := len(cleanups) - 1; i >= 0; i-- {
				cleanups[i]()
			}
		}
	}()

	// The state directory, socket and shim log, and the logger, are set up
	// while the container is created: each file created costs about a
	// millisecond on a journaling file system.
	type prepared struct {
		ln      *net.UnixListener
		madeDir bool
		err     error
	}
	prepc := make(chan prepared, 1)
	go func() {
		var p prepared
		p.ln, p.madeDir, p.err = prepareStateDir(cfg.StateDir)
		if p.err == nil {
			// Written here, while the container is created, rather than
			// after the answer: with one P, a goroutine blocked in a
			// file system call then would hold off serving the daemon's
			// first calls (the poller runs when sysmon takes the P back).
			_ = os.WriteFile(filepath.Join(cfg.StateDir, pidName), []byte(strconv.Itoa(os.Getpid())), 0o600)
		}
		prepc <- p
	}()
	prep := func() prepared {
		p := <-prepc
		prepc <- p
		return p
	}
	cleanups = append(cleanups, func() {
		p := prep()
		if p.ln != nil {
			p.ln.Close()
		}
		if p.madeDir {
			_ = os.RemoveAll(cfg.StateDir)
		} else if p.ln != nil {
			_ = os.Remove(filepath.Join(cfg.StateDir, sockName))
			_ = os.Remove(filepath.Join(cfg.StateDir, pidName))
		}
	})

	// The logger opens while the container is created (syslog may dial).
	type opened struct {
		l   logger.Logger
		err error
	}
	logc := make(chan opened, 1)
	go func() {
		l, err := logger.New(cfg.Log)
		logc <- opened{l, err}
	}()
	cleanups = append(cleanups, func() {
		if o := <-logc; o.l != nil {
			_ = o.l.Close()
		}
	})

	pre := cfg.pre
	cfg.pre = nil
	cleanups = append(cleanups, func() { pre.release() }) // a no-op once create took it
	var (
		rt  *runtime.Runtime
		err error
	)
	if cfg.OCI != nil {
		// Not for an external runtime's container (berthd does not
		// prepare one; released here should one come anyway).
		pre.release()
		pre = nil
	} else {
		if pre != nil {
			rt = pre.rt
		} else if rt, err = runtime.New(cfg.RuntimeRoot); err != nil {
			return nil, err
		}
		if cfg.RuntimeInit != "" {
			rt.InitPath = cfg.RuntimeInit
		}
		if st, err := os.Stat(rt.InitPath); err != nil || !st.Mode().IsRegular() || rt.InitPath == "/proc/self/exe" {
			return nil, errdefs.Newf(errdefs.FailedPrecondition, "container init %s: not found (install %s beside %s)", rt.InitPath, runtime.InitBinaryName, BinaryName)
		}
		s.rt = berthRuntime{rt}
	}
	initproc.Tracef("shim: runtime opened")

	// Pipes for stdio, made before we know whether the spec asks for a
	// terminal (then the init replaces them with the pty slave); a
	// prepared shim made them for its pre-forked init.
	var sio *stdio
	if pre != nil {
		sio = pre.io
	} else if sio, err = newStdio(cfg.Stdin); err != nil {
		return nil, err
	}
	outR, outW, errR, errW, inR, inW := sio.outR, sio.outW, sio.errR, sio.errW, sio.inR, sio.inW
	childEnds := []*os.File{outW, errW, inR}
	closeChildEnds := func() {
		for _, f := range childEnds {
			f.Close()
		}
		childEnds = nil
	}
	defer closeChildEnds()
	closeOurs := func() {
		outR.Close()
		errR.Close()
		if inW != nil {
			inW.Close()
		}
	}

	initproc.Tracef("shim: creating")
	var ctr task
	if cfg.OCI != nil {
		// An external OCI runtime (ociruntime_linux.go).
		ctr, s.rt, err = createOCI(context.Background(), cfg, runtime.IO{Stdin: inR, Stdout: outW, Stderr: errW})
	} else {
		co := runtime.CreateOpts{Bundle: cfg.Bundle, IO: runtime.IO{Stdin: inR, Stdout: outW, Stderr: errW}, Config: cfg.spec}
		if pre != nil {
			co.Preforked = pre.pf // create uses it or releases it
			pre = nil
		}
		ctr, err = rt.CreateContainer(context.Background(), cfg.ID, co)
	}
	closeChildEnds()
	if err != nil {
		closeOurs()
		return nil, err
	}
	s.ctr = ctr
	cleanups = append(cleanups, func() { _ = ctr.Delete(context.Background()) })

	var sources map[string]io.Reader
	if p := ctr.Spec().Process; p != nil && p.Terminal {
		closeOurs()
		master, err := ctr.Console()
		if err != nil {
			return nil, err
		}
		s.tty, s.master = true, master
		if cfg.Stdin {
			s.stdin = master
		}
		sources = map[string]io.Reader{"stdout": master}
	} else {
		s.stdin = inW
		sources = map[string]io.Reader{"stdout": outR, "stderr": errR}
	}
	initproc.Tracef("shim: console/pipes ready")
	p := prep()
	initproc.Tracef("shim: state dir ready")
	o := <-logc
	logc <- opened{} // for the cleanup above
	initproc.Tracef("shim: logger ready")
	if p.err == nil && o.err != nil {
		p.err = fmt.Errorf("failed to create logger: %w", o.err)
	} else if o.l != nil && p.err != nil {
		_ = o.l.Close()
	}
	if p.err != nil {
		if s.master != nil {
			s.master.Close()
		} else {
			closeOurs()
		}
		return nil, p.err
	}
	s.ln = p.ln
	s.log = o.l
	s.copier = logger.NewCopier(o.l, sources)
	s.copier.Run()
	return s, nil
}

// abort undoes newServer when the daemon is no longer there to be told.
func (s *server) abort() {
	_ = s.ctr.Delete(context.Background())
	_ = s.copier.Close()
	_ = s.log.Close()
	s.removeFiles()
	s.ln.Close()
}

// removeFiles removes the shim's socket and pid file, once, and while the
// listener is still open (stop, shutdown, abort): after the shutdown's
// answer, or once the listener is closed, the daemon may start the
// container's next shim in the same state directory (a start after a
// stop), whose files this shim's exit must not remove.
func (s *server) removeFiles() {
	s.filesOnce.Do(func() {
		_ = os.Remove(filepath.Join(s.cfg.StateDir, sockName))
		_ = os.Remove(filepath.Join(s.cfg.StateDir, pidName))
	})
}

// prepareStateDir makes the state directory (0700) unless it exists,
// points our stderr at its shim.log and listens on its socket (0600: root
// only), through /proc/self/fd when the path is too long for a sockaddr.
func prepareStateDir(dir string) (_ *net.UnixListener, madeDir bool, _ error) {
	if err := os.Mkdir(dir, 0o700); err == nil {
		madeDir = true
	} else if !errors.Is(err, os.ErrExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("shim state dir: %w", err)
		}
		madeDir = true
	}
	if os.Getenv("BERTH_TRACE_DIR") != "" {
		// Tracing into <dir>/shim.<pid> (Main): stderr stays there.
	} else if f, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600); err == nil {
		_ = unix.Dup3(int(f.Fd()), 2, 0)
		f.Close()
	}
	path := filepath.Join(dir, sockName)
	if c, err := (&Client{stateDir: dir, sock: path}).dial(context.Background()); err == nil {
		c.Close()
		return nil, madeDir, errdefs.Newf(errdefs.AlreadyExists, "a shim is already running in %s", dir)
	}
	_ = os.Remove(path) // a dead shim's
	addr := path
	if len(addr) >= 100 {
		dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, madeDir, err
		}
		defer unix.Close(dfd)
		addr = "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + sockName
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		return nil, madeDir, fmt.Errorf("shim socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	// Root only. The directory (0700) already keeps others out; the umask
	// is not touched because it is per process and the logger creates its
	// files at the same time.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, madeDir, fmt.Errorf("shim socket: %w", err)
	}
	return ln, madeDir, nil
}

func (s *server) serve() {
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			logf("accept: %v", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.active.Add(1)
		s.activity.Store(time.Now().UnixNano())
		if !peerIsRoot(conn) {
			_ = writeFrame(conn, errResponse(errdefs.Newf(errdefs.Forbidden, "shim: only root may connect")))
			conn.Close()
			s.active.Add(-1)
			continue
		}
		go func() {
			defer s.active.Add(-1)
			s.handle(conn)
			s.scheduleTrim()
		}()
	}
}

func peerIsRoot(conn *net.UnixConn) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	_ = raw.Control(func(fd uintptr) {
		cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	return cred != nil && (cred.Uid == 0 || int(cred.Uid) == os.Geteuid())
}

// handle serves one connection: one request, one response, and for the
// streaming operations the stream. Each handler owns conn: it closes it or
// hands it on.
func (s *server) handle(conn *net.UnixConn) {
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var req request
	if err := readFrame(conn, &req); err != nil {
		conn.Close()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	ctx := context.Background()
	var resp *response
	switch req.Op {
	case opPing:
		resp = &response{Pid: os.Getpid()}
	case opStart:
		resp = s.start(ctx)
	case opState:
		resp = s.state()
	case opWait:
		if !waitOrHangup(conn, s.done) {
			conn.Close()
			return
		}
		_ = writeFrame(conn, &response{Exit: s.exit})
		conn.Close()
		s.markCollected()
		return
	case opAttach:
		s.attach(conn, &req)
		return
	case opResize:
		resp = s.resize(&req)
	case opKill:
		resp = s.kill(ctx, &req)
	case opExec:
		resp = s.execCreate(&req)
	case opExecStart:
		s.execStart(ctx, conn, &req)
		return
	case opExecState:
		resp = s.execState(&req)
	case opExecWait:
		resp = s.execWait(conn, &req)
		if resp == nil {
			conn.Close()
			return
		}
	case opCloseStdin:
		s.closeStdin()
		resp = &response{}
	case opShutdown:
		s.shutdown(ctx, conn)
		return
	default:
		resp = errResponse(errdefs.Newf(errdefs.NotImplemented, "shim: unknown operation %q", req.Op))
	}
	_ = writeFrame(conn, resp)
	conn.Close()
}

// waitOrHangup blocks until done is closed (true) or the client hung up
// (false): a client that gave up waiting does not leave a goroutine and a
// descriptor behind until the container exits.
func waitOrHangup(conn *net.UnixConn, done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	default:
	}
	hup := make(chan struct{})
	go func() {
		var b [1]byte
		_, _ = conn.Read(b[:]) // the client sends nothing more: EOF or error = gone
		close(hup)
	}()
	select {
	case <-done:
		_ = conn.SetReadDeadline(time.Unix(1, 0)) // end the reader
		return true
	case <-hup:
		select {
		case <-done:
			return true
		default:
			return false
		}
	}
}

func (s *server) start(ctx context.Context) *response {
	s.mu.Lock()
	switch s.status {
	case StatusCreated:
	case StatusStopped:
		s.mu.Unlock()
		return errResponse(errdefs.Newf(errdefs.Conflict, "cannot start a container that has stopped"))
	default:
		st := s.status
		s.mu.Unlock()
		return errResponse(errdefs.Newf(errdefs.NotModified, "container is already %s", st))
	}
	s.status = "starting"
	s.mu.Unlock()

	err := s.ctr.Start(ctx)
	s.mu.Lock()
	if err != nil {
		s.startErr = err
	} else {
		s.status, s.startedAt = StatusRunning, time.Now().UTC()
	}
	close(s.startDone)
	s.mu.Unlock()
	if err != nil {
		// A program that could not be executed, or a failed poststart
		// hook: make sure nothing runs; reap records the failure.
		_ = s.ctr.Signal(unix.SIGKILL)
		return errResponse(err)
	}
	return &response{Pid: s.ctr.Pid()}
}

func (s *server) state() *response {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &response{Status: s.status, Exit: s.exit}
	switch s.status {
	case "starting":
		r.Status = StatusCreated
		r.Pid = s.ctr.Pid()
	case StatusStopped:
	default:
		r.Pid = s.ctr.Pid()
	}
	if !s.startedAt.IsZero() {
		t := s.startedAt
		r.StartedAt = &t
	}
	return r
}

func (s *server) kill(ctx context.Context, req *request) *response {
	if req.ID != "" {
		return s.execKill(req)
	}
	s.mu.Lock()
	st := s.status
	s.mu.Unlock()
	if st == StatusStopped {
		return errResponse(errdefs.Newf(errdefs.Conflict, "container %s is not running", s.cfg.ID))
	}
	if err := s.rt.Kill(ctx, s.cfg.ID, syscall.Signal(req.Signal), req.All); err != nil {
		if errdefs.Is(err, errdefs.NotFound) {
			err = errdefs.Newf(errdefs.Conflict, "container %s is not running", s.cfg.ID)
		}
		return errResponse(err)
	}
	return &response{}
}

// execKill signals exec req.ID's process (a healthcheck probe that
// outlived its timeout). The process is the shim's child, so its pid
// cannot have been reused while it is not reaped.
func (s *server) execKill(req *request) *response {
	e, err := s.lookupExec(req.ID)
	if err != nil {
		return errResponse(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started || e.exited || e.proc == nil {
		return errResponse(errdefs.Newf(errdefs.Conflict, "exec %s is not running", req.ID))
	}
	if err := e.proc.Signal(syscall.Signal(req.Signal)); err != nil {
		return errResponse(errdefs.Newf(errdefs.Conflict, "exec %s: %v", req.ID, err))
	}
	return &response{}
}

func (s *server) resize(req *request) *response {
	var master *os.File
	if req.ID == "" {
		master = s.master
	} else {
		s.mu.Lock()
		e := s.execs[req.ID]
		s.mu.Unlock()
		if e == nil {
			return errResponse(errdefs.Newf(errdefs.NotFound, "no such exec: %s", req.ID))
		}
		e.mu.Lock()
		master = e.master
		e.mu.Unlock()
	}
	if master == nil {
		return &response{} // no terminal: nothing to resize (as containerd)
	}
	ws := &unix.Winsize{Row: req.Height, Col: req.Width}
	raw, err := master.SyscallConn()
	if err != nil {
		return &response{} // closed: the process exited
	}
	var ierr error
	_ = raw.Control(func(fd uintptr) { ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, ws) })
	if ierr != nil {
		return errResponse(fmt.Errorf("resize: %w", ierr))
	}
	return &response{}
}

// closeStdin closes the container's stdin pipe. With a terminal the pty
// master carries the output too: only input forwarding stops.
func (s *server) closeStdin() {
	s.stdinMu.Lock()
	defer s.stdinMu.Unlock()
	if s.stdinClosed {
		return
	}
	s.stdinClosed = true
	if s.stdin != nil && !s.tty {
		s.stdin.Close()
	}
	s.stdin = nil
}

// stdinFile returns the container's stdin while it is open.
func (s *server) stdinFile() *os.File {
	s.stdinMu.Lock()
	defer s.stdinMu.Unlock()
	return s.stdin
}

// reap waits for the init, then records its end: OOM kills, leftovers
// killed and runtime state (cgroups) deleted, output drained and logged,
// exit file written, waiters woken, attached clients closed.
func (s *server) reap() {
	ws, werr := s.ctr.Wait()
	exitedAt := time.Now().UTC()
	initproc.Tracef("shim: init exited")
	s.mu.Lock()
	if s.status == "starting" {
		s.mu.Unlock()
		<-s.startDone
		s.mu.Lock()
	}
	startErr := s.startErr
	s.mu.Unlock()

	e := &Exit{Code: runtime.ExitCode(ws), ExitedAt: exitedAt}
	if werr != nil {
		e.Code, e.Error = 255, "wait: "+werr.Error()
	}
	if n, err := s.ctr.Cgroup().OOMKillCount(); err == nil && n > 0 {
		e.OOMKilled = true
	}
	if startErr != nil {
		e.Code, e.Error = startExitCode(startErr), startErr.Error()
	}
	// With its own PID namespace the init's death took every process of
	// the container with it, so the output can be drained at once and the
	// runtime state (cgroup directories: a few rmdirs per hierarchy)
	// deleted after the waiters are woken. Otherwise leftover processes
	// could hold the output open: they are killed first.
	deleteLate := ownPidNS(s.ctr.Spec())
	if !deleteLate {
		if err := s.ctr.Delete(context.Background()); err != nil {
			logf("delete container %s: %v", s.cfg.ID, err)
		}
		initproc.Tracef("shim: deleted")
	}
	drained := make(chan struct{})
	go func() { _ = s.copier.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		logf("output of %s still open %v after exit: closing it", s.cfg.ID, drainTimeout)
		_ = s.copier.Close()
	}
	initproc.Tracef("shim: drained")
	if err := s.log.Close(); err != nil {
		logf("close log: %v", err)
	}
	s.closeStdin()
	if s.master != nil {
		s.master.Close()
	}
	// Waiters are woken first: the file is for a daemon that comes back
	// after the shim is gone, and the shim does not go (shutdown, idle
	// exit) before it is written.
	s.mu.Lock()
	s.exit, s.status = e, StatusStopped
	close(s.done)
	attached := s.attached
	s.attached = nil
	s.mu.Unlock()
	for w := range attached {
		w.close()
	}
	initproc.Tracef("shim: waiters woken")
	// With one P (GOMAXPROCS=1) the woken waiters would otherwise wait
	// for this goroutine to block in a system call long enough for
	// sysmon to take the P back (20 µs to 10 ms): let them write their
	// answers before the deletion below.
	goruntime.Gosched()
	if deleteLate {
		// The deletion (dropping the mount namespace: an unmount of the
		// container's tree and an RCU grace period; a few cgroup rmdirs)
		// keeps the P in system calls for a millisecond or more: a short
		// program has usually exited before the daemon's wait arrived,
		// and that wait would be served only when sysmon takes the P
		// back. So it waits until the exit was collected, or a moment
		// when nobody asks (the daemon is down).
		select {
		case <-s.collected:
		case <-time.After(collectWait):
		}
		if err := s.ctr.Delete(context.Background()); err != nil {
			logf("delete container %s: %v", s.cfg.ID, err)
		}
		initproc.Tracef("shim: deleted")
	}
	if err := writeExit(s.cfg.StateDir, e); err != nil {
		logf("record exit: %v", err)
	}
	close(s.recorded)
	initproc.Tracef("shim: exit recorded")
	s.idleExit()
}

// markCollected records that the exit reached a waiter (or that the shim
// is being shut down): the deletion in reap need not wait any longer.
func (s *server) markCollected() {
	s.collectOnce.Do(func() { close(s.collected) })
}

// ownPidNS reports whether the container has a PID namespace of its own.
func ownPidNS(sp *specs.Spec) bool {
	if sp == nil || sp.Linux == nil {
		return false
	}
	for _, ns := range sp.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			return true
		}
	}
	return false
}

// startExitCode is Docker's exit code for a container that failed to
// start: 127 when the command was not found, 126 when it could not be
// executed, 128 otherwise.
func startExitCode(err error) int {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return 126
	}
	return 128
}

// idleExit ends the shim once nobody talked to it for the idle timeout
// after the container exited.
func (s *server) idleExit() {
	if s.cfg.IdleTimeout < 0 {
		return
	}
	s.activity.Store(time.Now().UnixNano())
	var check func()
	check = func() {
		left := s.cfg.IdleTimeout - time.Since(time.Unix(0, s.activity.Load()))
		if left <= 0 && s.active.Load() > 0 {
			left = s.cfg.IdleTimeout // a client is still being served
		}
		if left > 0 {
			time.AfterFunc(left, check)
			return
		}
		s.stop()
	}
	time.AfterFunc(s.cfg.IdleTimeout, check)
}

func (s *server) stop() {
	s.quitOnce.Do(func() {
		s.removeFiles()
		s.ln.Close()
		close(s.quit)
	})
}

// shutdown kills what still runs, waits for the exit to be recorded,
// makes sure the runtime state is gone, answers and ends the shim.
func (s *server) shutdown(ctx context.Context, conn *net.UnixConn) {
	s.markCollected()
	select {
	case <-s.done:
	default:
		_ = s.rt.Kill(ctx, s.cfg.ID, unix.SIGKILL, true)
		_ = s.ctr.Signal(unix.SIGKILL)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			logf("shutdown: container %s did not exit", s.cfg.ID)
		}
	}
	select {
	case <-s.recorded:
	case <-time.After(10 * time.Second):
	}
	var resp response
	if err := s.rt.Delete(ctx, s.cfg.ID, true); err != nil && !errdefs.Is(err, errdefs.NotFound) {
		resp = *errResponse(err)
	}
	s.removeFiles()
	_ = writeFrame(conn, &resp)
	s.stop()
	// conn is closed by the process exit, after the socket file is gone.
}
