package initproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/memtrim"
	"github.com/berth-dev/berth/internal/runtime/seccomp/bpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	ModeInit = "init"
	ModeExec = "exec"

	EnvSyncFD = "_BERTH_SYNC_FD"
	// EnvPreforked is set for a pre-forked init (its config comes later).
	EnvPreforked = "_BERTH_PREFORKED"
	// EnvNoStage, set for a pre-forked init, turns off staged mounts
	// (stage_linux.go): tests compare with the ordinary path.
	EnvNoStage = "_BERTH_NO_STAGE"
	// EnvStageWait: a config that comes while the mounts are staged waits
	// for the staging to end rather than stopping it (tests: what is used
	// then does not depend on timing).
	EnvStageWait = "_BERTH_STAGE_WAIT"
)

// Config is what the parent sends the child in MsgConfig.
type Config struct {
	Mode    string         `json:"mode"`
	ID      string         `json:"id"`
	Bundle  string         `json:"bundle"`
	Rootfs  string         `json:"rootfs"`
	Spec    *specs.Spec    `json:"spec"`
	Process *specs.Process `json:"process"`
	HostPid int            `json:"host_pid"`
	NoPivot bool           `json:"no_pivot,omitempty"`
	// NewMountNS is false when the container shares the runtime's mounts;
	// then no rootfs setup happens (chroot only).
	NewMountNS  bool `json:"new_mount_ns"`
	NewCgroupNS bool `json:"new_cgroup_ns,omitempty"`
	NewTimeNS   bool `json:"new_time_ns,omitempty"`
	UserNS      bool `json:"user_ns,omitempty"`
	// UnshareMountNS: the init was pre-forked without its mount
	// namespace (runtime.Prefork) and makes it first thing, so that it
	// sees every mount made up to its config (the root filesystem).
	UnshareMountNS bool `json:"unshare_mount_ns,omitempty"`
	ConsoleFD      int  `json:"console_fd"`
	StartFD        int  `json:"start_fd"`
	PreserveFDs    int  `json:"preserve_fds"`
	Trace          bool `json:"trace,omitempty"`
	// Seccomp is linux.seccomp compiled by the runtime (seccomp.Compile,
	// which caches it): the init installs it with seccomp(2) and never
	// compiles anything. Spec.Linux.Seccomp may be left out of the config
	// sent to an init (create does: the init would only decode it).
	Seccomp *bpf.Program `json:"seccomp,omitempty"`

	// JoinNetNS: the init was pre-forked with a network namespace of its
	// own, and the container joins this one (a network berthd set up)
	// instead: the init joins it first thing, on the thread that execs.
	JoinNetNS string `json:"join_net_ns,omitempty"`
	// EarlyStart: a container's init tells start it is about to execve
	// (MsgExec), and start answers then instead of after the execve (the
	// connection's EOF). Opt-in (EnvEarlyStart): see finalize.
	EarlyStart bool `json:"early_start,omitempty"`
}

// EnvEarlyStart ("1" in the runtime's environment, which berthd's shims
// get from berthd's) sets Config.EarlyStart.
const EnvEarlyStart = "BERTH_EARLY_START"

func init() {
	// The init and exec processes must do all their namespace, credential
	// and seccomp work on one OS thread, the one that finally calls execve.
	if os.Getenv(EnvSyncFD) != "" && len(os.Args) > 1 && os.Args[1] == "init" {
		runtime.LockOSThread()
	}
}

const statusCreated = "created"

// Main runs the container init/exec process when this binary was executed
// for that purpose (argv[1] "init" and the sync descriptor in the
// environment); otherwise it returns immediately. It must be the first
// thing main does.
func Main() {
	fdStr := os.Getenv(EnvSyncFD)
	if fdStr == "" || len(os.Args) < 2 || os.Args[1] != "init" {
		return
	}
	fd, err := strconv.Atoi(fdStr)
	if err != nil {
		os.Exit(1)
	}
	os.Unsetenv(EnvSyncFD)
	preforked := os.Getenv(EnvPreforked) != ""
	os.Unsetenv(EnvPreforked)
	if v := os.Getenv("BERTH_TRACE_INIT"); v != "" {
		TraceOn = true
		if v != "1" {
			// BERTH_TRACE_DIR: the init's stderr is the container's.
			if f, err := os.Create(v + "/init." + strconv.FormatInt(time.Now().UnixNano(), 10)); err == nil {
				traceOut = f
			}
		}
	}
	Tracef("init: go started")
	s := Conn{os.NewFile(uintptr(fd), "sync")}
	waiting := preforked && !readable(fd)
	if waiting {
		// Pre-forked, the config not there yet: warm what decoding it
		// costs the first time meanwhile (warm.go). On another thread:
		// a config that comes while it runs is read at once (the warm
		// may have been starved at idle priority until the claim), and
		// decoded with what is warm by then. (Only JSON on data of its
		// own: nothing of the process's state; execve ends it.)
		go WarmJSON()
	}
	var st *stager
	if waiting && os.Getenv(EnvNoStage) == "" {
		// And build the default mounts meanwhile (stage_linux.go).
		st = startStaging(os.Getenv(EnvStageWait) != "")
	}
	os.Unsetenv(EnvNoStage)
	os.Unsetenv(EnvStageWait)
	// On success childInit never returns: the process has become the
	// container's process.
	if err := childInit(s, waiting, st); err != nil {
		_ = s.Send(Msg{Type: MsgError, Message: err.Error()})
		os.Exit(1)
	}
	os.Exit(0)
}

// idleTrims are the times, from its start, at which an init still
// waiting for its config gives back its clean text pages (memtrim): a warm
// spare's pre-forked init can wait for minutes, and its binary's text is
// most of its ~4 MiB resident set. More than once, as the Go runtime's own
// start-up work (its background workers, the first collection) can touch
// pages again after the first trim. Only a pre-forked init whose config
// was not there at its start (waiting) trims.
var idleTrims = []time.Duration{300 * time.Millisecond, time.Second, 3 * time.Second, 10 * time.Second}

func childInit(s Conn, waiting bool, st *stager) error {
	stop := make(chan struct{})
	if waiting {
		go idleTrim(stop)
	}
	m, err := s.Expect(MsgConfig)
	close(stop)
	if err != nil {
		return err
	}
	return configured(s, m, st)
}

// idleTrim trims at idleTrims until stop is closed.
func idleTrim(stop <-chan struct{}) {
	start := time.Now()
	for _, at := range idleTrims {
		t := time.NewTimer(time.Until(start.Add(at)))
		select {
		case <-stop:
			t.Stop()
			return
		case <-t.C:
			memtrim.DropCleanText()
		}
	}
}

// configured is the rest of childInit once the config m has come.
func configured(s Conn, m Msg, st *stager) error {
	cfg := m.Config
	if cfg == nil || cfg.Process == nil {
		return errors.New("init: empty config")
	}
	// The staged mounts this config can use (none for an exec), before
	// anything changes a namespace of this thread.
	staged := st.finish(cfg)
	defer staged.close()
	TraceOn = cfg.Trace
	Tracef("init: config received")
	if st != nil {
		Tracef("init: staged mounts: complete %v, used %q", st.complete, staged.summary())
	}
	// No other process in the container may ptrace us or open our
	// /proc/<pid>/exe while we still are the runtime binary.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl dumpable: %w", err)
	}
	if cfg.Mode == ModeExec {
		staged.close()
		return finalize(cfg, s, func(err error) error { return err })
	}
	return initContainer(s, cfg, staged)
}

// initContainer is the container's init, top-down; the order of the steps is
// the security argument and each comment says why it is where it is.
func initContainer(s Conn, cfg *Config, staged *stagedUse) error {
	spec := cfg.Spec
	// This thread (the one that execs; Go's threads share their fs_struct,
	// which unshare gives this one its own copy of) gets the mount
	// namespace now.
	if cfg.UnshareMountNS {
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("unshare mount namespace: %w", err)
		}
	}
	// Before anything that depends on the network namespace (the /sys
	// mount shows its devices, net sysctls are its own), a pre-forked
	// init joins the container's, on this thread (the others, in the
	// init's own namespace, end with execve).
	if cfg.JoinNetNS != "" {
		if err := joinNetNS(cfg.JoinNetNS); err != nil {
			return err
		}
	}
	// A new session, so a terminal can become the controlling one.
	if _, err := unix.Setsid(); err != nil && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("setsid: %w", err)
	}
	// The cgroup namespace is created only now, after the parent moved us into
	// the container's cgroup, so that the namespace is rooted there.
	if cfg.NewCgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	// A time namespace applies to children (and to us after execve); its
	// offsets must be written before any process enters it.
	if cfg.NewTimeNS {
		if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
			return fmt.Errorf("unshare time namespace: %w", err)
		}
		if err := writeTimeOffsets(spec.Linux.TimeOffsets); err != nil {
			return err
		}
	}
	// A descriptor of the container's mount namespace goes to the parent
	// with MsgReady, so that it can hold the namespace past our exit: the
	// last reference to a mount namespace unmounts its whole tree (an RCU
	// grace period, the superblocks of /proc, /sys, /dev, ...) inside the
	// exit of its last process, before the parent is even told of it.
	// Opened here, through the host's /proc, before the root switch.
	mntNS := -1
	if cfg.NewMountNS {
		if fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
			mntNS = fd
		}
	}
	defer func() {
		if mntNS >= 0 {
			unix.Close(mntNS)
		}
	}()
	var rs *rootfsSetup
	if cfg.NewMountNS {
		rs = &rootfsSetup{rootfs: cfg.Rootfs, spec: spec, userns: cfg.UserNS, cgroupn: cfg.NewCgroupNS, bundle: cfg.Bundle, staged: staged}
		if err := rs.prepare(); err != nil {
			return err
		}
		Tracef("init: rootfs prepared")
	}
	// createRuntime hooks run in the runtime's namespaces, by the parent.
	if err := s.Send(Msg{Type: MsgHooks}); err != nil {
		return err
	}
	if _, err := s.Expect(MsgHooksDone); err != nil {
		return err
	}
	Tracef("init: hooks done")
	if spec.Hooks != nil && len(spec.Hooks.CreateContainer) > 0 {
		st := hookState(cfg, statusCreated)
		if err := RunHooks("createContainer", spec.Hooks.CreateContainer, st); err != nil {
			return err
		}
	}
	// The root switch. After this no host path is reachable.
	if cfg.NewMountNS {
		var err error
		if cfg.NoPivot {
			err = moveRoot(cfg.Rootfs)
		} else if err = pivotRoot(cfg.Rootfs); err != nil {
			var pe *pivotError
			if errors.As(err, &pe) && errors.Is(err, unix.EINVAL) {
				// The root is not a mount we may pivot (initramfs).
				err = moveRoot(cfg.Rootfs)
			}
		}
		if err != nil {
			return fmt.Errorf("switch root: %w", err)
		}
		Tracef("init: pivoted")
	} else {
		if err := unix.Chroot(cfg.Rootfs); err != nil {
			return fmt.Errorf("chroot: %w", err)
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	}
	// Sysctls go through /proc/sys before it becomes read-only below
	// (a staged /proc has it read-only already: through the handle the
	// staging took below that bind).
	if err := staged.writeSysctls(spec.Linux.Sysctl); err != nil {
		return err
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("setdomainname: %w", err)
		}
	}
	// The console needs /dev/pts, and its slave is bound on /dev/console
	// before /dev could become read-only.
	if cfg.Process.Terminal {
		if err := setupConsole(cfg, true); err != nil {
			return err
		}
	}
	if cfg.NewMountNS {
		// (Those of a staged tree are done.)
		if err := readonlyPaths(staged.unhandled(spec.Linux.ReadonlyPaths)); err != nil {
			return err
		}
		if err := maskPaths(staged.unhandled(spec.Linux.MaskedPaths)); err != nil {
			return err
		}
		if spec.Root.Readonly {
			if err := remountRootReadonly(); err != nil {
				return fmt.Errorf("read-only rootfs: %w", err)
			}
		}
	}
	// Resolve the program now so a missing binary fails create, not start.
	Tracef("init: paths done")
	if _, err := resolveProgram(cfg.Process); err != nil {
		return err
	}
	ready := Msg{Type: MsgReady, Message: staged.summary()}
	var err error
	if mntNS >= 0 {
		err = s.SendFD(ready, mntNS)
		unix.Close(mntNS)
		mntNS = -1
	} else {
		err = s.Send(ready)
	}
	if err != nil {
		return err
	}
	s.F.Close()

	// Wait for start. The starter reads EOF when execve succeeded (the
	// connection is close-on-exec) or we exited, MsgExec first with
	// EarlyStart (finalize), or our error message.
	listener := cfg.StartFD
	var connFD int
	for {
		var err error
		connFD, _, err = unix.Accept4(listener, unix.SOCK_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("wait for start: %w", err)
		}
		break
	}
	unix.Close(listener)
	conn := Conn{os.NewFile(uintptr(connFD), "start")}
	Tracef("init: start accepted")
	report := func(err error) error {
		_ = conn.Send(Msg{Type: MsgError, Message: err.Error()})
		os.Exit(1)
		return err
	}
	if spec.Hooks != nil && len(spec.Hooks.StartContainer) > 0 {
		if err := RunHooks("startContainer", spec.Hooks.StartContainer, hookState(cfg, statusCreated)); err != nil {
			return report(err)
		}
	}
	return finalize(cfg, conn, report)
}

// finalize turns the current process into the container process: limits,
// LSM label, credentials, capabilities, no_new_privs, seccomp, fds, execve.
// report is used for errors once the parent can no longer be told over sync.
func finalize(cfg *Config, conn Conn, report func(error) error) error {
	p := cfg.Process
	spec := cfg.Spec
	if cfg.Mode == ModeExec {
		if p.Terminal {
			if _, err := unix.Setsid(); err != nil && !errors.Is(err, unix.EPERM) {
				return fmt.Errorf("setsid: %w", err)
			}
			if err := setupConsole(cfg, false); err != nil {
				return err
			}
		}
	}
	// Rlimits before dropping privileges (raising a hard limit needs
	// CAP_SYS_RESOURCE). syscall.Setrlimit also stops Go from restoring its
	// own NOFILE soft limit at execve.
	for _, rl := range p.Rlimits {
		res, ok := rlimitByName[rl.Type]
		if !ok {
			return report(fmt.Errorf("unknown rlimit %q", rl.Type))
		}
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return report(fmt.Errorf("setrlimit %s: %w", rl.Type, err))
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return report(fmt.Errorf("oom_score_adj: %w", err))
		}
	}
	if err := applyLSM(p); err != nil {
		return report(err)
	}
	if spec != nil && spec.Linux != nil && spec.Linux.Personality != nil {
		if err := setPersonality(spec.Linux.Personality); err != nil {
			return report(err)
		}
	}
	if err := applyScheduling(p); err != nil {
		return report(err)
	}
	path, err := resolveProgram(p)
	if err != nil {
		return report(err)
	}
	env := withHome(p.Env, p.User.UID)
	if p.Cwd != "" {
		if err := unix.Chdir(p.Cwd); err != nil {
			return report(fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", p.Cwd, err))
		}
	}
	// The filter comes compiled (cfg.Seccomp): installing it is one
	// seccomp(2) call. A config that names a filter without sending it
	// is refused rather than run unfiltered.
	sc := cfg.Seccomp
	if sc == nil && spec != nil && spec.Linux != nil && spec.Linux.Seccomp != nil {
		return report(errors.New("seccomp: the runtime sent the seccomp config without its compiled filter"))
	}
	if sc != nil {
		if err := sc.Check(); err != nil {
			return report(err)
		}
	}
	listenerFD := -1
	// Without no_new_privs the filter must be loaded while we still hold
	// CAP_SYS_ADMIN, i.e. before the credentials change; with it, as late
	// as possible so the filter constrains only the container's program.
	if sc != nil && !p.NoNewPrivileges {
		if listenerFD, err = sc.Install(); err != nil {
			return report(fmt.Errorf("seccomp: %w", err))
		}
	}
	if err := setCredentials(p); err != nil {
		return report(err)
	}
	Tracef("init: creds set")
	// With the container's credentials (and capabilities): may they
	// execute it? (What execve refuses after the checks is the
	// container's exit, not a failed start: see below.)
	if err := eaccess(path); err != nil {
		return report(fmt.Errorf("exec: %q: %w", p.Args[0], err))
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return report(fmt.Errorf("no_new_privs: %w", err))
		}
	}
	if sc != nil && p.NoNewPrivileges {
		if listenerFD, err = sc.Install(); err != nil {
			return report(fmt.Errorf("seccomp: %w", err))
		}
	}
	Tracef("init: seccomp installed")
	if listenerFD >= 0 {
		// The runtime process forwards it to the agent (see MsgSeccompFD).
		if err := conn.SendFD(Msg{Type: MsgSeccompFD}, listenerFD); err != nil {
			return report(fmt.Errorf("seccomp listener: %w", err))
		}
		unix.Close(listenerFD)
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	// Nothing of the runtime's may leak into the container: every fd past
	// stdio and the preserved ones becomes close-on-exec.
	if err := closeExtraFDs(3 + cfg.PreserveFDs); err != nil {
		return report(err)
	}
	unix.CloseOnExec(int(conn.F.Fd()))
	if cfg.Mode == ModeExec {
		// An exec process: the runtime waits for the execve (EOF), so
		// that a program the kernel refuses fails the exec (126/127).
		Tracef("init: exec")
		err = unix.Exec(path, p.Args, env)
		return report(fmt.Errorf("exec %s: %w", p.Args[0], err))
	}
	// A container's init: everything that can fail cheaply was checked
	// above; an execve that still fails (exec format error, a script's
	// missing interpreter) is the container's own failure, as with runc
	// and Docker: the message on its stderr, exit status 255, and start
	// succeeds (it reads EOF when we exit, as when execve succeeded).
	// With EarlyStart the init also tells start that it is about to
	// execve, and start answers then rather than after the kernel's
	// execve (de_thread of the init's other threads, its address space:
	// 0.5-1.5 ms), as runc start answers when its init wrote the exec
	// fifo. Opt-in: measured on this project's shared 2-CPU host it did
	// not pay (docs/benchmarks.md, "The start answers before the
	// execve"): what the answer wakes (shim, daemon, CLI) then competes
	// for the CPUs with the execve, which the exit still waits for.
	if cfg.EarlyStart {
		if err := conn.Send(Msg{Type: MsgExec}); err != nil {
			return report(err)
		}
	}
	Tracef("init: exec")
	err = unix.Exec(path, p.Args, env)
	fmt.Fprintf(os.Stderr, "exec %s: %v\n", path, err)
	os.Exit(execFailedStatus)
	return err
}

// execFailedStatus is the exit status of a container whose program execve
// refused after every check passed (runc's init exits 255).
const execFailedStatus = 255

// eaccess checks that the calling thread's credentials may execute path
// (access(2) with X_OK on the effective ids: the mode bits for each user,
// a noexec mount). Only a refusal counts: a filter or a kernel that does
// not allow faccessat2 leaves the answer to execve.
func eaccess(path string) error {
	// faccessat2 itself: x/sys's Faccessat would emulate it when the
	// system call is missing or filtered, without the capabilities.
	if err := unix.Faccessat2(unix.AT_FDCWD, path, unix.X_OK, unix.AT_EACCESS); err == unix.EACCES {
		return os.ErrPermission
	}
	return nil
}

// resolveProgram finds args[0] in the container the way execvp would, using
// the PATH of the process's environment.
func resolveProgram(p *specs.Process) (string, error) {
	if len(p.Args) == 0 {
		return "", errors.New("process args are empty")
	}
	name := p.Args[0]
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) && p.Cwd != "" {
			name = filepath.Join(p.Cwd, name)
		}
		if err := checkExecutable(name); err != nil {
			return "", fmt.Errorf("exec: %q: %w", p.Args[0], err)
		}
		return name, nil
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range p.Env {
		if strings.HasPrefix(e, "PATH=") {
			pathEnv = e[5:]
		}
	}
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		cand := filepath.Join(dir, name)
		if checkExecutable(cand) == nil {
			return cand, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", name)
}

func checkExecutable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return os.ErrPermission
	}
	return nil
}

func closeExtraFDs(from int) error {
	if err := unix.CloseRange(uint(from), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	// Kernels before 5.11: walk /proc/self/fd.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("close inherited descriptors: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < from {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}

func writeTimeOffsets(offsets map[string]specs.LinuxTimeOffset) error {
	var b strings.Builder
	for clock, off := range offsets {
		switch clock {
		case "monotonic", "boottime":
		default:
			return fmt.Errorf("time namespace: unknown clock %q", clock)
		}
		fmt.Fprintf(&b, "%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	if b.Len() == 0 {
		return nil
	}
	if err := os.WriteFile("/proc/self/timens_offsets", []byte(b.String()), 0); err != nil {
		return fmt.Errorf("time namespace offsets: %w", err)
	}
	return nil
}

// hookState is the state handed to hooks on stdin.
func hookState(cfg *Config, status string) specs.State {
	return specs.State{
		Version: specs.Version, ID: cfg.ID, Status: specs.ContainerState(status),
		Pid: cfg.HostPid, Bundle: cfg.Bundle, Annotations: cfg.Spec.Annotations,
	}
}

// RunHooks runs hooks in order; the first failure stops the rest.
func RunHooks(kind string, hooks []specs.Hook, st specs.State) error {
	if len(hooks) == 0 {
		return nil
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	for i, h := range hooks {
		if err := runHook(h, data); err != nil {
			return fmt.Errorf("%s hook #%d (%s): %w", kind, i, h.Path, err)
		}
	}
	return nil
}

func runHook(h specs.Hook, state []byte) error {
	cmd := &exec.Cmd{Path: h.Path, Args: h.Args, Env: h.Env}
	if len(cmd.Args) == 0 {
		cmd.Args = []string{h.Path}
	}
	cmd.Stdin = strings.NewReader(string(state))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if h.Timeout != nil && *h.Timeout > 0 {
		t := time.NewTimer(time.Duration(*h.Timeout) * time.Second)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case err := <-done:
		if err != nil {
			if s := strings.TrimSpace(out.String()); s != "" {
				return fmt.Errorf("%w: %s", err, s)
			}
			return err
		}
		return nil
	case <-timeout:
		_ = cmd.Process.Kill()
		<-done
		return fmt.Errorf("timed out after %ds", *h.Timeout)
	}
}

// withHome adds HOME from the container's /etc/passwd (or "/") when the
// environment lacks it, as runc and Docker do.
func withHome(env []string, uid uint32) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	if b, err := os.ReadFile("/etc/passwd"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && f[2] == strconv.FormatUint(uint64(uid), 10) && f[5] != "" {
				home = f[5]
				break
			}
		}
	}
	return append(append([]string{}, env...), "HOME="+home)
}

// joinNetNS enters the network namespace at path on the calling thread.
func joinNetNS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("join network namespace %s: %w", path, err)
	}
	return nil
}

// readable says whether fd has data (or EOF) waiting.
func readable(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, 0)
	return err != nil || n > 0
}
