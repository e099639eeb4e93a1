package shim

// The external OCI runtime path of the shim: the container is created and
// driven through a runtime binary with runc's command line instead of the
// runtime library. The shim stays the container's supervisor: it is a
// child subreaper, so the container's init (and every exec'd process),
// orphaned when `runc create` / `runc exec -d` exits, becomes its child,
// and it reaps them and records their exit as with berth's own runtime.
//
//	| # | shim                                    | runtime binary                               |
//	|---|-----------------------------------------|----------------------------------------------|
//	| 1 | PR_SET_CHILD_SUBREAPER; SIGCHLD reaper  |                                              |
//	| 2 | [tty: listen on a console socket]       |                                              |
//	| 3 | <rt> --root R create --bundle B         | creates the init (blocked before exec),      |
//	|   |  --pid-file P [--console-socket S] ID   | [sends the pty master on S], exits           |
//	|   |  (stdio: the shim's pipes)              |                                              |
//	| 4 | read P: the init, now the shim's child  |                                              |
//	| 5 | start: <rt> start ID                    | the init execs the container's process       |
//	| 6 | wait4(init) (reaper) → exit recorded    |                                              |
//	| 7 | <rt> delete --force ID; cgroup dirs     | removes its state (R/ID) and cgroups         |
//
// exec is `<rt> exec -d --process F --pid-file P [--console-socket S] ID`,
// kill is `<rt> kill [--all] ID SIG`. Errors are read from the runtime's
// JSON log (--log, one file per call). Stats, pids and the OOM counter
// come from the cgroup files of the spec's cgroupsPath, which berth sets
// and the runtime uses as given.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/cgroup"
)

// consoleTimeout bounds the wait for the runtime to send a pty master.
const consoleTimeout = 10 * time.Second

// ociTask is a container run by an external OCI runtime.
type ociTask struct {
	rt      *ociRuntime
	id      string
	spec    *specs.Spec
	cg      cgroup.Manager
	console *os.File
	child
}

// child is a process the shim reaps (the init, an exec'd process). It is
// signalled through a pidfd opened while it was our unreaped child, so a
// signal after the reap never reaches a process that reused the pid.
type child struct {
	pid    int
	reaper *reaper

	mu    sync.Mutex
	pidfd int // -1 once closed (after Wait)
}

func (c *child) init(pid int, r *reaper) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		fd = -1
	}
	c.pid, c.reaper, c.pidfd = pid, r, fd
}

func (c *child) Pid() int { return c.pid }

func (c *child) Signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pidfd < 0 {
		return errors.New("process already finished")
	}
	return unix.PidfdSendSignal(c.pidfd, sig, nil, 0)
}

// Wait reaps the process (once).
func (c *child) Wait() (syscall.WaitStatus, error) {
	ws := c.reaper.wait(c.pid)
	c.mu.Lock()
	if c.pidfd >= 0 {
		unix.Close(c.pidfd)
		c.pidfd = -1
	}
	c.mu.Unlock()
	return ws, nil
}

var (
	_ task        = (*ociTask)(nil)
	_ taskRuntime = (*ociRuntime)(nil)
	_ process     = (*ociProcess)(nil)
)

// ociRuntime runs the runtime binary for the shim.
type ociRuntime struct {
	OCIRuntime
	stateDir string
	reaper   *reaper
	seq      atomic.Int64
}

// createOCI creates the container with the external runtime: the init
// gets io as its stdio (or a pty, when the spec asks for a terminal).
func createOCI(ctx context.Context, cfg *bootConfig, io runtime.IO) (_ task, _ taskRuntime, retErr error) {
	data, err := os.ReadFile(filepath.Join(cfg.Bundle, "config.json"))
	if err != nil {
		return nil, nil, err
	}
	var sp specs.Spec
	if err := json.Unmarshal(data, &sp); err != nil {
		return nil, nil, fmt.Errorf("bundle config: %w", err)
	}
	var cgPath string
	if sp.Linux != nil {
		cgPath = sp.Linux.CgroupsPath
	}
	cg, err := cgroup.New(cgPath, cfg.ID, nil)
	if err != nil {
		return nil, nil, err
	}
	// Orphans (the init once `create` exits, exec'd processes once
	// `exec -d` exits) become our children: we reap them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, nil, fmt.Errorf("shim: set child subreaper: %w", err)
	}
	// The pid and log files go to the state directory, which the
	// caller may still be making (prepareStateDir runs alongside).
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, nil, err
	}
	rt := &ociRuntime{OCIRuntime: *cfg.OCI, stateDir: cfg.StateDir, reaper: startReaper()}
	t := &ociTask{rt: rt, id: cfg.ID, spec: &sp, cg: cg}
	pidFile := filepath.Join(cfg.StateDir, "init.pid")
	args := []string{"create", "--bundle", cfg.Bundle, "--pid-file", pidFile}
	terminal := sp.Process != nil && sp.Process.Terminal
	var cs *consoleSocket
	stdio := [3]*os.File{io.Stdin, io.Stdout, io.Stderr}
	if terminal {
		if cs, err = newConsoleSocket(); err != nil {
			return nil, nil, err
		}
		defer cs.close()
		args = append(args, "--console-socket", cs.path)
		stdio = [3]*os.File{nil, nil, nil}
	}
	for attempt := 1; ; attempt++ {
		err := rt.run(ctx, stdio, append(args, cfg.ID)...)
		if err == nil {
			break
		}
		_ = rt.Delete(context.Background(), cfg.ID, true)
		// The last container of berth's default cgroup parent (/berth)
		// removes the emptied parent as it goes (cgroup.Destroy), and the
		// runtime does not retry a mkdir whose parent vanished between
		// its steps (berth's own runtime does): try again.
		if attempt < 5 && strings.Contains(err.Error(), "cgroup") && strings.Contains(err.Error(), "no such file or directory") {
			continue
		}
		_ = cg.Destroy()
		return nil, nil, err
	}
	defer func() {
		if retErr != nil {
			_ = t.Delete(context.Background())
		}
	}()
	pid, err := readPidFile(pidFile)
	if err != nil {
		return nil, nil, err
	}
	t.child.init(pid, rt.reaper)
	_ = os.Remove(pidFile)
	if terminal {
		if t.console, err = cs.receive(); err != nil {
			return nil, nil, err
		}
	}
	return t, rt, nil
}

func (t *ociTask) Spec() *specs.Spec      { return t.spec }
func (t *ociTask) Cgroup() cgroup.Manager { return t.cg }

func (t *ociTask) Console() (*os.File, error) {
	if t.console == nil {
		return nil, errdefs.Newf(errdefs.FailedPrecondition, "container %s has no terminal", t.id)
	}
	return t.console, nil
}

func (t *ociTask) Start(ctx context.Context) error {
	return t.rt.run(ctx, [3]*os.File{}, "start", t.id)
}

// Delete removes the runtime's state and the container's cgroups (with
// berth's emptied default parent, as berth's own runtime does).
func (t *ociTask) Delete(ctx context.Context) error {
	err := t.rt.Delete(ctx, t.id, true)
	if errdefs.Is(err, errdefs.NotFound) {
		err = nil
	}
	return errors.Join(err, t.cg.Destroy())
}

// Kill signals the container's init (or, with all, every process).
func (r *ociRuntime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	return r.run(ctx, [3]*os.File{}, append(args, id, strconv.Itoa(int(sig)))...)
}

func (r *ociRuntime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	err := r.run(ctx, [3]*os.File{}, append(args, id)...)
	if errdefs.Is(err, errdefs.NotFound) {
		// A create that failed half-way can leave the runtime's directory
		// without a state file, which the runtime no longer knows.
		_ = os.RemoveAll(filepath.Join(r.Root, id))
	}
	return err
}

// StartExec runs p in the container, detached: the process becomes our
// child once the runtime exits.
func (r *ociRuntime) StartExec(ctx context.Context, id string, p *specs.Process, o runtime.ExecOpts) (process, error) {
	n := r.seq.Add(1)
	specFile := filepath.Join(r.stateDir, fmt.Sprintf(".exec%d.json", n))
	pidFile := filepath.Join(r.stateDir, fmt.Sprintf(".exec%d.pid", n))
	defer os.Remove(specFile)
	defer os.Remove(pidFile)
	b, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(specFile, b, 0o600); err != nil {
		return nil, err
	}
	args := []string{"exec", "--detach", "--process", specFile, "--pid-file", pidFile}
	stdio := [3]*os.File{o.IO.Stdin, o.IO.Stdout, o.IO.Stderr}
	var cs *consoleSocket
	if p.Terminal {
		if cs, err = newConsoleSocket(); err != nil {
			return nil, err
		}
		defer cs.close()
		args = append(args, "--console-socket", cs.path)
		stdio = [3]*os.File{}
	}
	if err := r.run(ctx, stdio, append(args, id)...); err != nil {
		return nil, err
	}
	pid, err := readPidFile(pidFile)
	if err != nil {
		return nil, err
	}
	proc := &ociProcess{}
	proc.child.init(pid, r.reaper)
	if cs != nil {
		if proc.console, err = cs.receive(); err != nil {
			_ = proc.Signal(unix.SIGKILL)
			_, _ = proc.Wait()
			return nil, err
		}
	}
	return proc, nil
}

// ociProcess is an exec'd process, our child (see StartExec).
type ociProcess struct {
	console *os.File
	child
}

func (p *ociProcess) Console() (*os.File, error) {
	if p.console == nil {
		return nil, errdefs.Newf(errdefs.FailedPrecondition, "process %d has no terminal", p.pid)
	}
	return p.console, nil
}

// run runs the runtime binary with args after its global options, stdio
// (nil: /dev/null), and waits for it through the reaper. A failure
// carries the runtime's own message (from its JSON log), classified:
// "does not exist" and "not running" are NotFound.
func (r *ociRuntime) run(ctx context.Context, stdio [3]*os.File, args ...string) error {
	logFile := filepath.Join(r.stateDir, fmt.Sprintf(".rt%d.log", r.seq.Add(1)))
	defer os.Remove(logFile)
	argv := append([]string{r.Path}, r.Args...)
	argv = append(argv, "--root", r.Root, "--log", logFile, "--log-format", "json")
	argv = append(argv, args...)
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	files := make([]*os.File, 3)
	for i, f := range stdio {
		files[i] = f
		if f == nil {
			files[i] = devnull
		}
	}
	// The reaper may reap the runtime before we asked for it: it keeps
	// statuses nobody waited for yet.
	proc, err := os.StartProcess(r.Path, argv, &os.ProcAttr{Dir: "/", Env: os.Environ(), Files: files})
	if err != nil {
		return fmt.Errorf("%s: %w", r.Name, err)
	}
	pid := proc.Pid
	_ = proc.Release()
	done := make(chan syscall.WaitStatus, 1)
	go func() { done <- r.reaper.wait(pid) }()
	var ws syscall.WaitStatus
	select {
	case ws = <-done:
	case <-ctx.Done():
		_ = unix.Kill(pid, unix.SIGKILL)
		<-done
		return ctx.Err()
	}
	if ws.Exited() && ws.ExitStatus() == 0 {
		return nil
	}
	msg := runtimeError(logFile)
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", runtime.ExitCode(ws))
	}
	// Docker's wording; the runtime's message names the runtime.
	err = fmt.Errorf("OCI runtime %s failed: %s", args[0], msg)
	switch {
	case strings.Contains(msg, "does not exist"), strings.Contains(msg, "not running"), strings.Contains(msg, "no such process"):
		return errdefs.With(errdefs.NotFound, err)
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"),
		strings.Contains(msg, "permission denied"):
		return errdefs.With(errdefs.InvalidArgument, err)
	}
	return err
}

// runtimeError returns the last error message of a runtime's JSON log.
func runtimeError(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var last string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &e) == nil && (e.Level == "error" || e.Level == "fatal") && e.Msg != "" {
			last = e.Msg
		} else if e.Msg == "" && len(bytes.TrimSpace(sc.Bytes())) > 0 {
			last = string(bytes.TrimSpace(sc.Bytes()))
		}
	}
	return last
}

func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("runtime pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("runtime pid file %s: %q", path, b)
	}
	return pid, nil
}

// reaper reaps every child of the shim (it is a subreaper) on SIGCHLD and
// hands each status to whoever waits for that pid. A status nobody waits
// for yet is kept (a process can end before its pid is known to us) and
// dropped after unclaimedTTL: orphans of the container we never wait for.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	exited  map[int]reaped
}

type reaped struct {
	ws syscall.WaitStatus
	at time.Time
}

const unclaimedTTL = time.Minute

func startReaper() *reaper {
	r := &reaper{waiters: map[int]chan syscall.WaitStatus{}, exited: map[int]reaped{}}
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGCHLD)
	go func() {
		for range ch {
			r.reapAll()
		}
	}()
	return r
}

func (r *reaper) reapAll() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		if ch, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			ch <- syscall.WaitStatus(ws)
		} else {
			now := time.Now()
			for p, e := range r.exited {
				if now.Sub(e.at) > unclaimedTTL {
					delete(r.exited, p)
				}
			}
			r.exited[pid] = reaped{syscall.WaitStatus(ws), now}
		}
		r.mu.Unlock()
	}
}

// wait returns pid's status once it was reaped.
func (r *reaper) wait(pid int) syscall.WaitStatus {
	r.mu.Lock()
	if e, ok := r.exited[pid]; ok {
		delete(r.exited, pid)
		r.mu.Unlock()
		return e.ws
	}
	ch := make(chan syscall.WaitStatus, 1)
	r.waiters[pid] = ch
	r.mu.Unlock()
	// A SIGCHLD may have been coalesced with one handled before we
	// registered: look once more.
	r.reapAll()
	return <-ch
}

// consoleSocket receives a pty master from the runtime (its
// --console-socket), in a short temporary directory of its own.
type consoleSocket struct {
	dir  string
	path string
	ln   *net.UnixListener
}

func newConsoleSocket() (*consoleSocket, error) {
	dir, err := os.MkdirTemp("", "berth-cs")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "s")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &consoleSocket{dir: dir, path: path, ln: ln}, nil
}

func (c *consoleSocket) receive() (*os.File, error) {
	_ = c.ln.SetDeadline(time.Now().Add(consoleTimeout))
	conn, err := c.ln.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(consoleTimeout))
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("console socket: no pty master received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("console socket: no pty master received")
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func (c *consoleSocket) close() {
	c.ln.Close()
	os.RemoveAll(c.dir)
}
