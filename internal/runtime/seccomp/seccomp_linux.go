//go:build cgo

package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// maxInstructions is the kernel's limit on the length of a seccomp
// program (BPF_MAXINSNS).
const maxInstructions = 4096

// Validate checks s without installing anything, so that a bad bundle is
// refused at create time: every action, operator, architecture and flag
// name, errnoRet values and argument indexes, the listener fields, and
// that the linked libseccomp and the running kernel can build and accept
// the filter (flags the kernel does not know are reported here too).
// Syscall names unknown on this architecture are not an error: Load skips
// them. A nil s (no seccomp in the config) is valid.
func Validate(s *specs.LinuxSeccomp) error {
	if s == nil {
		return nil
	}
	p, err := convert(s)
	if err != nil {
		return err
	}
	if s.ListenerMetadata != "" && s.ListenerPath == "" {
		return errors.New("seccomp: listenerMetadata is set but listenerPath is not")
	}
	if p.notify && s.ListenerPath == "" {
		return fmt.Errorf("seccomp: %s is used but listenerPath is empty: no agent would receive the notifications and the notified syscalls would block forever", specs.ActNotify)
	}
	if _, err := kernelFlags(p); err != nil {
		return err
	}
	f, err := buildFilter(p)
	if err != nil {
		return err
	}
	f.Release()
	return nil
}

// Load compiles s and installs it on the calling OS thread. The caller
// must have called runtime.LockOSThread and is expected to execve from
// this thread; the filter reaches the other threads of the process only
// when s asks for SECCOMP_FILTER_FLAG_TSYNC.
//
// Load never sets no_new_privs: whether the container gets it is the
// runtime's decision (process.noNewPrivileges), so the caller must either
// set it before calling Load or hold CAP_SYS_ADMIN.
//
// When the filter uses SCMP_ACT_NOTIFY, Load returns the seccomp listener
// fd (close-on-exec, owned by the caller); otherwise it returns -1. A nil
// s installs nothing and returns -1.
func Load(s *specs.LinuxSeccomp) (listenerFD int, err error) {
	if s == nil {
		return -1, nil
	}
	p, err := convert(s)
	if err != nil {
		return -1, err
	}
	flags, err := kernelFlags(p)
	if err != nil {
		return -1, err
	}
	f, err := buildFilter(p)
	if err != nil {
		return -1, err
	}
	insns, err := exportBPF(f)
	f.Release()
	if err != nil {
		return -1, err
	}
	return install(insns, flags)
}

// buildFilter makes a libseccomp filter for p. The caller releases it.
func buildFilter(p *program) (*libseccomp.ScmpFilter, error) {
	f, err := libseccomp.NewFilter(p.defaultAction)
	if err != nil {
		return nil, fmt.Errorf("seccomp: creating filter: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Release()
		}
	}()

	// Berth loads the exported program itself (see install), so these
	// attributes do not reach the kernel; they are turned off anyway so
	// that the filter says what this package does: never set
	// no_new_privs, and no TSYNC unless the config asks for it.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("seccomp: clearing the no_new_privs attribute: %w", err)
	}

	for i, a := range p.arches {
		if err := f.AddArch(a); err != nil {
			if errors.Is(err, unix.EDOM) {
				native, _ := libseccomp.GetNativeArch()
				return nil, fmt.Errorf("seccomp: architectures[%d]: %s cannot share a filter with the native architecture %s (different byte order): %w", i, archName(a), archName(native), err)
			}
			return nil, fmt.Errorf("seccomp: architectures[%d]: %s: %w", i, archName(a), err)
		}
	}

	for _, r := range p.rules {
		call, err := libseccomp.GetSyscallFromName(r.syscall)
		if err != nil {
			// Not a syscall on this architecture (or one libseccomp
			// does not know yet): nothing to filter.
			continue
		}
		if len(r.condSets) == 0 {
			if err := f.AddRule(call, r.action); err != nil {
				return nil, fmt.Errorf("seccomp: adding rule for %s (%s): %w", r.syscall, actionName(r.action), err)
			}
			continue
		}
		for _, conds := range r.condSets {
			if err := f.AddRuleConditional(call, r.action, conds); err != nil {
				return nil, fmt.Errorf("seccomp: adding rule for %s (%s) with %d argument condition(s): %w", r.syscall, actionName(r.action), len(conds), err)
			}
		}
	}
	ok = true
	return f, nil
}

// exportBPF returns the compiled classic BPF program of f.
func exportBPF(f *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	raw, err := f.ExportBPFMem()
	if errors.Is(err, unix.EOPNOTSUPP) {
		// libseccomp < 2.6 can only write to an fd.
		raw, err = exportBPFToMemfd(f)
	}
	if err != nil {
		return nil, fmt.Errorf("seccomp: exporting the compiled filter: %w", err)
	}
	const insnSize = 8 // struct sock_filter
	if len(raw) == 0 || len(raw)%insnSize != 0 {
		return nil, fmt.Errorf("seccomp: libseccomp produced a %d byte program, not a whole number of instructions", len(raw))
	}
	insns := make([]unix.SockFilter, len(raw)/insnSize)
	for i := range insns {
		b := raw[i*insnSize:]
		insns[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:2]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:8]),
		}
	}
	return insns, nil
}

func exportBPFToMemfd(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("berth-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	file := os.NewFile(uintptr(fd), "berth-seccomp-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, err
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(file)
}

// kernelFlags works out the seccomp(2) flags for p and checks that the
// running kernel knows each of them.
func kernelFlags(p *program) (uint, error) {
	flags := p.flags
	if p.notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	} else {
		// The flag only changes how notifications are received; the
		// kernel refuses it on a filter without a listener.
		flags &^= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	}

	for _, name := range p.flagNames {
		bit := filterFlags[name]
		if flags&bit == 0 {
			continue
		}
		probe := bit
		if bit == unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV {
			probe |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
		}
		if known, err := kernelKnowsFlags(probe); err == nil && !known {
			return 0, fmt.Errorf("seccomp: flag %s is not supported by the running kernel", name)
		}
	}
	if p.notify {
		if known, err := kernelKnowsFlags(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER); err == nil && !known {
			return 0, fmt.Errorf("seccomp: %s is not supported by the running kernel (needs Linux 5.0)", specs.ActNotify)
		}
	}

	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 {
		// Ask for a plain error instead of a thread id when another
		// thread cannot be synchronised. The kernel insists on it when
		// TSYNC is combined with a listener, whose fd is also returned
		// as a positive number.
		known, err := kernelKnowsFlags(unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH)
		switch {
		case err == nil && known:
			flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		case flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0:
			return 0, fmt.Errorf("seccomp: %s together with %s is not supported by the running kernel (needs Linux 5.7)", flagTSYNC, specs.ActNotify)
		}
	}
	return flags, nil
}

// kernelKnowsFlags reports whether the kernel accepts the seccomp(2) filter
// flags. It passes a NULL program: the kernel checks the flags first
// (EINVAL when it does not know them) and only then reads the program
// (EFAULT), so nothing is ever installed. Any other errno (ENOSYS, or EPERM
// from a filter around this process) means the answer is unknown.
func kernelKnowsFlags(flags uint) (bool, error) {
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), 0)
	switch errno {
	case unix.EFAULT:
		return true, nil
	case unix.EINVAL:
		return false, nil
	default:
		return false, errno
	}
}

// install hands the program to seccomp(2) for the calling thread.
func install(insns []unix.SockFilter, flags uint) (int, error) {
	if len(insns) > maxInstructions {
		return -1, fmt.Errorf("seccomp: the compiled filter has %d instructions, more than the kernel limit of %d", len(insns), maxInstructions)
	}
	prog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(insns)
	runtime.KeepAlive(&prog)

	if errno != 0 {
		switch errno {
		case unix.EACCES:
			return -1, fmt.Errorf("seccomp: loading filter: %w (the thread has neither no_new_privs set nor CAP_SYS_ADMIN)", errno)
		case unix.ESRCH:
			return -1, fmt.Errorf("seccomp: loading filter with %s: %w (another thread of the process could not be synchronised)", flagTSYNC, errno)
		default:
			return -1, fmt.Errorf("seccomp: loading filter (flags %s): %w", flagString(flags), errno)
		}
	}
	if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		// Without TSYNC_ESRCH the kernel refuses TSYNC with a listener,
		// so a positive result here is the listener fd.
		return int(r), nil
	}
	if r != 0 {
		// TSYNC without TSYNC_ESRCH (old kernel): r is the id of the
		// thread that could not be synchronised. The filter is on this
		// thread but not on every thread, which is not what was asked.
		return -1, fmt.Errorf("seccomp: loading filter with %s: thread %d could not be synchronised", flagTSYNC, r)
	}
	return -1, nil
}

// flagString renders seccomp(2) filter flags for error messages.
func flagString(flags uint) string {
	names := []struct {
		bit  uint
		name string
	}{
		{unix.SECCOMP_FILTER_FLAG_TSYNC, "TSYNC"},
		{unix.SECCOMP_FILTER_FLAG_LOG, "LOG"},
		{unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, "SPEC_ALLOW"},
		{unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, "NEW_LISTENER"},
		{unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH, "TSYNC_ESRCH"},
		{unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, "WAIT_KILLABLE_RECV"},
	}
	var parts []string
	for _, n := range names {
		if flags&n.bit != 0 {
			parts = append(parts, n.name)
			flags &^= n.bit
		}
	}
	if flags != 0 {
		parts = append(parts, fmt.Sprintf("%#x", flags))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "|")
}

// actionName gives the runtime-spec name of a libseccomp action, for
// error messages.
func actionName(a libseccomp.ScmpAction) string {
	base := a & 0xffff
	for name, act := range actions {
		if act == base && name != specs.ActKill {
			if base == libseccomp.ActErrno || base == libseccomp.ActTrace {
				return fmt.Sprintf("%s errno %d", name, uint16(a.GetReturnCode()))
			}
			return string(name)
		}
	}
	return a.String()
}

// archName gives the runtime-spec name of a libseccomp architecture.
func archName(a libseccomp.ScmpArch) string {
	for name, arch := range arches {
		if arch == a {
			return string(name)
		}
	}
	return a.String()
}
