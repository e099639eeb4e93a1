package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroup"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// This file is the in-process API for a supervisor (berth-shim) that
// creates a container and stays the parent of its init, so it reaps it and
// learns its exit status, and that starts exec processes it also reaps.
// The command-line paths (Create, Run, Exec) release or wait for their
// children themselves; these handles leave that to the caller.

// Container is a container created by this process whose init is this
// process's child. Start, Wait and Delete act on it without re-reading its
// state; the state directory stays valid for other processes using the same
// root (State, Kill, Pause, Update, Exec).
type Container struct {
	r *Runtime
	c *created

	consoleOnce sync.Once
	master      *os.File
	consoleErr  error

	waitOnce sync.Once
	waited   chan struct{}
	ws       syscall.WaitStatus
	waitErr  error
}

// CreateContainer creates container id like Create, keeping the init as a
// child of this process: the caller must eventually Wait for it (and then
// Delete). With process.terminal and no ConsoleSocket, the pty master is
// kept for Console.
func (r *Runtime) CreateContainer(ctx context.Context, id string, o CreateOpts) (*Container, error) {
	c, err := r.create(ctx, id, o)
	if err != nil {
		return nil, err
	}
	c.child.sync.F.Close()
	return &Container{r: r, c: c, waited: make(chan struct{})}, nil
}

// ID returns the container's id.
func (c *Container) ID() string { return c.c.p.ID }

// Pid returns the host pid of the container's init.
func (c *Container) Pid() int { return c.c.child.pid }

// Spec returns the configuration the container was created with.
func (c *Container) Spec() *specs.Spec { return c.c.p.Config }

// Cgroup returns the container's cgroup manager (stats, OOM kill count).
func (c *Container) Cgroup() cgroup.Manager { return c.c.cg }

// Console returns the master side of the container's pty (terminal
// containers created without a ConsoleSocket), non-blocking, so reads and
// writes go through the Go poller. The first call receives it; later calls
// return the same file.
func (c *Container) Console() (*os.File, error) {
	c.consoleOnce.Do(func() {
		if c.c.child.console == nil {
			c.consoleErr = errdefs.Newf(errdefs.FailedPrecondition, "container %s has no console", c.ID())
			return
		}
		c.master, c.consoleErr = recvMasterNonblock(c.c.child.console)
		c.c.child.console.Close()
		c.c.child.console = nil
	})
	return c.master, c.consoleErr
}

// Start lets the init execute the container's program (see Runtime.Start).
func (c *Container) Start(ctx context.Context) error {
	if err := c.c.waitSaved(); err != nil {
		return err
	}
	return c.r.start(c.c.p)
}

// Signal sends sig to the init through its pidfd (never to a recycled
// pid); it fails once the init was reaped.
func (c *Container) Signal(sig syscall.Signal) error { return c.c.child.cmd.Process.Signal(sig) }

// Wait reaps the init and returns its wait status. It may be called from
// several goroutines; all get the same result.
func (c *Container) Wait() (syscall.WaitStatus, error) {
	c.waitOnce.Do(func() {
		defer close(c.waited)
		err := c.c.child.cmd.Wait()
		if ps := c.c.child.cmd.ProcessState; ps != nil {
			if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
				c.ws = ws
				return
			}
		}
		c.waitErr = err
	})
	return c.ws, c.waitErr
}

// Delete removes the container: a still living init is killed and reaped
// first; then what is left of the container's processes, its cgroups and
// its state directory go, and the poststop hooks run.
func (c *Container) Delete(ctx context.Context) error {
	select {
	case <-c.waited:
	default:
		_ = c.c.child.cmd.Process.Signal(unix.SIGKILL)
		_, _ = c.Wait()
	}
	if c.c.child.console != nil {
		c.c.child.console.Close()
	}
	return c.r.deleteExited(c.c)
}

// ExitCode converts a wait status to a shell exit code: the status, or
// 128+signal for a process killed by a signal (Docker's rule).
func ExitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// Process is an exec process started by StartExec, a child of this
// process: the caller must Wait for it.
type Process struct {
	ch *child

	consoleOnce sync.Once
	consoleSock *os.File
	master      *os.File
	consoleErr  error

	waitOnce sync.Once
	ws       syscall.WaitStatus
	waitErr  error
}

// StartExec starts p inside running container id with o's stdio (or, with
// p.Terminal and no ConsoleSocket, a pty whose master Console returns) and
// returns once the program was executed. o.Detach is ignored: the caller
// owns the process.
func (r *Runtime) StartExec(ctx context.Context, id string, p *specs.Process, o ExecOpts) (*Process, error) {
	ch, consoleParent, err := r.startExec(ctx, id, p, o)
	if err != nil {
		return nil, err
	}
	return &Process{ch: ch, consoleSock: consoleParent}, nil
}

// Pid returns the host pid of the process.
func (p *Process) Pid() int { return p.ch.pid }

// Console returns the non-blocking master side of the process's pty.
func (p *Process) Console() (*os.File, error) {
	p.consoleOnce.Do(func() {
		if p.consoleSock == nil {
			p.consoleErr = errdefs.Newf(errdefs.FailedPrecondition, "process %d has no console", p.ch.pid)
			return
		}
		p.master, p.consoleErr = recvMasterNonblock(p.consoleSock)
		p.consoleSock.Close()
		p.consoleSock = nil
	})
	return p.master, p.consoleErr
}

// Signal sends sig to the process (through its pidfd: never to a recycled
// pid). It fails once the process was reaped.
func (p *Process) Signal(sig syscall.Signal) error { return p.ch.cmd.Process.Signal(sig) }

// Wait reaps the process and returns its wait status; concurrent callers
// all get the same result.
func (p *Process) Wait() (syscall.WaitStatus, error) {
	p.waitOnce.Do(func() {
		err := p.ch.cmd.Wait()
		if ps := p.ch.cmd.ProcessState; ps != nil {
			if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
				p.ws = ws
				return
			}
		}
		p.waitErr = err
	})
	return p.ws, p.waitErr
}

// recvMasterNonblock receives a pty master from a console socket and makes
// it non-blocking before wrapping it, so that os.File registers it with the
// poller instead of parking a thread in read(2).
func recvMasterNonblock(sock *os.File) (*os.File, error) {
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	raw, err := sock.SyscallConn()
	if err != nil {
		return nil, err
	}
	var oobn int
	var rerr error
	if err := raw.Control(func(fd uintptr) {
		_, oobn, _, _, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
	}); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("receive console: %w", rerr)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, errors.New("receive console: no file descriptor")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, errors.New("receive console: no file descriptor")
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("console: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// startExec is the part of Exec up to the successful execve of the
// process: it returns the started child and, for a terminal without a
// console socket, the parent end of the internal console socket.
func (r *Runtime) startExec(ctx context.Context, id string, p *specs.Process, o ExecOpts) (*child, *os.File, error) {
	st, err := r.load(id)
	if err != nil {
		return nil, nil, err
	}
	switch status := r.status(st); status {
	case StatusRunning, StatusCreated:
	case StatusPaused:
		if !o.IgnorePaused {
			return nil, nil, errdefs.Newf(errdefs.Conflict, "cannot exec in a paused container (use --ignore-paused to override)")
		}
	default:
		return nil, nil, errdefs.Newf(errdefs.Conflict, "cannot exec in a stopped container")
	}
	if p == nil || len(p.Args) == 0 {
		return nil, nil, errdefs.Newf(errdefs.InvalidArgument, "process args are empty")
	}
	var nss []specs.LinuxNamespace
	for _, ns := range st.Config.Linux.Namespaces {
		nss = append(nss, specs.LinuxNamespace{Type: ns.Type, Path: st.NamespacePaths[ns.Type]})
	}
	plan, err := planNamespaces(nss)
	if err != nil {
		return nil, nil, err
	}
	var consoleConn, consoleParent *os.File
	if p.Terminal {
		if consoleConn, consoleParent, err = consoleSocket(o.ConsoleSocket); err != nil {
			return nil, nil, err
		}
		defer consoleConn.Close()
	}
	so := spawnOpts{plan: plan, spec: st.Config, preserve: o.PreserveFDs, io: o.IO, consoleConn: consoleConn}
	// Joined by the child at start, unless it becomes a user namespace's
	// root first (joined in the constructor after the cgroups, so fine).
	childJoins := len(st.CgroupPaths) > 0
	if childJoins {
		so.cgroupPaths = st.CgroupPaths
	}
	ch, cfg, err := r.spawn(so)
	if err != nil {
		if consoleParent != nil {
			consoleParent.Close()
		}
		return nil, nil, err
	}
	fail := func(err error) (*child, *os.File, error) {
		ch.kill()
		if consoleParent != nil {
			consoleParent.Close()
		}
		return nil, nil, err
	}
	if !childJoins && len(st.CgroupPaths) > 0 {
		m, err := cgroup.Load(st.CgroupPaths)
		if err != nil {
			return fail(err)
		}
		if err := m.Apply(ch.pid); err != nil {
			return fail(fmt.Errorf("join container cgroup: %w", err))
		}
	}
	cfg.Mode, cfg.ID, cfg.Bundle, cfg.Spec, cfg.Process, cfg.HostPid = initproc.ModeExec, id, st.Bundle, forInit(st.Config), p, ch.pid
	if err := ch.sync.Send(initproc.Msg{Type: initproc.MsgConfig, Config: cfg}); err != nil {
		return fail(err)
	}
	// EOF means execve succeeded (the sync socket is close-on-exec).
	if err := ch.sync.WaitExec(seccompForwarder(st.Config, id, st.Bundle, st.InitPid, ch.pid)); err != nil {
		return fail(err)
	}
	ch.sync.F.Close()
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, ch.pid); err != nil {
			return fail(err)
		}
	}
	return ch, consoleParent, nil
}
