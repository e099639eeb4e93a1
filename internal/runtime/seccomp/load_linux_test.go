//go:build cgo

package seccomp

// Real-kernel tests. A filter cannot be removed once loaded, so each test
// re-executes this test binary with childEnv naming a scenario; TestMain
// runs the scenario instead of the tests. The child locks its OS thread,
// calls Load, makes raw syscalls on that thread and prints what they
// returned as JSON; the parent checks it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

const (
	childEnv    = "BERTH_SECCOMP_TEST_CHILD"
	childDirEnv = "BERTH_SECCOMP_TEST_DIR"
	childSock   = "BERTH_SECCOMP_TEST_SOCK"
)

// Values well above any pid (pid_max is at most 2^22) and any fd, so the
// unfiltered syscalls fail with ESRCH/EBADF and touch nothing.
const (
	noPid = 5000000
	noFd  = 100001
)

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		os.Exit(childMain(name))
	}
	os.Exit(m.Run())
}

type result map[string]string

var scenarios = map[string]func(dir string) (result, error){
	"rules":           scenarioRules,
	"default-errno":   scenarioDefaultErrno,
	"tsync":           scenarioTSYNC,
	"flags":           scenarioFlags,
	"notify":          scenarioNotify,
	"notify-tsync":    scenarioNotifyTSYNC,
	"notify-listener": scenarioNotifyListener,
	"kill-process":    scenarioKill(specs.ActKillProcess),
	"trap":            scenarioKill(specs.ActTrap),
	"kill-thread":     scenarioKillThread,
}

func childMain(name string) int {
	fn, ok := scenarios[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", name)
		return 3
	}
	// Scenarios that kill the child must not leave core files behind.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	runtime.LockOSThread()
	res, err := fn(os.Getenv(childDirEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

// child runs scenario in a fresh copy of the test binary.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
}

func startChild(t *testing.T, scenario string, env ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(os.Args[0], "-test.run=^$")}
	c.cmd.Env = append(os.Environ(), childEnv+"="+scenario, childDirEnv+"="+t.TempDir())
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			c.cmd.Process.Kill()
			c.cmd.Wait()
		}
	})
	return c
}

// wait waits for the child, at most a few seconds.
func (c *child) wait(t *testing.T) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		<-done
		t.Fatalf("child hung; stderr:\n%s", c.stderr.String())
		return nil
	}
}

func (c *child) result(t *testing.T) result {
	t.Helper()
	if err := c.wait(t); err != nil {
		t.Fatalf("child failed: %v\nstderr:\n%s", err, c.stderr.String())
	}
	var res result
	if err := json.Unmarshal(c.stdout.Bytes(), &res); err != nil {
		t.Fatalf("child output %q: %v\nstderr:\n%s", c.stdout.String(), err, c.stderr.String())
	}
	return res
}

func runScenario(t *testing.T, scenario string, env ...string) result {
	t.Helper()
	return startChild(t, scenario, env...).result(t)
}

func checkResult(t *testing.T, got, want result) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: missing from child result", k)
		} else if g != w {
			t.Errorf("%s = %s, want %s", k, g, w)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected result %s = %s", k, got[k])
		}
	}
}

// errnoName renders the outcome of a syscall: "ok" or the errno's name.
func errnoName(e syscall.Errno) string {
	if e == 0 {
		return "ok"
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return strconv.Itoa(int(e))
}

func sys(trap uintptr, args ...uintptr) string {
	var a [6]uintptr
	copy(a[:], args)
	_, _, e := unix.Syscall6(trap, a[0], a[1], a[2], a[3], a[4], a[5])
	return errnoName(e)
}

// Probes. They run on the calling (locked) thread.

func getcwd() string {
	buf := make([]byte, 4096)
	_, _, e := unix.Syscall(unix.SYS_GETCWD, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), 0)
	return errnoName(e)
}

// atFDCWD is AT_FDCWD (-100) as a syscall argument.
var atFDCWD = func() uintptr { v := unix.AT_FDCWD; return uintptr(v) }()

func mkdirat(dir string) string {
	p, err := unix.BytePtrFromString(filepath.Join(dir, "made"))
	if err != nil {
		panic(err)
	}
	_, _, e := unix.Syscall(unix.SYS_MKDIRAT, atFDCWD, uintptr(unsafe.Pointer(p)), 0o700)
	return errnoName(e)
}

func getpid() string { return sys(unix.SYS_GETPID) }

func noNewPrivs() string {
	v, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		return err.Error()
	}
	return strconv.Itoa(v)
}

// onOtherThread starts a goroutine locked to its own OS thread, created
// before the caller loads a filter, and returns a function that runs f on
// that thread.
func onOtherThread() func(f func() string) string {
	req := make(chan func() string)
	resp := make(chan string)
	ready := make(chan struct{})
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		close(ready)
		for f := range req {
			resp <- f()
		}
	}()
	<-ready
	return func(f func() string) string {
		req <- f
		return <-resp
	}
}

func loadResult(fd int, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return strconv.Itoa(fd), nil
}

// Scenarios.

func ruleSpec() *specs.LinuxSeccomp {
	errno := func(e syscall.Errno) *uint { return uintp(uint(e)) }
	arg := func(idx uint, op specs.LinuxSeccompOperator, v ...uint64) specs.LinuxSeccompArg {
		a := specs.LinuxSeccompArg{Index: idx, Op: op, Value: v[0]}
		if len(v) > 1 {
			a.ValueTwo = v[1]
		}
		return a
	}
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"no_such_syscall", "getcwd"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EXDEV)},
			{Names: []string{"mkdirat"}, Action: specs.ActErrno},
			{Names: []string{"fsync"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EBADE), Args: []specs.LinuxSeccompArg{arg(0, specs.OpEqualTo, noFd)}},
			{Names: []string{"fdatasync"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EBADR), Args: []specs.LinuxSeccompArg{arg(0, specs.OpNotEqual, noFd)}},
			{Names: []string{"syncfs"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EXFULL), Args: []specs.LinuxSeccompArg{arg(0, specs.OpLessThan, noFd)}},
			{Names: []string{"getpgid"}, Action: specs.ActErrno, ErrnoRet: errno(unix.ENOANO), Args: []specs.LinuxSeccompArg{arg(0, specs.OpLessEqual, noPid)}},
			{Names: []string{"getsid"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EBADRQC), Args: []specs.LinuxSeccompArg{arg(0, specs.OpGreaterEqual, noPid)}},
			{Names: []string{"sched_getscheduler"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EBADSLT), Args: []specs.LinuxSeccompArg{arg(0, specs.OpGreaterThan, noPid)}},
			{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: errno(unix.EBFONT), Args: []specs.LinuxSeccompArg{arg(1, specs.OpMaskedEqual, 0xff00, 0x1200)}},
			// One index twice: either value matches.
			{Names: []string{"ioprio_get"}, Action: specs.ActErrno, ErrnoRet: errno(unix.ENOSTR), Args: []specs.LinuxSeccompArg{
				arg(1, specs.OpEqualTo, noPid+1), arg(1, specs.OpEqualTo, noPid+2),
			}},
			// Different indexes: both must match.
			{Names: []string{"tgkill"}, Action: specs.ActErrno, ErrnoRet: errno(unix.ENODATA), Args: []specs.LinuxSeccompArg{
				arg(0, specs.OpEqualTo, noPid), arg(2, specs.OpEqualTo, 0),
			}},
			{Names: []string{"getrusage"}, Action: specs.ActTrace, ErrnoRet: uintp(42)},
			{Names: []string{"getppid"}, Action: specs.ActLog},
		},
	}
	if runtime.GOARCH == "amd64" {
		// Multi-arch like Docker's profile; names of other ABIs resolve
		// to pseudo syscalls on x86_64 and must not break the load.
		s.Architectures = []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
		s.Syscalls = append(s.Syscalls, specs.LinuxSyscall{Names: []string{"socketcall", "stat64", "_llseek"}, Action: specs.ActErrno})
	}
	return s
}

func ruleProbes(dir string) result {
	return result{
		"getcwd":              getcwd(),
		"mkdirat":             mkdirat(dir),
		"getpid":              getpid(),
		"fsync EQ":            sys(unix.SYS_FSYNC, noFd),
		"fsync !EQ":           sys(unix.SYS_FSYNC, noFd+1),
		"fdatasync NE":        sys(unix.SYS_FDATASYNC, noFd+1),
		"fdatasync !NE":       sys(unix.SYS_FDATASYNC, noFd),
		"syncfs LT":           sys(unix.SYS_SYNCFS, noFd-1),
		"syncfs !LT":          sys(unix.SYS_SYNCFS, noFd),
		"getpgid LE":          sys(unix.SYS_GETPGID, noPid),
		"getpgid !LE":         sys(unix.SYS_GETPGID, noPid+1),
		"getsid GE":           sys(unix.SYS_GETSID, noPid),
		"getsid !GE":          sys(unix.SYS_GETSID, noPid-1),
		"sched_getsched GT":   sys(unix.SYS_SCHED_GETSCHEDULER, noPid+1),
		"sched_getsched !GT":  sys(unix.SYS_SCHED_GETSCHEDULER, noPid),
		"getpriority MASKED":  sys(unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, 0x7a1234),
		"getpriority !MASKED": sys(unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, 0x7a1334),
		"ioprio_get OR 1":     sys(unix.SYS_IOPRIO_GET, 1, noPid+1),
		"ioprio_get OR 2":     sys(unix.SYS_IOPRIO_GET, 1, noPid+2),
		"ioprio_get !OR":      sys(unix.SYS_IOPRIO_GET, 1, noPid+3),
		"tgkill AND":          sys(unix.SYS_TGKILL, noPid, noPid, 0),
		"tgkill !AND":         sys(unix.SYS_TGKILL, noPid, noPid, uintptr(unix.SIGCONT)),
		"getrusage TRACE":     sys(unix.SYS_GETRUSAGE, 0, 0),
		"getppid LOG":         sys(unix.SYS_GETPPID),
	}
}

func scenarioRules(dir string) (result, error) {
	other := onOtherThread()
	fd, err := loadResult(Load(ruleSpec()))
	if err != nil {
		return nil, err
	}
	res := ruleProbes(dir)
	res["listener"] = fd
	res["no_new_privs"] = noNewPrivs()
	res["other thread getcwd"] = other(getcwd)
	return res, nil
}

func TestLoadRules(t *testing.T) {
	t.Parallel()
	checkResult(t, runScenario(t, "rules"), result{
		"listener":            "-1",
		"no_new_privs":        "0", // Load must not set it
		"getcwd":              "EXDEV",
		"mkdirat":             "EPERM", // errnoRet defaults to EPERM
		"getpid":              "ok",
		"fsync EQ":            "EBADE",
		"fsync !EQ":           "EBADF",
		"fdatasync NE":        "EBADR",
		"fdatasync !NE":       "EBADF",
		"syncfs LT":           "EXFULL",
		"syncfs !LT":          "EBADF",
		"getpgid LE":          "ENOANO",
		"getpgid !LE":         "ESRCH",
		"getsid GE":           "EBADRQC",
		"getsid !GE":          "ESRCH",
		"sched_getsched GT":   "EBADSLT",
		"sched_getsched !GT":  "ESRCH",
		"getpriority MASKED":  "EBFONT",
		"getpriority !MASKED": "ESRCH",
		"ioprio_get OR 1":     "ENOSTR",
		"ioprio_get OR 2":     "ENOSTR",
		"ioprio_get !OR":      "ESRCH",
		"tgkill AND":          "ENODATA",
		"tgkill !AND":         "ESRCH",
		"getrusage TRACE":     "ENOSYS", // no tracer: the kernel fails the syscall
		"getppid LOG":         "ok",
		"other thread getcwd": "ok", // no TSYNC: only the loading thread is filtered
	})
}

// scenarioDefaultErrno allows every syscall libseccomp knows except
// getcwd and mkdirat, which therefore get defaultErrnoRet.
func scenarioDefaultErrno(dir string) (result, error) {
	var allowed []string
	for nr := 0; nr < 1024; nr++ {
		name, err := libseccomp.ScmpSyscall(nr).GetName()
		if err != nil || name == "getcwd" || name == "mkdirat" {
			continue
		}
		allowed = append(allowed, name)
	}
	fd, err := loadResult(Load(&specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(uint(unix.ENOTTY)),
		Syscalls: []specs.LinuxSyscall{
			{Names: allowed, Action: specs.ActAllow},
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOTTY))}, // same as default: dropped
		},
	}))
	if err != nil {
		return nil, err
	}
	return result{
		"listener": fd,
		"getcwd":   getcwd(),
		"mkdirat":  mkdirat(dir),
		"getpid":   getpid(),
		"getppid":  sys(unix.SYS_GETPPID),
	}, nil
}

func TestLoadDefaultErrnoRet(t *testing.T) {
	t.Parallel()
	checkResult(t, runScenario(t, "default-errno"), result{
		"listener": "-1",
		"getcwd":   "ENOTTY",
		"mkdirat":  "ENOTTY",
		"getpid":   "ok",
		"getppid":  "ok",
	})
}

func scenarioTSYNC(dir string) (result, error) {
	other := onOtherThread()
	s := ruleSpec()
	s.Flags = []specs.LinuxSeccompFlag{flagTSYNC}
	fd, err := loadResult(Load(s))
	if err != nil {
		return nil, err
	}
	return result{
		"listener":             fd,
		"getcwd":               getcwd(),
		"other thread getcwd":  other(getcwd),
		"other thread mkdirat": other(func() string { return mkdirat(dir) }),
		"other thread getpid":  other(getpid),
	}, nil
}

func TestLoadTSYNC(t *testing.T) {
	t.Parallel()
	checkResult(t, runScenario(t, "tsync"), result{
		"listener":             "-1",
		"getcwd":               "EXDEV",
		"other thread getcwd":  "EXDEV",
		"other thread mkdirat": "EPERM",
		"other thread getpid":  "ok",
	})
}

func scenarioFlags(dir string) (result, error) {
	s := ruleSpec()
	s.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv}
	fd, err := loadResult(Load(s))
	if err != nil {
		return nil, err
	}
	return result{"listener": fd, "getcwd": getcwd(), "mkdirat": mkdirat(dir)}, nil
}

func TestLoadFlags(t *testing.T) {
	t.Parallel()
	// WAIT_KILLABLE_RECV without a listener is accepted and ignored.
	checkResult(t, runScenario(t, "flags"), result{"listener": "-1", "getcwd": "EXDEV", "mkdirat": "EPERM"})
}

func notifySpec(flags ...specs.LinuxSeccompFlag) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         flags,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat"}, Action: specs.ActNotify},
			{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))},
		},
	}
}

// answerNotification waits for one notification on fd and fails the
// syscall with EXFULL. It returns the name of the notified syscall and the
// pid that made it.
func answerNotification(fd int) (string, uint32, error) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(pfd, 10000)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return "", 0, err
		}
		if n == 0 {
			return "", 0, errors.New("no notification within 10s")
		}
		break
	}
	req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(fd))
	if err != nil {
		return "", 0, fmt.Errorf("receiving notification: %w", err)
	}
	name, err := req.Data.Syscall.GetNameByArch(req.Data.Arch)
	if err != nil {
		return "", 0, err
	}
	resp := &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.EXFULL)}
	if err := libseccomp.NotifRespond(libseccomp.ScmpFd(fd), resp); err != nil {
		return "", 0, fmt.Errorf("responding: %w", err)
	}
	return name, req.Pid, nil
}

func fdTarget(fd int) string {
	target, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return err.Error()
	}
	return target
}

func notifyScenario(flags ...specs.LinuxSeccompFlag) func(string) (result, error) {
	return func(dir string) (result, error) {
		fd, err := Load(notifySpec(flags...))
		if err != nil {
			return nil, err
		}
		res := result{"listener": fdTarget(fd)}
		flagsFD, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			return nil, err
		}
		res["cloexec"] = strconv.FormatBool(flagsFD&unix.FD_CLOEXEC != 0)
		// The agent runs on another thread: this one will block in
		// mkdirat until the agent answers.
		type answer struct {
			name string
			pid  uint32
			err  error
		}
		answered := make(chan answer, 1)
		go func() {
			name, pid, err := answerNotification(fd)
			answered <- answer{name, pid, err}
		}()
		res["mkdirat"] = mkdirat(dir)
		a := <-answered
		if a.err != nil {
			return nil, a.err
		}
		res["notified syscall"] = a.name
		res["notified pid is us"] = strconv.FormatBool(int(a.pid) == os.Getpid())
		res["getcwd"] = getcwd()
		return res, nil
	}
}

var (
	scenarioNotify      = notifyScenario(specs.LinuxSeccompFlagWaitKillableRecv)
	scenarioNotifyTSYNC = notifyScenario(flagTSYNC)
)

func TestLoadNotify(t *testing.T) {
	t.Parallel()
	want := result{
		"listener":           "anon_inode:seccomp notify",
		"cloexec":            "true",
		"mkdirat":            "EXFULL",
		"notified syscall":   "mkdirat",
		"notified pid is us": "true",
		"getcwd":             "EXDEV",
	}
	for _, sc := range []string{"notify", "notify-tsync"} {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			checkResult(t, runScenario(t, sc), want)
		})
	}
}

// scenarioNotifyListener loads a NOTIFY filter, hands the listener to the
// agent (the parent test) with SendListener, then makes the notified call.
func scenarioNotifyListener(dir string) (result, error) {
	fd, err := Load(notifySpec())
	if err != nil {
		return nil, err
	}
	state := specs.ContainerProcessState{
		Pid:      os.Getpid(),
		Metadata: "agent-metadata",
		State:    specs.State{Version: specs.Version, ID: "ctr-1", Status: specs.StateCreating, Pid: os.Getpid(), Bundle: "/bundle"},
	}
	if err := SendListener(os.Getenv(childSock), state, fd); err != nil {
		return nil, err
	}
	unix.Close(fd)
	return result{"mkdirat": mkdirat(dir)}, nil
}

func TestSendListenerNotifyRoundTrip(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l := listenUnix(t, sock)
	c := startChild(t, "notify-listener", childSock+"="+sock)

	msg := acceptState(t, l)
	if len(msg.fds) != 1 {
		t.Fatalf("got %d fds, want 1", len(msg.fds))
	}
	seccompFD := msg.fds[0]
	defer unix.Close(seccompFD)
	if target := fdTarget(seccompFD); target != "anon_inode:seccomp notify" {
		t.Errorf("received fd is %s", target)
	}
	pid := c.cmd.Process.Pid
	want := specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      pid,
		Metadata: "agent-metadata",
		State:    specs.State{Version: specs.Version, ID: "ctr-1", Status: specs.StateCreating, Pid: pid, Bundle: "/bundle"},
	}
	if !stateEqual(msg.state, want) {
		t.Errorf("state = %+v\nwant %+v", msg.state, want)
	}

	name, npid, err := answerNotification(seccompFD)
	if err != nil {
		t.Fatalf("%v\nchild stderr:\n%s", err, c.stderr.String())
	}
	if name != "mkdirat" || int(npid) != pid {
		t.Errorf("notification for %s from pid %d, want mkdirat from %d", name, npid, pid)
	}
	checkResult(t, c.result(t), result{"mkdirat": "EXFULL"})
}

// scenarioKill makes getcwd fatal with action (KILL_PROCESS or TRAP).
func scenarioKill(action specs.LinuxSeccompAction) func(string) (result, error) {
	return func(dir string) (result, error) {
		_, err := Load(&specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: action}},
		})
		if err != nil {
			return nil, err
		}
		fmt.Fprintln(os.Stderr, "loaded")
		return result{"getcwd": getcwd()}, nil // must not return
	}
}

func TestLoadKillProcess(t *testing.T) {
	t.Parallel()
	c := startChild(t, "kill-process")
	err := c.wait(t)
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if err == nil || !ok || !ws.Signaled() || ws.Signal() != unix.SIGSYS {
		t.Fatalf("child: %v (%v), want killed by SIGSYS\nstdout: %s\nstderr:\n%s", err, ws, c.stdout.String(), c.stderr.String())
	}
	if !strings.Contains(c.stderr.String(), "loaded") {
		t.Errorf("child died before loading the filter:\n%s", c.stderr.String())
	}
}

func TestLoadTrap(t *testing.T) {
	t.Parallel()
	c := startChild(t, "trap")
	err := c.wait(t)
	// The Go runtime turns the SIGSYS sent by SECCOMP_RET_TRAP into a
	// crash report naming it.
	if err == nil || !strings.Contains(c.stderr.String(), "SIGSYS") {
		t.Fatalf("child: %v, want a SIGSYS crash\nstdout: %s\nstderr:\n%s", err, c.stdout.String(), c.stderr.String())
	}
	if !strings.Contains(c.stderr.String(), "loaded") {
		t.Errorf("child died before loading the filter:\n%s", c.stderr.String())
	}
}

// scenarioKillThread loads a KILL_THREAD filter on a helper thread and
// makes the fatal call there: that thread dies, the process lives on.
func scenarioKillThread(dir string) (result, error) {
	loaded := make(chan error, 1)
	returned := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		_, err := Load(&specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActKill}},
		})
		loaded <- err
		if err == nil {
			getcwd()
		}
		close(returned)
	}()
	if err := <-loaded; err != nil {
		return nil, err
	}
	res := result{"loading thread": "killed"}
	select {
	case <-returned:
		res["loading thread"] = "survived"
	case <-time.After(time.Second):
	}
	res["this thread getcwd"] = getcwd()
	return res, nil
}

func TestLoadKillThread(t *testing.T) {
	t.Parallel()
	checkResult(t, runScenario(t, "kill-thread"), result{"loading thread": "killed", "this thread getcwd": "ok"})
}

func TestLoadErrors(t *testing.T) {
	// Refused before anything reaches the kernel, so safe in-process.
	tests := []struct {
		spec    *specs.LinuxSeccomp
		wantErr string
	}{
		{&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"}, `unknown action "SCMP_ACT_FOO"`},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FOO"}}, `unknown flag "SECCOMP_FILTER_FLAG_FOO"`},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_FOO"}}, `unknown architecture "SCMP_ARCH_FOO"`},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_FOO"}}}}}, `unknown operator "SCMP_CMP_FOO"`},
	}
	for _, tc := range tests {
		fd, err := Load(tc.spec)
		if fd != -1 {
			t.Errorf("fd = %d on error", fd)
		}
		checkErr(t, err, tc.wantErr)
	}
	if fd, err := Load(nil); fd != -1 || err != nil {
		t.Errorf("Load(nil) = %d, %v", fd, err)
	}
}

// Listener helpers, shared with listener_linux_test.go.

type listenerMsg struct {
	state specs.ContainerProcessState
	raw   []byte
	fds   []int
}

func listenUnix(t *testing.T, path string) *net.UnixListener {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// acceptState accepts one connection and reads a whole container process
// state message from it, with the fds of its first sendmsg.
func acceptState(t *testing.T, l *net.UnixListener) listenerMsg {
	t.Helper()
	msg, err := readState(l)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func readState(l *net.UnixListener) (listenerMsg, error) {
	var msg listenerMsg
	l.SetDeadline(time.Now().Add(20 * time.Second))
	conn, err := l.AcceptUnix()
	if err != nil {
		return msg, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))

	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4*8))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return msg, err
	}
	msg.raw = append(msg.raw, buf[:n]...)
	cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return msg, err
	}
	for _, cm := range cmsgs {
		fds, err := unix.ParseUnixRights(&cm)
		if err != nil {
			return msg, err
		}
		msg.fds = append(msg.fds, fds...)
	}
	for {
		n, err := conn.Read(buf)
		msg.raw = append(msg.raw, buf[:n]...)
		if errors.Is(err, io.EOF) {
			break // the runtime closed the connection
		}
		if err != nil {
			return msg, err
		}
	}
	if err := json.Unmarshal(msg.raw, &msg.state); err != nil {
		return msg, fmt.Errorf("state %.200q: %w", msg.raw, err)
	}
	return msg, nil
}

func stateEqual(a, b specs.ContainerProcessState) bool {
	return a.Version == b.Version && a.Pid == b.Pid && a.Metadata == b.Metadata &&
		strings.Join(a.Fds, ",") == strings.Join(b.Fds, ",") &&
		a.State.Version == b.State.Version && a.State.ID == b.State.ID && a.State.Status == b.State.Status &&
		a.State.Pid == b.State.Pid && a.State.Bundle == b.State.Bundle && maps.Equal(a.State.Annotations, b.State.Annotations)
}
