package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/berth-dev/berth/internal/runtime/initproc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// RunOpts are the options of run: create's, plus detach.
type RunOpts struct {
	CreateOpts
	Detach bool
}

// Run creates and starts container id. Detached, it returns once the
// program runs; otherwise it forwards signals (and the terminal), waits for
// the program, deletes the container and returns the exit status.
func (r *Runtime) Run(ctx context.Context, id string, o RunOpts) (int, error) {
	var relay *signalRelay
	if !o.Detach {
		relay = newSignalRelay()
		defer relay.stop()
	}
	co := o.CreateOpts
	co.saveAsync = true
	c, err := r.create(ctx, id, co)
	if err != nil {
		return -1, err
	}
	c.child.sync.F.Close()
	if o.Detach {
		if c.child.console != nil {
			c.child.console.Close()
		}
		err := r.start(c.p)
		if serr := c.waitSaved(); err == nil {
			err = serr
		}
		if err != nil {
			r.abandon(c)
			return -1, err
		}
		c.releaseNamespaces()
		_ = c.child.cmd.Process.Release()
		return 0, nil
	}
	relay.forward(c.child.pid)
	var term *terminal
	if c.child.console != nil {
		if term, err = attachTerminal(c.child.console, o.IO); err != nil {
			r.abandon(c)
			return -1, err
		}
		defer term.close()
	}
	initproc.Tracef("run: starting")
	err = r.start(c.p)
	if serr := c.waitSaved(); err == nil {
		err = serr
	}
	if err != nil {
		r.abandon(c)
		return -1, err
	}
	initproc.Tracef("run: started")
	status := waitStatus(c.child.cmd.Wait())
	initproc.Tracef("run: exited")
	if term != nil {
		term.drain()
	}
	defer initproc.Tracef("run: deleted")
	if err := r.deleteExited(c); err != nil {
		return status, err
	}
	return status, nil
}

// deleteExited deletes a container whose init this process just reaped,
// without re-reading what it already knows. With its own PID namespace the
// init's death took every process with it; otherwise the cgroup is swept.
func (r *Runtime) deleteExited(c *created) error {
	unlock, err := r.lock(c.p.ID)
	if err != nil {
		return err
	}
	defer unlock()
	// The init is reaped: its exit was cheap, the mount tree goes now.
	c.releaseNamespaces()
	ownPidNS := false
	for _, ns := range c.p.Config.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			ownPidNS = true
		}
	}
	if !ownPidNS {
		r.killAndWait(c.p)
	}
	return r.destroyWith(c.p, c.cg)
}

func (r *Runtime) abandon(c *created) {
	_ = c.waitSaved()
	c.child.kill()
	c.releaseNamespaces()
	_ = r.Delete(context.Background(), c.p.ID, true)
}

// waitStatus converts a Wait result into a shell-style exit status.
func waitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ee interface{ Sys() any }
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			if ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return ws.ExitStatus()
		}
	}
	return 255
}

// forwardSignals relays every signal the runtime receives to pid, as runc
// does for foreground containers. SIGCHLD, SIGURG (the Go scheduler's own)
// and SIGWINCH (handled by the terminal) stay here.
// signalRelay forwards every signal the runtime receives to the container
// process, as runc does for foreground containers. It starts listening
// before the container exists (signal.Notify for every signal costs about
// a millisecond, overlapped with create this way), queues what arrives
// early and delivers through a pidfd, so a late signal can never reach a
// recycled pid. SIGCHLD, SIGURG (the Go scheduler's own), SIGWINCH
// (handled by the terminal) and SIGPIPE stay here.
type signalRelay struct {
	ch     chan os.Signal
	target chan int
	done   chan struct{}
}

func newSignalRelay() *signalRelay {
	r := &signalRelay{ch: make(chan os.Signal, 32), target: make(chan int, 1), done: make(chan struct{})}
	go func() {
		signal.Notify(r.ch)
		var queued []syscall.Signal
		pidfd, pid := -1, 0
		defer func() {
			if pidfd >= 0 {
				unix.Close(pidfd)
			}
		}()
		for {
			select {
			case <-r.done:
				return
			case p := <-r.target:
				pid = p
				if fd, err := unix.PidfdOpen(p, 0); err == nil {
					pidfd = fd
				}
				for _, s := range queued {
					send(pidfd, pid, s)
				}
				queued = nil
			case s := <-r.ch:
				sig, ok := s.(syscall.Signal)
				if !ok || sig == unix.SIGCHLD || sig == unix.SIGURG || sig == unix.SIGWINCH || sig == unix.SIGPIPE {
					continue
				}
				if pid == 0 {
					queued = append(queued, sig)
					continue
				}
				send(pidfd, pid, sig)
			}
		}
	}()
	return r
}

func send(pidfd, pid int, sig syscall.Signal) {
	if pidfd >= 0 {
		_ = unix.PidfdSendSignal(pidfd, sig, nil, 0)
	} else {
		_ = unix.Kill(pid, sig)
	}
}

// forward starts delivering to pid.
func (r *signalRelay) forward(pid int) { r.target <- pid }

// stop ends the relay without making the caller wait for the signal loop
// to go idle (signal.Stop takes about 2 ms).
func (r *signalRelay) stop() {
	close(r.done)
	go signal.Stop(r.ch)
}

// terminal connects the runtime's stdio to a container's pty master.
type terminal struct {
	master  *os.File
	restore func()
	done    chan struct{}
	winch   chan os.Signal
}

// recvMaster reads the pty master fd sent over a console socket.
func recvMaster(sock *os.File) (*os.File, error) {
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, 0)
	if err != nil {
		return nil, fmt.Errorf("receive console: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, errors.New("receive console: no file descriptor")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, errors.New("receive console: no file descriptor")
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func attachTerminal(sock *os.File, stdio IO) (*terminal, error) {
	master, err := recvMaster(sock)
	sock.Close()
	if err != nil {
		return nil, err
	}
	in, out, _ := stdio.files()
	t := &terminal{master: master, restore: func() {}, done: make(chan struct{})}
	if ws, err := unix.IoctlGetWinsize(int(in.Fd()), unix.TIOCGWINSZ); err == nil {
		_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
		if old, err := unix.IoctlGetTermios(int(in.Fd()), unix.TCGETS); err == nil {
			raw := *old
			raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
			raw.Oflag &^= unix.OPOST
			raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
			raw.Cflag &^= unix.CSIZE | unix.PARENB
			raw.Cflag |= unix.CS8
			raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
			if unix.IoctlSetTermios(int(in.Fd()), unix.TCSETS, &raw) == nil {
				t.restore = func() { _ = unix.IoctlSetTermios(int(in.Fd()), unix.TCSETS, old) }
			}
		}
		t.winch = make(chan os.Signal, 1)
		signal.Notify(t.winch, unix.SIGWINCH)
		go func() {
			for range t.winch {
				if ws, err := unix.IoctlGetWinsize(int(in.Fd()), unix.TIOCGWINSZ); err == nil {
					_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
				}
			}
		}()
	}
	go func() { _, _ = io.Copy(master, in) }()
	go func() {
		_, _ = io.Copy(out, master)
		close(t.done)
	}()
	return t, nil
}

// drain waits for the output of an exited container to be copied: the
// master reads EIO once the last slave holder is gone.
func (t *terminal) drain() { <-t.done }

func (t *terminal) close() {
	if t.winch != nil {
		signal.Stop(t.winch)
	}
	t.restore()
	t.master.Close()
}

// ExecOpts are the options of exec.
type ExecOpts struct {
	ConsoleSocket string
	PidFile       string
	Detach        bool
	PreserveFDs   int
	IgnorePaused  bool
	IO            IO
}

// Exec runs process p inside running container id. It returns the exit
// status (0 when detached).
func (r *Runtime) Exec(ctx context.Context, id string, p *specs.Process, o ExecOpts) (int, error) {
	ch, consoleParent, err := r.startExec(ctx, id, p, o)
	if err != nil {
		return -1, err
	}
	fail := func(err error) (int, error) {
		ch.kill()
		if consoleParent != nil {
			consoleParent.Close()
		}
		return -1, err
	}
	if o.Detach {
		if consoleParent != nil {
			consoleParent.Close()
		}
		_ = ch.cmd.Process.Release()
		return 0, nil
	}
	relay := newSignalRelay()
	defer relay.stop()
	relay.forward(ch.pid)
	var term *terminal
	if consoleParent != nil {
		if term, err = attachTerminal(consoleParent, o.IO); err != nil {
			return fail(err)
		}
		defer term.close()
	}
	status := waitStatus(ch.cmd.Wait())
	if term != nil {
		term.drain()
	}
	return status, nil
}
