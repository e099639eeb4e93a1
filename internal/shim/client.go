package shim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logger"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// BinaryName is the shim's executable, looked for beside the running
// binary, then in $PATH.
const BinaryName = "berth-shim"

// DefaultIdleTimeout is how long a shim stays up after its container
// exited when nobody talks to it.
const DefaultIdleTimeout = 30 * time.Second

// SpawnOpts describe the container a new shim creates and serves.
type SpawnOpts struct {
	Binary      string // path of berth-shim (default: beside os.Executable(), then $PATH)
	ID          string
	Bundle      string // dir with config.json; the rootfs is already mounted at the spec's root.path
	StateDir    string // the shim's own dir (under berthd's exec root): socket, pid file, exit file, shim log
	RuntimeRoot string // root of berth's runtime state (berthd uses the runtime library on it too)
	Stdin       bool   // OpenStdin: keep a stdin pipe (or pty input) for attach
	StdinOnce   bool   // close the container's stdin when the first attached client's stdin ends
	Log         logger.Config
	Env         []string // extra env for the shim process (e.g. BERTH_TRACE=1)

	// IdleTimeout is how long the shim lives on after the container
	// exited while no client talks to it (default DefaultIdleTimeout;
	// negative: until Shutdown).
	IdleTimeout time.Duration
	// RuntimeInit is the container init binary (default:
	// berth-runtime-init beside the shim binary).
	RuntimeInit string
	// WarmSpare keeps one shim process started ahead of time: this Spawn
	// takes the spare if one is waiting (same Binary and Env) and starts
	// the next one in the background once it is done, which takes the
	// shim's exec and Go start-up (about 2 ms) off the path of the next
	// Spawn. The spare is an idle berth-shim without a container id in
	// its argv; it exits when the calling process exits.
	WarmSpare bool
	// OCIRuntime, when set, is the external OCI runtime (runc) the shim
	// creates and drives the container with; nil: berth's own runtime.
	OCIRuntime *OCIRuntime
	// Prepared is the shim Prepare started for this container (Spawn
	// takes it over: it uses it, or releases it if it was prepared for
	// another container, binary or environment).
	Prepared *Prepared
	// Start has the shim start the container as soon as it is created,
	// answering both at once: one round trip less on the path of a start
	// (Client.SpawnStarted has the result). Only for a caller with no
	// attach to register before the program runs.
	Start bool
	// Attach, with Start, registers an attach before the start, on the
	// connection Spawn used to hand the shim its config: the stream of a
	// caller's only early attacher without a connection and a round
	// trip of its own (Client.SpawnStream returns it).
	Attach *AttachOpts
	// Spec, if set, is what Bundle's config.json holds (the caller
	// wrote it): the shim's create parses these bytes instead of reading
	// the file (which stays for whoever reads it later).
	Spec []byte
	// Spare, with WarmSpare, has the next warm spare pre-fork a
	// container init for an id of its own as soon as it starts (see
	// SparePrefork and ClaimSpare); nil: the spare only waits.
	Spare *SparePrefork
}

// Client talks to one shim. It holds no connection: every call opens its
// own, so it is safe for concurrent use and survives nothing but the shim.
type Client struct {
	stateDir  string
	sock      string
	pid       int
	preforked bool
	// The start done by Spawn (SpawnOpts.Start).
	spawnStarted bool
	startPid     int
	startErr     error
	spawnStream  net.Conn // SpawnOpts.Attach's stream
}

// ShimPid returns the shim process's pid.
func (c *Client) ShimPid() int { return c.pid }

// StateDir returns the shim's state directory.
func (c *Client) StateDir() string { return c.stateDir }

// ctxErr is ctx.Err(), or DeadlineExceeded once the deadline passed: a
// socket deadline set from ctx can fire before ctx itself is done.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func pathEnv() string {
	if p := os.Getenv("PATH"); p != "" {
		return p
	}
	return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

func shimBinary(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	if exe, err := os.Executable(); err == nil {
		cand := filepath.Join(filepath.Dir(exe), BinaryName)
		if st, err := os.Stat(cand); err == nil && st.Mode().IsRegular() {
			return cand, nil
		}
	}
	p, err := exec.LookPath(BinaryName)
	if err != nil {
		return "", errdefs.Newf(errdefs.NotFound, "shim binary %s: not beside the daemon nor in $PATH", BinaryName)
	}
	return p, nil
}

// logTail returns the end of the shim's log, for an error message.
func logTail(stateDir string) string {
	b, err := os.ReadFile(filepath.Join(stateDir, logName))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 512 {
		b = b[len(b)-512:]
	}
	return ": " + strings.TrimSpace(string(b))
}

// Connect re-attaches to the shim serving stateDir (after berthd
// restarted). errdefs.NotFound when no live shim answers there.
func Connect(ctx context.Context, stateDir string) (*Client, error) {
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, err
	}
	c := &Client{stateDir: abs, sock: filepath.Join(abs, sockName)}
	resp, err := c.call(ctx, &request{Op: opPing})
	if err != nil {
		return nil, err
	}
	c.pid = resp.Pid
	return c, nil
}

// Close releases the client. It holds no resources; streams returned by
// Attach and ExecStart stay open until their callers close them.
func (c *Client) Close() error { return nil }

// dial connects to the shim's socket, through /proc/self/fd when the path
// is too long for a sockaddr.
func (c *Client) dial(ctx context.Context) (*net.UnixConn, error) {
	path, release, err := sockAddr(c.stateDir, sockName)
	if err != nil {
		return nil, notRunning(c.stateDir, err)
	}
	defer release()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, notRunning(c.stateDir, err)
	}
	return conn.(*net.UnixConn), nil
}

func notRunning(dir string, err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, os.ErrNotExist) {
		return errdefs.Newf(errdefs.NotFound, "no shim running in %s", dir)
	}
	return fmt.Errorf("connect to shim in %s: %w", dir, err)
}

// open sends req on a new connection and reads the response; ctx bounds
// both. The connection stays open (for a stream) unless an error is
// returned.
func (c *Client) open(ctx context.Context, req *request) (*net.UnixConn, *response, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	var resp response
	err = writeFrame(conn, req)
	if err == nil {
		err = readFrame(conn, &resp)
	}
	stopped := stop()
	if err != nil || !stopped {
		conn.Close()
		if cerr := ctxErr(ctx); cerr != nil {
			return nil, nil, cerr
		}
		if err == nil {
			err = context.Canceled
		}
		return nil, nil, fmt.Errorf("shim %s: %s: %w", c.stateDir, req.Op, err)
	}
	_ = conn.SetDeadline(time.Time{})
	if err := resp.err(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, &resp, nil
}

// call is a request/response exchange.
func (c *Client) call(ctx context.Context, req *request) (*response, error) {
	conn, resp, err := c.open(ctx, req)
	if err != nil {
		return nil, err
	}
	conn.Close()
	return resp, nil
}

// Start starts the created container's program and returns its pid.
func (c *Client) Start(ctx context.Context) (int, error) {
	resp, err := c.call(ctx, &request{Op: opStart})
	if err != nil {
		return 0, err
	}
	return resp.Pid, nil
}

// State is the container's state as the shim sees it.
type State struct {
	Pid       int
	Status    string // created|running|stopped
	StartedAt time.Time
	Exit      *Exit // set once stopped
}

// Status values of State.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusStopped = "stopped"
)

// State returns the container's state.
func (c *Client) State(ctx context.Context) (*State, error) {
	resp, err := c.call(ctx, &request{Op: opState})
	if err != nil {
		return nil, err
	}
	st := &State{Pid: resp.Pid, Status: resp.Status, Exit: resp.Exit}
	if resp.StartedAt != nil {
		st.StartedAt = *resp.StartedAt
	}
	return st, nil
}

// Wait blocks until the container's init exited (at once if it has) and
// returns how.
func (c *Client) Wait(ctx context.Context) (*Exit, error) {
	resp, err := c.call(ctx, &request{Op: opWait})
	if err != nil {
		return nil, err
	}
	if resp.Exit == nil {
		return nil, fmt.Errorf("shim %s: wait: no exit in answer", c.stateDir)
	}
	return resp.Exit, nil
}

// AttachOpts select the streams of an attach or exec.
type AttachOpts struct{ Stdin, Stdout, Stderr bool }

// Attach returns a connection carrying the container's output from now on:
// framed as Docker's multiplexed stream without a terminal (8-byte header:
// stream 1 stdout / 2 stderr, three zero bytes, big-endian uint32 length),
// raw bytes with one. Bytes written to it go to the container's stdin (with
// o.Stdin, for a container spawned with Stdin); CloseWrite ends this
// client's stdin (and closes the container's with StdinOnce). The shim
// closes it after the container exited and its output was drained; called
// after the exit, the stream is empty. ctx bounds only the handshake.
// Attached before Start, it loses nothing.
func (c *Client) Attach(ctx context.Context, o AttachOpts) (net.Conn, error) {
	conn, _, err := c.open(ctx, &request{Op: opAttach, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// AttachStart is Attach followed, once the stream is registered, by the
// container's start, in one round trip: the last early attacher's stream
// and the start. started says whether the shim got to start it (false:
// the attach failed, err says why, and Start is still to be called); pid
// and startErr are then the start's result, as Start returns them.
func (c *Client) AttachStart(ctx context.Context, o AttachOpts) (conn net.Conn, started bool, pid int, startErr error, err error) {
	uc, resp, err := c.open(ctx, &request{Op: opAttach, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, Start: true})
	if err != nil {
		return nil, false, 0, nil, err
	}
	if !resp.Started {
		// A shim that does not know the flag: attached only.
		return uc, false, 0, nil, nil
	}
	if resp.StartErr != "" {
		startErr = errdefs.Newf(errdefs.Class(resp.StartClass), "%s", resp.StartErr)
	}
	return uc, true, resp.Pid, startErr, nil
}

// Resize sets the window size of the container's pty (execID "") or of an
// exec's. It does nothing for a process without a terminal.
func (c *Client) Resize(ctx context.Context, execID string, height, width uint16) error {
	_, err := c.call(ctx, &request{Op: opResize, ID: execID, Height: height, Width: width})
	return err
}

// Kill sends sig to the container's init, or with all to all its
// processes. errdefs.Conflict when the container is not running.
func (c *Client) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	_, err := c.call(ctx, &request{Op: opKill, Signal: int(sig), All: all})
	return err
}

// KillExec sends sig to exec id's process. errdefs.Conflict when it is
// not running.
func (c *Client) KillExec(ctx context.Context, id string, sig syscall.Signal) error {
	_, err := c.call(ctx, &request{Op: opKill, ID: id, Signal: int(sig)})
	return err
}

// Exec registers exec id (Docker's exec create): process p, with a
// terminal if p.Terminal, and the streams o that ExecStart will carry.
func (c *Client) Exec(ctx context.Context, id string, p *specs.Process, o AttachOpts) error {
	_, err := c.call(ctx, &request{Op: opExec, ID: id, Process: p, Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr})
	return err
}

// ExecStart starts exec id and returns its stream (as Attach's; nil when
// detached). The shim closes the stream once the process exited and its
// output was drained; the exec's output is not logged.
func (c *Client) ExecStart(ctx context.Context, id string, detach bool) (net.Conn, error) {
	conn, _, err := c.open(ctx, &request{Op: opExecStart, ID: id, Detach: detach})
	if err != nil {
		return nil, err
	}
	if detach {
		conn.Close()
		return nil, nil
	}
	return conn, nil
}

// ExecState returns an exec's pid, whether it runs, and its exit code
// (-1 until it exited).
func (c *Client) ExecState(ctx context.Context, id string) (pid int, running bool, exitCode int, err error) {
	resp, err := c.call(ctx, &request{Op: opExecState, ID: id})
	if err != nil {
		return 0, false, -1, err
	}
	return resp.Pid, resp.Running, resp.Code, nil
}

// ExecWait blocks until exec id exited and returns its exit code.
// errdefs.Conflict if it was never started.
func (c *Client) ExecWait(ctx context.Context, id string) (int, error) {
	resp, err := c.call(ctx, &request{Op: opExecWait, ID: id})
	if err != nil {
		return -1, err
	}
	return resp.Code, nil
}

// CloseStdin closes the container's stdin (no-op with a terminal).
func (c *Client) CloseStdin(ctx context.Context) error {
	_, err := c.call(ctx, &request{Op: opCloseStdin})
	return err
}

// Shutdown makes the shim finish: a container still running is killed
// (SIGKILL to all its processes) and waited for, its runtime state (cgroup,
// state dir) is deleted, and the shim exits (right after answering),
// leaving in its state directory only the exit record and its log. Safe to
// call when the shim is already gone.
func (c *Client) Shutdown(ctx context.Context) error {
	conn, _, err := c.open(ctx, &request{Op: opShutdown})
	if err != nil {
		if errdefs.Is(err, errdefs.NotFound) {
			return nil
		}
		if ctxErr(ctx) == nil {
			// Cut off without an answer: fine if the shim is gone (it
			// reached its idle timeout meanwhile).
			if c2, derr := c.dial(ctx); derr != nil && errdefs.Is(derr, errdefs.NotFound) {
				return nil
			} else if derr == nil {
				c2.Close()
			}
		}
		return err
	}
	// The answer comes once the container and its runtime state are gone
	// and the socket is removed; the process exits right after.
	conn.Close()
	return nil
}

// SpawnStarted reports whether Spawn started the container too
// (SpawnOpts.Start), and how: the init's pid, or the start's error (as
// Start would return it; the shim is then still there to be shut down).
func (c *Client) SpawnStarted() (started bool, pid int, err error) {
	return c.spawnStarted, c.startPid, c.startErr
}

// SpawnStream returns the stream of the attach Spawn registered
// (SpawnOpts.Attach), as Attach returns one, once; nil if there was none
// (or no client: Spawn failed).
func (c *Client) SpawnStream() net.Conn {
	if c == nil {
		return nil
	}
	conn := c.spawnStream
	c.spawnStream = nil
	return conn
}
