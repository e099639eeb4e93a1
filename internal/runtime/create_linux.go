package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/ocispec"
	"github.com/berth-dev/berth/internal/runtime/cgroup"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	"github.com/berth-dev/berth/internal/runtime/seccomp"
	"github.com/berth-dev/berth/internal/runtime/seccomp/bpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const startSock = "start.sock"

// IO is the stdio a container or exec process gets. Nil means the
// runtime's own.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

func (o IO) files() (in, out, errf *os.File) {
	in, out, errf = o.Stdin, o.Stdout, o.Stderr
	if in == nil {
		in = os.Stdin
	}
	if out == nil {
		out = os.Stdout
	}
	if errf == nil {
		errf = os.Stderr
	}
	return
}

// CreateOpts are the options of create and run.
type CreateOpts struct {
	Bundle        string
	ConsoleSocket string // path of a unix socket that receives the pty master
	PidFile       string
	NoPivot       bool
	PreserveFDs   int
	IO            IO
	// Preforked, if set, is an init cloned ahead for this container
	// (Runtime.Prefork): create uses it when it fits the configuration
	// and releases it otherwise.
	Preforked *Preforked
	// Config, if set, is the bundle's config.json as the caller has it
	// (berthd hands the shim the bytes it wrote): create parses it
	// instead of reading the file, which must still hold the same for
	// whoever reads it later.
	Config []byte

	saveAsync bool
}

// nsJoin is one namespace to enter by path.
type nsJoin struct {
	typ  specs.LinuxNamespaceType
	path string
}

var nsFlag = map[specs.LinuxNamespaceType]int{
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace: unix.CLONE_NEWNS, specs.IPCNamespace: unix.CLONE_NEWIPC,
	specs.UTSNamespace: unix.CLONE_NEWUTS, specs.UserNamespace: unix.CLONE_NEWUSER,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
}

// procNSName is the /proc/<pid>/ns entry of each type.
var procNSName = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

// nsPlan says how the child gets each namespace. Joins of user, mount and
// time namespaces need a single-threaded process and happen in the nsenter
// constructor; the others are entered by the parent on a dedicated OS thread
// just before fork, so the child inherits them.
type nsPlan struct {
	cloneFlags   uintptr
	unshareFlags int
	threadJoins  []nsJoin
	ctorJoins    []nsJoin
	newMount     bool
	joinMount    bool
	newCgroup    bool
	newTime      bool
	userns       bool
}

func planNamespaces(nss []specs.LinuxNamespace) (nsPlan, error) {
	var pl nsPlan
	joinUser := false
	for _, ns := range nss {
		if ns.Type == specs.UserNamespace && ns.Path != "" {
			joinUser = true
		}
	}
	for _, ns := range nss {
		flag, ok := nsFlag[ns.Type]
		if !ok {
			return pl, errdefs.Newf(errdefs.InvalidArgument, "unknown namespace type %q", ns.Type)
		}
		if ns.Type == specs.UserNamespace {
			pl.userns = true
		}
		if ns.Path != "" {
			j := nsJoin{ns.Type, ns.Path}
			switch ns.Type {
			case specs.UserNamespace, specs.MountNamespace, specs.TimeNamespace:
				pl.ctorJoins = append(pl.ctorJoins, j)
			default:
				pl.threadJoins = append(pl.threadJoins, j)
			}
			if ns.Type == specs.MountNamespace {
				pl.joinMount = true
			}
			continue
		}
		switch ns.Type {
		case specs.MountNamespace:
			pl.newMount = true
		case specs.CgroupNamespace:
			pl.newCgroup = true
			continue
		case specs.TimeNamespace:
			pl.newTime = true
			continue
		}
		if joinUser {
			if ns.Type == specs.PIDNamespace {
				return pl, errdefs.Newf(errdefs.NotImplemented, "a new pid namespace inside a joined user namespace is not supported")
			}
			// Created after the join, so the joined user namespace owns it.
			pl.unshareFlags |= flag
			continue
		}
		pl.cloneFlags |= uintptr(flag)
	}
	// The user namespace must be joined first: the other joins then happen
	// with its capabilities.
	for i, j := range pl.ctorJoins {
		if j.typ == specs.UserNamespace && i != 0 {
			pl.ctorJoins[0], pl.ctorJoins[i] = pl.ctorJoins[i], pl.ctorJoins[0]
		}
	}
	return pl, nil
}

func (pl nsPlan) env() []string {
	var env []string
	if len(pl.ctorJoins) > 0 {
		parts := make([]string, 0, len(pl.ctorJoins))
		for _, j := range pl.ctorJoins {
			parts = append(parts, procNSName[j.typ]+":"+j.path)
		}
		env = append(env, "_BERTH_NSENTER="+strings.Join(parts, ","))
	}
	if pl.unshareFlags != 0 {
		env = append(env, "_BERTH_UNSHARE="+strconv.Itoa(pl.unshareFlags))
	}
	return env
}

// startIn starts cmd after entering the thread-joinable namespaces on a
// locked OS thread that is never unlocked, so the Go runtime discards it
// (and its namespaces) when the goroutine ends.
func startIn(cmd *exec.Cmd, joins []nsJoin) error {
	if len(joins) == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		for _, j := range joins {
			fd, err := unix.Open(j.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- fmt.Errorf("open %s namespace %s: %w", j.typ, j.path, err)
				return
			}
			err = unix.Setns(fd, nsFlag[j.typ])
			unix.Close(fd)
			if err != nil {
				errc <- fmt.Errorf("join %s namespace %s: %w", j.typ, j.path, err)
				return
			}
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

var (
	sealedOnce sync.Once
	sealedExe  *os.File // never closed: shared by every spawn
)

// sealedBinary is per process: InitPath must not change after the first
// container was started.

// sealedBinary returns the runtime binary behind a detached read-only,
// nosuid bind mount, so a container that gets hold of /proc/<pid>/exe can
// never write to the host's binary; nil if the kernel cannot do it.
func (r *Runtime) sealedBinary() *os.File {
	sealedOnce.Do(func() {
		exe, err := filepath.EvalSymlinks(r.InitPath)
		if err != nil {
			return
		}
		fd, err := unix.OpenTree(unix.AT_FDCWD, exe, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		if err != nil {
			r.Log.Debug("cannot seal runtime binary", "err", err)
			return
		}
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
			unix.Close(fd)
			return
		}
		sealedExe = os.NewFile(uintptr(fd), "berth-runtime (sealed)")
	})
	return sealedExe
}

// child is a started init or exec process the parent still talks to.
type child struct {
	cmd     *exec.Cmd
	sync    initproc.Conn
	console *os.File // parent end of an internal console socketpair
	pid     int
}

type spawnOpts struct {
	plan        nsPlan
	spec        *specs.Spec
	preserve    int
	io          IO
	listener    *os.File // start listener (init only)
	consoleConn *os.File // connected console socket for the child
	userMaps    bool
	// cgroupPaths, when set, are joined by the child as it starts.
	cgroupPaths map[string]string
	// seccomp is spec.Linux.Seccomp compiled, when the caller already has
	// it; spawn compiles (or finds in the cache) what is missing.
	seccomp *bpf.Program
	// preforked: the config comes later (Prefork); the init warms its
	// JSON decoding meanwhile (initproc.EnvPreforked).
	preforked bool
}

// spawn starts the runtime binary as "init" with the requested namespaces
// and descriptors: 0-2 stdio, 3..3+preserve-1 preserved, then sync, start
// listener and console socket.
func (r *Runtime) spawn(o spawnOpts) (*child, *initproc.Config, error) {
	prog := o.seccomp
	if prog == nil && o.spec != nil && o.spec.Linux != nil && o.spec.Linux.Seccomp != nil {
		var err error
		if prog, err = r.seccompProgram(o.spec.Linux.Seccomp); err != nil {
			return nil, nil, err
		}
	}
	parentSync, childSync, err := initproc.NewPair()
	if err != nil {
		return nil, nil, err
	}
	defer childSync.Close()
	in, out, errf := o.io.files()
	cmd := &exec.Cmd{Args: []string{"berth-runtime", "init"}, Stdin: in, Stdout: out, Stderr: errf}
	for i := 0; i < o.preserve; i++ {
		cmd.ExtraFiles = append(cmd.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	cfg := &initproc.Config{PreserveFDs: o.preserve, StartFD: -1, ConsoleFD: -1, Trace: initproc.TraceOn, Seccomp: prog}
	syncFD := 3 + len(cmd.ExtraFiles)
	cmd.ExtraFiles = append(cmd.ExtraFiles, childSync)
	if o.listener != nil {
		cfg.StartFD = 3 + len(cmd.ExtraFiles)
		cmd.ExtraFiles = append(cmd.ExtraFiles, o.listener)
	}
	if o.consoleConn != nil {
		cfg.ConsoleFD = 3 + len(cmd.ExtraFiles)
		cmd.ExtraFiles = append(cmd.ExtraFiles, o.consoleConn)
	}
	// The binary is executed through its descriptor in the child's own
	// table (the last one), so no descriptor is moved to a high number:
	// growing the fd table of a threaded process costs an RCU grace period.
	cmd.Path = r.InitPath
	if exe := r.sealedBinary(); exe != nil {
		cmd.Path = "/proc/self/fd/" + strconv.Itoa(3+len(cmd.ExtraFiles))
		cmd.ExtraFiles = append(cmd.ExtraFiles, exe)
	}
	cmd.Env = append([]string{initproc.EnvSyncFD + "=" + strconv.Itoa(syncFD)}, o.plan.env()...)
	if o.preforked {
		cmd.Env = append(cmd.Env, initproc.EnvPreforked+"=1")
		if os.Getenv("BERTH_NO_STAGE") != "" {
			cmd.Env = append(cmd.Env, initproc.EnvNoStage+"=1")
		}
		if os.Getenv("BERTH_STAGE_WAIT") != "" {
			cmd.Env = append(cmd.Env, initproc.EnvStageWait+"=1")
		}
	}
	if initproc.TraceOn {
		v := "1"
		if d := os.Getenv("BERTH_TRACE_DIR"); d != "" {
			v = d
		}
		cmd.Env = append(cmd.Env, "BERTH_TRACE_INIT="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: o.plan.cloneFlags}
	// Joining cgroups: v2 at clone time (CLONE_INTO_CGROUP), v1 by the child
	// itself in the nsenter constructor while it is single-threaded. Both
	// avoid the expensive write lock of moving a running process.
	if o.cgroupPaths != nil {
		var tasks []string
		for ctrl, dir := range o.cgroupPaths {
			if ctrl == "" {
				cgfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					parentSync.Close()
					return nil, nil, fmt.Errorf("open cgroup %s: %w", dir, err)
				}
				defer unix.Close(cgfd)
				cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cgfd
				continue
			}
			tasks = append(tasks, filepath.Join(dir, "tasks"))
		}
		sort.Strings(tasks)
		if len(tasks) > 0 {
			cmd.Env = append(cmd.Env, "_BERTH_CGROUP_TASKS="+strings.Join(tasks, "\n"))
		}
	}
	if o.userMaps && o.spec.Linux != nil {
		for _, m := range o.spec.Linux.UIDMappings {
			cmd.SysProcAttr.UidMappings = append(cmd.SysProcAttr.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range o.spec.Linux.GIDMappings {
			cmd.SysProcAttr.GidMappings = append(cmd.SysProcAttr.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		cmd.SysProcAttr.GidMappingsEnableSetgroups = true
		// Writing the maps does not change our credentials: become the
		// namespace's root (kuid = mapped 0) before execve, or the exec
		// would drop every capability in the new namespace.
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	if err := startIn(cmd, o.plan.threadJoins); err != nil {
		parentSync.Close()
		return nil, nil, fmt.Errorf("start container init: %w", err)
	}
	initproc.Tracef("spawn: started")
	return &child{cmd: cmd, sync: initproc.Conn{F: parentSync}, pid: cmd.Process.Pid}, cfg, nil
}

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c.sync.F.Close()
}

// created is a container whose init is waiting for start; for run, the
// caller keeps the child to wait on it.
type created struct {
	p     *persisted
	child *child
	cg    cgroup.Manager
	saved chan error // set when the final state is being saved concurrently
	// preforked: the init was a pre-forked one (CreateOpts.Preforked).
	preforked bool
	// held are the container's namespaces held so that the init's exit
	// does not end them (the exit is reported sooner; they go when the
	// container is deleted, releaseNamespaces): its mount namespace (sent
	// by the init with MsgReady, if any) and its own network and IPC
	// namespaces (holdNamespaces).
	held []*os.File
	// staged: the init's report of the staged mounts it used (MsgReady).
	staged string
}

// releaseNamespaces drops the hold on the container's namespaces; the
// last reference to its mount namespace unmounts its mount tree in this
// call.
func (c *created) releaseNamespaces() {
	for _, f := range c.held {
		f.Close()
	}
	c.held = nil
}

// heldNamespaces are the namespaces whose end costs the kernel work on
// other CPUs (a network namespace's cleanup: its loopback device, RCU
// grace periods; an IPC namespace's): holding them past the init's exit
// moves that work after the exit is reported.
var heldNamespaces = []specs.LinuxNamespaceType{specs.NetworkNamespace, specs.IPCNamespace}

// holdNamespaces opens the container's own network and IPC namespaces
// (those it made, not joined) so that the init's exit does not end them:
// they end when the container is deleted (releaseNamespaces), after its exit
// was reported, rather than on the CPUs that report it. Best effort.
func (c *created) holdNamespaces(spec *specs.Spec) {
	if spec == nil || spec.Linux == nil {
		return
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Path != "" || !slices.Contains(heldNamespaces, ns.Type) {
			continue
		}
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", c.child.pid, procNSName[ns.Type]))
		if err == nil {
			c.held = append(c.held, f)
		}
	}
}

// waitSaved returns the result of a concurrent save, if any.
func (c *created) waitSaved() error {
	if c.saved == nil {
		return nil
	}
	err := <-c.saved
	c.saved = nil
	return err
}

// Create creates container id from the bundle: namespaces, cgroups, root
// filesystem, hooks; the process waits for Start.
func (r *Runtime) Create(ctx context.Context, id string, o CreateOpts) error {
	c, err := r.create(ctx, id, o)
	if err != nil {
		return err
	}
	c.child.sync.F.Close()
	c.releaseNamespaces()
	if c.child.console != nil {
		c.child.console.Close()
	}
	// The init lives on without us; release it so it is not a zombie of a
	// process that is about to exit anyway.
	_ = c.child.cmd.Process.Release()
	return nil
}

func (r *Runtime) create(ctx context.Context, id string, o CreateOpts) (_ *created, retErr error) {
	initproc.Tracef("create: begin")
	// A pre-forked init create neither took nor let go (it failed before
	// looking at it) goes with the failure; otherwise a no-op.
	defer o.Preforked.Release()
	if err := checkID(id); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, err
	}
	raw := o.Config
	if raw == nil {
		if raw, err = ocispec.ReadConfig(bundle); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, err)
		}
	}
	spec, err := ocispec.Parse(bundle, raw)
	if err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, err)
	}
	if err := ocispec.Validate(spec, bundle); err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, err)
	}
	initproc.Tracef("create: config read")
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
		raw = nil // no longer what the record holds
	}
	// Checks the profile and compiles it, or finds it compiled (see
	// seccompProgram): the init only installs the result.
	scProg, err := r.seccompProgram(spec.Linux.Seccomp)
	if err != nil {
		return nil, err
	}
	initproc.Tracef("create: seccomp ready")
	plan, err := planNamespaces(spec.Linux.Namespaces)
	initproc.Tracef("create: config loaded")
	if err != nil {
		return nil, err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if rootfs, err = filepath.EvalSymlinks(rootfs); err != nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "rootfs: %w", err)
	}
	dir := r.dir(id)
	var ch *child
	var cg cgroup.Manager
	var cfg *initproc.Config
	pf := o.Preforked
	keepDevices := false // the device rules set ahead are the spec's (presetDevices)
	if pf != nil {
		if cg, err = pf.manager(spec); err != nil {
			pf.Release()
			return nil, errdefs.With(errdefs.InvalidArgument, err)
		}
		keepDevices = pf.presetDevices(cg, spec)
		if !keepDevices && !mountsOpenNoDevice(spec.Mounts) && !pf.openDevices() {
			pf.Release()
		}
		if !pf.take(id, plan, spec, o, cg) {
			pf, cg, keepDevices = nil, nil, false
		}
	}
	if pf == nil {
		if err := os.Mkdir(dir, 0o711); err != nil {
			if errors.Is(err, os.ErrExist) {
				return nil, errdefs.Newf(errdefs.AlreadyExists, "container with id exists: %s", id)
			}
			return nil, err
		}
	} else {
		ch, cfg = pf.ch, pf.cfg
		ch.console = pf.consoleParent
	}
	defer func() {
		if retErr == nil {
			return
		}
		if ch != nil {
			ch.kill()
			if ch.console != nil {
				ch.console.Close()
			}
		}
		if cg != nil {
			_ = cg.Destroy()
		}
		_ = os.RemoveAll(dir)
	}()

	if pf != nil {
		initproc.Tracef("create: pre-forked init taken")
		if needsApply(spec.Linux.Resources) {
			if err := cg.Apply(-1); err != nil {
				return nil, fmt.Errorf("create cgroup: %w", err)
			}
		}
		cfg.Seccomp = scProg
	} else if ch, cfg, err = r.coldSpawn(id, dir, spec, plan, scProg, o, &cg); err != nil {
		return nil, err
	}
	initproc.Tracef("create: spawned")
	if userMaps := plan.cloneFlags&unix.CLONE_NEWUSER != 0; userMaps {
		if err := cg.Apply(ch.pid); err != nil {
			return nil, fmt.Errorf("join cgroup: %w", err)
		}
	}
	initproc.Tracef("create: cgroup applied")
	start, _, _ := procStat(ch.pid)
	p := &persisted{
		ID: id, Bundle: bundle, Rootfs: rootfs, InitPid: ch.pid, InitStart: start,
		Created: time.Now().UTC(), Owner: currentOwner(), CgroupPaths: cg.Paths(),
		NamespacePaths: map[specs.LinuxNamespaceType]string{}, Config: spec, Creating: true,
		configJSON: raw,
	}
	for _, ns := range spec.Linux.Namespaces {
		path := ns.Path
		if path == "" {
			path = fmt.Sprintf("/proc/%d/ns/%s", ch.pid, procNSName[ns.Type])
		}
		p.NamespacePaths[ns.Type] = path
	}
	// The record before the init gets its config: should this process die
	// from now on, Delete(force) finds the init, its cgroups and the hooks
	// to run. A pre-forked init's first record already holds the init and
	// the cgroups; without hooks there is nothing more it needs, and the
	// final record follows once the init is ready (a file created less on
	// the path of start: each costs 0.4-1 ms on a busy ext4).
	if pf == nil || spec.Hooks != nil {
		if err := r.save(p); err != nil {
			return nil, err
		}
	}
	cfg.Mode, cfg.ID, cfg.Bundle, cfg.Rootfs = initproc.ModeInit, id, bundle, rootfs
	cfg.EarlyStart = os.Getenv(initproc.EnvEarlyStart) == "1"
	cfg.Spec, cfg.Process, cfg.HostPid, cfg.NoPivot = forInit(spec), spec.Process, ch.pid, o.NoPivot
	cfg.NewMountNS, cfg.NewCgroupNS, cfg.NewTimeNS, cfg.UserNS = plan.newMount, plan.newCgroup, plan.newTime, plan.userns
	if plan.joinMount {
		cfg.Rootfs = ""
	}
	if err := ch.sync.Send(initproc.Msg{Type: initproc.MsgConfig, Config: cfg}); err != nil {
		return nil, fmt.Errorf("send config: %w", err)
	}
	// Limits go on once the root filesystem is set up: the device
	// allowlist would otherwise refuse the mknod of the spec's devices
	// and the mounts of block devices. Unless the devices cgroup already
	// holds the configuration's rules (a pre-forked init's, programmed at
	// idle time) and no mount needs a device (presetDevices): the rules
	// let the init mknod (cgroup.DefaultDeviceRules), and the other limits
	// are set now, while the init mounts, rather than with the init
	// waiting.
	limitsSet := false
	res := spec.Linux.Resources
	if keepDevices {
		r := *res
		r.Devices = nil
		if err := cg.Set(&r); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("set cgroup limits: %w", err))
		}
		limitsSet = true
		devicesPreset.Add(1)
		initproc.Tracef("create: limits set (devices preset)")
	} else if pf != nil && pf.devicesSet && res != nil && res.Devices == nil {
		// Programmed in full, as a fresh cgroup is (its manager's first
		// Set programs the default rules even without any in res).
		r := *res
		r.Devices = []specs.LinuxDeviceCgroup{}
		res = &r
	}
	// The final record, written now, while the init mounts (the shim
	// would only wait), rather than once the init is ready: with a
	// pre-forked init (whose first record serves a Delete(force) until
	// this one replaces it) and no hooks, nothing the record describes
	// changes in between. It says "created" a little early: a start from
	// another process in that window waits on the start socket, which the
	// init accepts on only once it is ready; a failing create removes the
	// state directory with the record; a create that dies leaves an init
	// that exits at its sync socket's EOF and a record Delete(force)
	// cleans up, as the first record did.
	savedEarly := false
	if pf != nil && spec.Hooks == nil && !o.saveAsync {
		p.Creating = false
		if err := r.save(p); err != nil {
			return nil, err
		}
		savedEarly = true
	}
	if _, err := ch.sync.Expect(initproc.MsgHooks); err != nil {
		return nil, err
	}
	initproc.Tracef("create: child mounted")
	if !limitsSet {
		if err := cg.Set(res); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("set cgroup limits: %w", err))
		}
		initproc.Tracef("create: limits set")
	}
	if h := spec.Hooks; h != nil {
		st := specs.State{Version: specs.Version, ID: id, Status: specs.StateCreating, Pid: ch.pid, Bundle: bundle, Annotations: spec.Annotations}
		//nolint:staticcheck // prestart is deprecated but still part of the spec
		if err := initproc.RunHooks("prestart", h.Prestart, st); err != nil {
			return nil, err
		}
		if err := initproc.RunHooks("createRuntime", h.CreateRuntime, st); err != nil {
			return nil, err
		}
	}
	if err := ch.sync.Send(initproc.Msg{Type: initproc.MsgHooksDone}); err != nil {
		return nil, err
	}
	ready, err := ch.sync.Expect(initproc.MsgReady)
	var held []*os.File // the container's mount namespace (see created.held)
	if ready.FD >= 0 {
		held = append(held, os.NewFile(uintptr(ready.FD), "mnt-ns"))
	}
	if err != nil {
		for _, f := range held {
			f.Close()
		}
		return nil, err
	}
	initproc.Tracef("create: child ready")
	p.Creating = false
	c := &created{p: p, child: ch, cg: cg, preforked: pf != nil, held: held, staged: ready.Message}
	c.holdNamespaces(spec)
	defer func() {
		if retErr != nil {
			c.releaseNamespaces()
		}
	}()
	switch {
	case savedEarly:
	case o.saveAsync:
		// run: the record is written while the program starts; Run waits
		// for it before it returns or deletes anything.
		c.saved = make(chan error, 1)
		go func() { c.saved <- r.save(p) }()
	default:
		if err := r.save(p); err != nil {
			return nil, err
		}
	}
	initproc.Tracef("create: saved")
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, ch.pid); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Start lets a created container's init execute the user's program, then
// runs the poststart hooks.
func (r *Runtime) Start(ctx context.Context, id string) error {
	p, err := r.load(id)
	if err != nil {
		return err
	}
	switch st := r.status(p); st {
	case StatusCreated:
	case StatusStopped:
		return errdefs.Newf(errdefs.Conflict, "cannot start a container that has stopped")
	default:
		return errdefs.Newf(errdefs.Conflict, "cannot start an already %s container", st)
	}
	return r.start(p)
}

// start hands a created container over to its program (see Start).
func (r *Runtime) start(p *persisted) error {
	id := p.ID
	conn, err := dialUnixAt(r.dir(id), startSock)
	if err != nil {
		return fmt.Errorf("start container %q: %w", id, err)
	}
	initproc.Tracef("start: connected")
	_ = os.Remove(filepath.Join(r.dir(id), startSock))
	err = initproc.Conn{F: conn}.WaitExec(seccompForwarder(p.Config, id, p.Bundle, p.InitPid, p.InitPid))
	conn.Close()
	initproc.Tracef("start: exec told")
	if err != nil {
		return fmt.Errorf("start container %q: %w", id, err)
	}
	if h := p.Config.Hooks; h != nil && len(h.Poststart) > 0 {
		st := specs.State{Version: specs.Version, ID: id, Status: specs.StateRunning, Pid: p.InitPid, Bundle: p.Bundle, Annotations: p.Config.Annotations}
		if err := initproc.RunHooks("poststart", h.Poststart, st); err != nil {
			// As runc: a failing poststart hook is reported, the container
			// keeps running; the caller decides (run kills it).
			return fmt.Errorf("container %q started but %w", id, err)
		}
	}
	return nil
}

func writePidFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// listenUnix creates a listening unix socket named name in dir. The bind
// goes through /proc/self/fd so the path length limit never bites.
func listenUnix(dir, name string) (*os.File, error) {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d/%s", dfd, name)}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind %s: %w", name, err)
	}
	if err := unix.Listen(fd, 4); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// dialUnixAt connects to the start socket (SOCK_SEQPACKET) in dir.
func dialUnixAt(dir, name string) (*os.File, error) {
	dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	return dialUnixType(fmt.Sprintf("/proc/self/fd/%d/%s", dfd, name), unix.SOCK_SEQPACKET)
}

// seccompForwarder returns the function that hands a container's seccomp
// notify descriptor to the agent at linux.seccomp.listenerPath, with the
// container process state the specification defines.
func seccompForwarder(spec *specs.Spec, id, bundle string, initPid, pid int) func(int) error {
	return func(fd int) error {
		if spec == nil || spec.Linux == nil || spec.Linux.Seccomp == nil || spec.Linux.Seccomp.ListenerPath == "" {
			return nil
		}
		sc := spec.Linux.Seccomp
		st := specs.ContainerProcessState{
			Version: specs.Version, Fds: []string{specs.SeccompFdName}, Pid: pid, Metadata: sc.ListenerMetadata,
			State: specs.State{Version: specs.Version, ID: id, Status: specs.StateRunning, Pid: initPid, Bundle: bundle, Annotations: spec.Annotations},
		}
		if err := seccomp.SendListener(sc.ListenerPath, st, fd); err != nil {
			return fmt.Errorf("seccomp listener %s: %w", sc.ListenerPath, err)
		}
		return nil
	}
}

func dialUnix(path string) (*os.File, error) { return dialUnixType(path, unix.SOCK_STREAM) }

func dialUnixType(path string, typ int) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if len(path) >= 108 {
		dir, name := filepath.Split(path)
		dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			unix.Close(fd)
			return nil, err
		}
		defer unix.Close(dfd)
		path = fmt.Sprintf("/proc/self/fd/%d/%s", dfd, name)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// consoleSocket returns the socket a terminal's pty master is sent over:
// connected to path, or, without one, one end of a pair whose other end
// (parent) the runtime reads itself to relay the terminal.
func consoleSocket(path string) (child, parent *os.File, err error) {
	if path != "" {
		c, err := dialUnix(path)
		if err != nil {
			return nil, nil, errdefs.Newf(errdefs.InvalidArgument, "console socket %s: %w", path, err)
		}
		return c, nil, nil
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[1]), "console-child"), os.NewFile(uintptr(fds[0]), "console-parent"), nil
}

// coldSpawn is create's own start of the init (no pre-forked one): start
// socket, console socket, cgroups (*cgp is set as soon as they exist, for
// create's cleanup), then the clone.
func (r *Runtime) coldSpawn(id, dir string, spec *specs.Spec, plan nsPlan, scProg *bpf.Program, o CreateOpts, cgp *cgroup.Manager) (*child, *initproc.Config, error) {
	initproc.Tracef("create: dir made")
	listener, err := listenUnix(dir, startSock)
	if err != nil {
		return nil, nil, err
	}
	defer listener.Close()
	var consoleConn, consoleParent *os.File
	if spec.Process.Terminal {
		if consoleConn, consoleParent, err = consoleSocket(o.ConsoleSocket); err != nil {
			return nil, nil, err
		}
		defer consoleConn.Close()
	}
	cg, err := cgroup.New(spec.Linux.CgroupsPath, id, spec.Linux.Resources)
	initproc.Tracef("create: cgroup.New")
	if err != nil {
		if consoleParent != nil {
			consoleParent.Close()
		}
		return nil, nil, errdefs.With(errdefs.InvalidArgument, err)
	}
	*cgp = cg
	if err := cg.Apply(-1); err != nil {
		if consoleParent != nil {
			consoleParent.Close()
		}
		return nil, nil, fmt.Errorf("create cgroup: %w", err)
	}
	so := spawnOpts{
		plan: plan, spec: spec, preserve: o.PreserveFDs, io: o.IO, listener: listener,
		consoleConn: consoleConn, userMaps: plan.cloneFlags&unix.CLONE_NEWUSER != 0,
		seccomp: scProg,
	}
	// A child that is root of a new user namespace can no longer write the
	// host's cgroup files: the parent moves it instead (create does).
	if !so.userMaps {
		so.cgroupPaths = cg.Paths()
	}
	ch, cfg, err := r.spawn(so)
	if err != nil {
		if consoleParent != nil {
			consoleParent.Close()
		}
		return nil, nil, err
	}
	ch.console = consoleParent
	return ch, cfg, nil
}
