package shim

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	"github.com/berth-dev/berth/internal/sysmon"
	"golang.org/x/sys/unix"
)

// Spawn starts a shim that creates container o.ID from o.Bundle. It returns
// once the container is created (its init waits for Start) and the shim
// serves its socket. On failure nothing is left: no shim, no runtime
// state, no cgroup (and the state directory is removed if Spawn made it).
//
// The shim is started directly (fork/exec, new session, stdio on
// /dev/null; it makes the state directory and points its stderr at
// <StateDir>/shim.log itself, while the container is created, so no file is
// created on the caller's path) and reports readiness
// over an inherited socket, so no polling is involved. The caller's process
// reaps the shim if it exits first, without holding a thread; if the caller
// dies, the shim lives on (reparented) and Connect finds it.
func Spawn(ctx context.Context, o SpawnOpts) (*Client, error) {
	initproc.Tracef("spawn: begin")
	defer o.Prepared.Release() // a no-op once it was used
	if o.ID == "" || o.Bundle == "" || o.StateDir == "" {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "shim: id, bundle and state dir are required")
	}
	bin, err := shimBinary(o.Binary)
	if err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	stateDir, err := filepath.Abs(o.StateDir)
	if err != nil {
		return nil, err
	}
	_, statErr := os.Lstat(stateDir)
	preexisting := statErr == nil
	init := runtimeInit(bin, o.RuntimeInit)
	boot := bootConfig{
		ID: o.ID, Bundle: bundle, StateDir: stateDir, RuntimeRoot: o.RuntimeRoot, RuntimeInit: init,
		Stdin: o.Stdin, StdinOnce: o.StdinOnce, Log: o.Log, IdleTimeout: o.IdleTimeout, OCI: o.OCIRuntime,
		Start: o.Start,
	}
	if o.Start {
		boot.Attach = o.Attach
	}
	if o.OCIRuntime == nil && len(o.Spec) > 0 && len(o.Spec) <= maxFrame {
		boot.SpecLen = len(o.Spec)
	}
	if boot.RuntimeRoot == "" {
		boot.RuntimeRoot = runtime.DefaultRoot
	}

	env := shimEnv(o.Env)
	sh := o.Prepared.use(o.ID, bin, env)
	if sh == nil && o.WarmSpare {
		sh = takeSpare(bin, env)
	}
	if sh == nil {
		initproc.Tracef("spawn: starting shim")
		if sh, err = startShim(bin, env, []string{BinaryName, o.ID}); err != nil {
			return nil, err
		}
		initproc.Tracef("spawn: shim started")
	}
	parent, proc, shimPid, reaped := sh.parent, sh.proc, sh.pid, sh.reaped
	defer parent.Close()

	var resp response
	err = func() error {
		if dl, ok := ctx.Deadline(); ok {
			_ = parent.SetDeadline(dl)
		}
		stop := context.AfterFunc(ctx, func() { _ = parent.SetDeadline(time.Unix(1, 0)) })
		defer stop()
		var tail []byte
		if boot.SpecLen > 0 {
			tail = o.Spec
		}
		if err := writeFrameTail(parent, &boot, tail); err != nil {
			return err
		}
		return readFrame(parent, &resp)
	}()
	initproc.Tracef("spawn: shim answered")
	answered := err == nil
	if answered {
		err = resp.err()
	} else if cerr := ctxErr(ctx); cerr != nil {
		err = cerr
	} else {
		err = fmt.Errorf("shim for %s exited during create: %w%s", o.ID, err, logTail(stateDir))
	}
	if err != nil {
		// A shim that answered with an error has undone its work and is
		// exiting. One that did not answer (ctx ended, or it died) is told
		// by the closed socket to undo and exit (it deletes its container),
		// and is killed if it is stuck (its container is deleted here);
		// then the files it may have left go.
		parent.Close()
		select {
		case <-reaped:
		case <-time.After(10 * time.Second):
			_ = proc.Kill()
			<-reaped
			if o.OCIRuntime != nil {
				_ = o.OCIRuntime.ForceDelete(context.Background(), o.ID)
			} else if rt, rerr := runtime.New(boot.RuntimeRoot); rerr == nil {
				_ = rt.Delete(context.Background(), o.ID, true)
			}
		}
		if !answered {
			if !preexisting {
				_ = os.RemoveAll(stateDir)
			} else {
				_ = os.Remove(filepath.Join(stateDir, sockName))
				_ = os.Remove(filepath.Join(stateDir, pidName))
			}
		}
		return nil, err
	}
	if o.WarmSpare {
		refillSpare(bin, env, o.Spare)
	}
	cl := &Client{stateDir: stateDir, sock: filepath.Join(stateDir, sockName), pid: shimPid, preforked: resp.Preforked}
	if resp.Started {
		cl.spawnStarted, cl.startPid = true, resp.Pid
		if resp.StartErr != "" {
			cl.startErr = errdefs.Newf(errdefs.Class(resp.StartClass), "%s", resp.StartErr)
		}
	}
	if resp.Attached {
		// The boot connection carries the stream on (SpawnOpts.Attach):
		// a descriptor of its own, as parent is closed on return. (Should
		// that fail, the caller attaches anew, as to a running container.)
		if conn, err := net.FileConn(parent); err == nil {
			cl.spawnStream = conn
		}
	}
	return cl, nil
}

// shimEnv is a shim's environment: extra first (the first of duplicate
// variables wins), then PATH, GOMAXPROCS and the tracing variables.
func shimEnv(extra []string) []string {
	// One P: a shim does little at a time, and every P costs memory (its
	// own span caches, a GC worker).
	// No heap profiling (nothing reads it; each sampled allocation costs a
	// stack record and a page of the profile's hash table).
	// (extra comes first: the first of duplicate variables wins.)
	env := append(append([]string(nil), extra...), "PATH="+pathEnv(), "GOMAXPROCS=1", "GODEBUG=memprofilerate=0")
	if v := os.Getenv("BERTH_TRACE"); v != "" {
		// A daemon started with BERTH_TRACE traces its shims' phases too
		// (in each shim.log).
		env = append(env, "BERTH_TRACE="+v)
		if d := os.Getenv("BERTH_TRACE_DIR"); d != "" {
			env = append(env, "BERTH_TRACE_DIR="+d)
		}
	}
	if v := os.Getenv(sysmon.EnvSlack); v != "" {
		env = append(env, sysmon.EnvSlack+"="+v) // the shim's own sysmon
	}
	if v := os.Getenv("BERTH_SPARE_IDLE"); v != "" {
		env = append(env, "BERTH_SPARE_IDLE="+v) // idleSpare
	}
	if v := os.Getenv(initproc.EnvEarlyStart); v != "" {
		env = append(env, initproc.EnvEarlyStart+"="+v) // the init's MsgExec
	}
	return env
}

// started is a shim process waiting for its boot config on parent.
type started struct {
	bin    string
	env    []string
	proc   *os.Process
	pid    int
	parent *os.File // our end of the boot socket (non-blocking: deadlines work)
	reaped <-chan struct{}
	// pre is what a warm spare was told to pre-fork (SparePrefork), nil
	// if nothing.
	pre *preforkConfig
}

// startShim forks and executes a shim: new session, stdio on /dev/null,
// the boot socket on fd 3.
func startShim(bin string, env, argv []string) (*started, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	_ = unix.SetNonblock(fds[0], true)
	parent := os.NewFile(uintptr(fds[0]), "shim-boot")
	child := os.NewFile(uintptr(fds[1]), "shim-boot-child")
	defer child.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		parent.Close()
		return nil, err
	}
	defer devnull.Close()
	proc, err := os.StartProcess(bin, argv, &os.ProcAttr{
		Dir: "/", Env: env, Files: []*os.File{devnull, devnull, devnull, child},
		Sys: &syscall.SysProcAttr{Setsid: true},
	})
	if err != nil {
		parent.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	pid := proc.Pid // before reap, which releases proc
	return &started{bin: bin, env: env, proc: proc, pid: pid, parent: parent, reaped: reap(proc, pid)}, nil
}

// The warm spare (SpawnOpts.WarmSpare): one shim started ahead of time,
// blocked reading its boot config, so that the next Spawn skips the
// shim's exec and Go start-up. It exits when this process does (its boot
// socket reads EOF).
var (
	spareMu sync.Mutex
	spare   *started
	// refilling is set (and closed once done) from the moment a refill is
	// scheduled (it may be held: SparePrefork.Defer) until the next spare
	// has started (one at a time): ReleaseSpare and AwaitSpare wait for it.
	refilling chan struct{}
	// spareReleasing is set while ReleaseSpare runs: a held refill that runs
	// meanwhile starts nothing.
	spareReleasing bool
)

// SpareComing says whether the next spare is being started or its start
// is scheduled (held until the daemon is quiet, see SparePrefork.Defer).
func SpareComing() bool {
	spareMu.Lock()
	defer spareMu.Unlock()
	return refilling != nil
}

// AwaitSpare waits until the spare being started (if any) is there, at
// most d.
func AwaitSpare(d time.Duration) {
	spareMu.Lock()
	ch := refilling
	spareMu.Unlock()
	if ch == nil {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// takeSpare returns the spare if it was started for bin and env and is
// alive, else nil (a mismatched spare is let go).
func takeSpare(bin string, env []string) *started {
	spareMu.Lock()
	sp := spare
	spare = nil
	spareMu.Unlock()
	if sp == nil {
		return nil
	}
	select {
	case <-sp.reaped:
		sp.parent.Close()
		return nil
	default:
	}
	if sp.bin != bin || !slices.Equal(sp.env, env) {
		sp.parent.Close() // it reads EOF and exits
		return nil
	}
	if err := spareNormal(sp.pid); err != nil {
		// Not left at idle priority with a container: let it go.
		sp.parent.Close()
		return nil
	}
	return sp
}

// ReleaseSpare lets the warm spare shim (if any, and one being started)
// exit, and waits until it has: a spare that pre-forked an init has then
// removed it with its cgroups and runtime state.
func ReleaseSpare() {
	spareMu.Lock()
	inflight := refilling
	spareReleasing = true
	spareMu.Unlock()
	if inflight != nil {
		<-inflight
	}
	spareMu.Lock()
	sp := spare
	spare = nil
	spareReleasing = false
	spareMu.Unlock()
	if sp != nil {
		sp.parent.Close()
		<-sp.reaped
	}
}

func refillSpare(bin string, env []string, sp *SparePrefork) {
	spareMu.Lock()
	if spare != nil || refilling != nil {
		spareMu.Unlock()
		return
	}
	done := make(chan struct{})
	refilling = done
	spareMu.Unlock()
	run := func() { startSpare(done, bin, env, sp) }
	if sp != nil && sp.Defer != nil {
		sp.Defer(run)
		return
	}
	go run()
}

// startSpare starts the next spare (refillSpare scheduled it; done is its
// refilling channel, closed once it is done).
func startSpare(done chan struct{}, bin string, env []string, sp *SparePrefork) {
	defer func() {
		spareMu.Lock()
		refilling = nil
		spareMu.Unlock()
		close(done)
	}()
	spareMu.Lock()
	stop := spareReleasing
	spareMu.Unlock()
	if stop || (sp != nil && sp.Stopping != nil && sp.Stopping()) {
		return
	}
	sh, err := startShim(bin, env, []string{BinaryName})
	if err != nil {
		return
	}
	if sp != nil && sp.NewID != nil {
		// The spare pre-forks at once, for an id of its own (see
		// SparePrefork); ClaimSpare hands that id out.
		id := sp.NewID()
		pc := &preforkConfig{
			ID: id, RuntimeRoot: sp.RuntimeRoot, RuntimeInit: runtimeInit(bin, sp.RuntimeInit),
			CgroupsPath: filepath.Join(sp.CgroupParent, id), Namespaces: sp.Namespaces,
			Devices: sp.Devices, SetDevices: sp.SetDevices,
		}
		if pc.RuntimeRoot == "" {
			pc.RuntimeRoot = runtime.DefaultRoot
		}
		if err := writeFrame(sh.parent, &bootConfig{Prefork: pc}); err == nil {
			sh.pre = pc
		}
	}
	spareMu.Lock()
	defer spareMu.Unlock()
	if spare != nil {
		sh.parent.Close()
		return
	}
	spare = sh
}

// reap waits for a spawned shim in the background through a pidfd and the
// Go poller: a shim that exits while we run is not left a zombie, and no
// thread is held per shim (os.Process.Wait would block one).
func reap(proc *os.Process, pid int) <-chan struct{} {
	done := make(chan struct{})
	pidfd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		go func() { _, _ = proc.Wait(); close(done) }()
		return done
	}
	f := os.NewFile(uintptr(pidfd), "shim-pidfd")
	go func() {
		defer close(done)
		defer f.Close()
		raw, err := f.SyscallConn()
		if err == nil {
			err = raw.Read(func(fd uintptr) bool {
				var info unix.Siginfo
				werr := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG, nil)
				// Not done while the child runs: waitid leaves info zero.
				return werr != nil || info.Signo != 0
			})
		}
		if err != nil {
			_, _ = proc.Wait()
			return
		}
		_ = proc.Release()
	}()
	return done
}

// sockAddr returns an address for the socket name in dir, through
// /proc/self/fd when the path is too long for a sockaddr (release closes
// the directory descriptor that address needs).
func sockAddr(dir, name string) (addr string, release func(), err error) {
	path := filepath.Join(dir, name)
	if len(path) < 100 {
		return path, func() {}, nil
	}
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	return "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + name, func() { unix.Close(dfd) }, nil
}
