package initproc

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var rlimitByName = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// capsFromNames maps "CAP_X" names to capability values; unknown names are
// an error, caps the running kernel does not know are skipped.
func capsFromNames(names []string) ([]capability.Cap, error) {
	last, _ := capability.LastCap()
	var out []capability.Cap
	for _, n := range names {
		c, ok := capByName[strings.ToUpper(n)]
		if !ok {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		if c > last {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

var capByName = func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
}()

// setCredentials drops the bounding set, switches uid/gid/groups keeping
// capabilities across the switch, then installs the five capability sets.
func setCredentials(p *specs.Process) error {
	caps, err := capability.NewPid2(0)
	if err != nil {
		return err
	}
	// No Load: every set is replaced below, so the current ones (parsed
	// from /proc/self/status) are not needed.
	pc := p.Capabilities
	if pc == nil {
		pc = &specs.LinuxCapabilities{}
	}
	sets := []struct {
		which capability.CapType
		names []string
	}{
		{capability.BOUNDING, pc.Bounding}, {capability.EFFECTIVE, pc.Effective},
		{capability.PERMITTED, pc.Permitted}, {capability.INHERITABLE, pc.Inheritable},
		{capability.AMBIENT, pc.Ambient},
	}
	caps.Clear(capability.CAPS | capability.BOUNDS | capability.AMBS)
	for _, s := range sets {
		cs, err := capsFromNames(s.names)
		if err != nil {
			return err
		}
		caps.Set(s.which, cs...)
	}
	// The bounding set can only shrink, and doing so needs CAP_SETPCAP,
	// which we still have.
	if err := caps.Apply(capability.BOUNDS); err != nil {
		return fmt.Errorf("drop bounding capabilities: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	gids := make([]int, 0, len(p.User.AdditionalGids))
	for _, g := range p.User.AdditionalGids {
		gids = append(gids, int(g))
	}
	if err := threadSetgroups(gids); err != nil && !(errors.Is(err, unix.EPERM) && len(gids) == 0) {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := threadSetres(unix.SYS_SETRESGID, p.User.GID); err != nil {
		return fmt.Errorf("setgid %d: %w", p.User.GID, err)
	}
	if err := threadSetres(unix.SYS_SETRESUID, p.User.UID); err != nil {
		return fmt.Errorf("setuid %d: %w", p.User.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	if err := caps.Apply(capability.CAPS); err != nil {
		return fmt.Errorf("set capabilities: %w", err)
	}
	if err := caps.Apply(capability.AMBS); err != nil {
		return fmt.Errorf("set ambient capabilities: %w", err)
	}
	return nil
}

// applyLSM asks the kernel to switch to the AppArmor profile or SELinux
// label at execve. A label that the kernel cannot apply is an error: running
// unconfined when confinement was asked for would be a silent downgrade.
func applyLSM(p *specs.Process) error {
	if p.ApparmorProfile != "" {
		if !apparmorEnabled() {
			return fmt.Errorf("apparmor profile %q requested but AppArmor is not enabled on this host", p.ApparmorProfile)
		}
		if err := writeAttr("apparmor/exec", "exec "+p.ApparmorProfile); err != nil {
			return fmt.Errorf("apparmor profile %q: %w", p.ApparmorProfile, err)
		}
	}
	if p.SelinuxLabel != "" {
		if !selinuxEnabled() {
			return fmt.Errorf("selinux label %q requested but SELinux is not enabled on this host", p.SelinuxLabel)
		}
		if err := writeAttr("exec", p.SelinuxLabel); err != nil {
			return fmt.Errorf("selinux label %q: %w", p.SelinuxLabel, err)
		}
	}
	return nil
}

func apparmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
}

func selinuxEnabled() bool {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/selinux", &st) == nil && st.Type == 0xf97cff8c {
		return true
	}
	_, err := os.Stat("/sys/fs/selinux/enforce")
	return err == nil
}

func writeAttr(name, value string) error {
	f, err := os.OpenFile("/proc/thread-self/attr/"+name, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write([]byte(value))
	return err
}

func setPersonality(p *specs.LinuxPersonality) error {
	var dom uintptr
	switch p.Domain {
	case specs.PerLinux:
		dom = 0x0000
	case specs.PerLinux32:
		dom = 0x0008
	default:
		return fmt.Errorf("unknown personality domain %q", p.Domain)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, dom, 0, 0); e != 0 {
		return fmt.Errorf("personality: %w", e)
	}
	return nil
}

// applyScheduling applies process.scheduler and process.ioPriority.
func applyScheduling(p *specs.Process) error {
	if p.IOPriority != nil {
		classes := map[specs.IOPriorityClass]uintptr{
			specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
		}
		cl, ok := classes[p.IOPriority.Class]
		if !ok {
			return fmt.Errorf("unknown ioPriority class %q", p.IOPriority.Class)
		}
		prio := cl<<13 | uintptr(p.IOPriority.Priority)
		const ioprioWhoProcess = 1
		if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, prio); e != 0 {
			return fmt.Errorf("ioprio_set: %w", e)
		}
	}
	if s := p.Scheduler; s != nil {
		policies := map[specs.LinuxSchedulerPolicy]uint32{
			specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
			specs.SchedIdle: 5, specs.SchedDeadline: 6,
		}
		pol, ok := policies[s.Policy]
		if !ok {
			return fmt.Errorf("unknown scheduler policy %q", s.Policy)
		}
		attr := unix.SchedAttr{
			Size: unix.SizeofSchedAttr, Policy: pol, Nice: s.Nice, Priority: uint32(s.Priority),
			Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period,
		}
		flagVals := map[specs.LinuxSchedulerFlag]uint64{
			specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
			specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
			specs.SchedFlagUtilClampMax: 0x40,
		}
		for _, f := range s.Flags {
			v, ok := flagVals[f]
			if !ok {
				return fmt.Errorf("unknown scheduler flag %q", f)
			}
			attr.Flags |= v
		}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			return fmt.Errorf("sched_setattr: %w", err)
		}
	}
	return nil
}

// setupConsole creates a pty in the container's devpts, hands the master to
// the console socket and makes the slave our stdio and controlling terminal.
func setupConsole(cfg *Config, bindConsole bool) error {
	if cfg.ConsoleFD < 0 {
		return errors.New("terminal requested but no console socket was given")
	}
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer master.Close()
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master, with no path lookup
	// that the container could race.
	sfd, _, e := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if e != 0 {
		return fmt.Errorf("open pty slave: %w", e)
	}
	slave := os.NewFile(sfd, "pty-slave")
	defer slave.Close()
	if cs := cfg.Process.ConsoleSize; cs != nil {
		ws := &unix.Winsize{Row: uint16(cs.Height), Col: uint16(cs.Width)}
		if err := unix.IoctlSetWinsize(int(sfd), unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set console size: %w", err)
		}
	}
	if bindConsole {
		n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
		if err != nil {
			return fmt.Errorf("pty number: %w", err)
		}
		if err := bindDevConsole(fmt.Sprintf("/dev/pts/%d", n)); err != nil {
			return err
		}
	}
	rights := unix.UnixRights(int(master.Fd()))
	if err := unix.Sendmsg(cfg.ConsoleFD, []byte("/dev/ptmx"), rights, nil, 0); err != nil {
		return fmt.Errorf("send console to console socket: %w", err)
	}
	unix.Close(cfg.ConsoleFD)
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(sfd), fd, 0); err != nil {
			return fmt.Errorf("dup pty: %w", err)
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}

func bindDevConsole(slavePath string) error {
	f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if !errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("create /dev/console: %w", err)
		}
		_ = os.Remove("/dev/console")
		if f, err = os.OpenFile("/dev/console", os.O_CREATE|os.O_EXCL|os.O_RDONLY|unix.O_CLOEXEC, 0o600); err != nil {
			return fmt.Errorf("create /dev/console: %w", err)
		}
	}
	f.Close()
	if err := unix.Mount(slavePath, "/dev/console", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /dev/console: %w", err)
	}
	return nil
}

var _ = unsafe.Sizeof(0)

// The credential calls are the raw, per-thread system calls. Go's
// syscall.Setresuid and friends change every thread of the process: they
// stop the world and signal each thread, which cost up to 15 ms on a busy
// machine. Only this thread's credentials matter: the init is locked to
// it (see init), capabilities are set on it, and it is the thread that
// calls execve, which ends every other thread and keeps this one's
// credentials.
func threadSetgroups(gids []int) error {
	g := make([]uint32, len(gids))
	for i, v := range gids {
		g[i] = uint32(v)
	}
	var p unsafe.Pointer
	if len(g) > 0 {
		p = unsafe.Pointer(&g[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(g)), uintptr(p), 0); e != 0 {
		return e
	}
	return nil
}

func threadSetres(nr uintptr, id uint32) error {
	if _, _, e := unix.RawSyscall(nr, uintptr(id), uintptr(id), uintptr(id)); e != 0 {
		return e
	}
	return nil
}
