//go:build cgo

package seccomp

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/berth-dev/berth/internal/memtrim"
	"github.com/berth-dev/berth/internal/runtime/seccomp/bpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Validate checks s without installing anything, so that a bad bundle is
// refused at create time: every action, operator, architecture and flag
// name, errnoRet values and argument indexes, the listener fields, and
// that the linked libseccomp and the running kernel can build and accept
// the filter (flags the kernel does not know are reported here too).
// Syscall names unknown on this architecture are not an error: Load skips
// them. A nil s (no seccomp in the config) is valid.
//
// The compiled program is kept in the process's cache (see Compile), so
// a Load or Compile of the same config after Validate does not compile
// it again.
func Validate(s *specs.LinuxSeccomp) error {
	_, err := Compile(s, "")
	return err
}

// Compile checks s as Validate does and returns the program to install
// for it: the BPF libseccomp generates for s and the seccomp(2) flags
// Load would use. A nil s gives a nil program.
//
// Each distinct config is compiled once: the result is kept in memory for
// the life of the process and, when cacheDir is not empty, in a file
// there (see cache_linux.go), so that the next process on the host that
// compiles the same config reads it instead. A cache entry that is not
// exactly what was written for this config, libseccomp, kernel and
// binary is never used: it is compiled again and replaced. The caller
// must not modify the returned program's Filter.
func Compile(s *specs.LinuxSeccomp, cacheDir string) (*bpf.Program, error) {
	if s == nil {
		return nil, nil
	}
	return compile(s, cacheDir, true)
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
//
// The container init does not call Load: it installs the program the
// runtime compiled with Compile (bpf.Program.Install), which is what Load
// does after compiling.
func Load(s *specs.LinuxSeccomp) (listenerFD int, err error) {
	if s == nil {
		return -1, nil
	}
	prog, err := compile(s, "", false)
	if err != nil {
		return -1, err
	}
	return prog.Install()
}

// compile returns the program for s: the compiled filter, from the caches
// when it is there, and the seccomp(2) flags for the running kernel.
// checkListener adds Validate's checks of the listener fields.
//
// On a cache hit s is not converted again: the entry was compiled from a
// config with the same JSON by this same binary (the key says so), which
// converted without error. Only the flags and whether the filter notifies
// are read from it, as convert would.
func compile(s *specs.LinuxSeccomp, cacheDir string, checkListener bool) (*bpf.Program, error) {
	key, keyErr := keyOf(s)
	var filter []byte
	if keyErr == nil {
		filter = lookupFilter(key, cacheDir)
	}
	var p *program
	if filter != nil {
		flags, names, err := convertFlags(s.Flags)
		if err != nil {
			return nil, err
		}
		p = &program{flags: flags, flagNames: names, notify: usesNotify(s)}
	} else {
		var err error
		if p, err = convert(s); err != nil {
			return nil, err
		}
	}
	if checkListener {
		if s.ListenerMetadata != "" && s.ListenerPath == "" {
			return nil, errors.New("seccomp: listenerMetadata is set but listenerPath is not")
		}
		if p.notify && s.ListenerPath == "" {
			return nil, fmt.Errorf("seccomp: %s is used but listenerPath is empty: no agent would receive the notifications and the notified syscalls would block forever", specs.ActNotify)
		}
	}
	flags, err := kernelFlags(p)
	if err != nil {
		return nil, err
	}
	if filter == nil {
		if filter, err = compileFilter(p); err != nil {
			return nil, err
		}
		if keyErr == nil {
			filter = storeFilter(key, cacheDir, filter)
		}
	}
	return &bpf.Program{Filter: filter, Flags: flags}, nil
}

// compileFilter runs libseccomp on p and returns the exported program.
func compileFilter(p *program) ([]byte, error) {
	compiles.Add(1)
	f, err := buildFilter(p)
	if err != nil {
		return nil, err
	}
	raw, err := exportBPF(f)
	f.Release()
	memtrim.TrimCHeap()
	if err != nil {
		return nil, err
	}
	return raw, nil
}

// optimizeTree selects libseccomp's binary-tree layout (see buildFilter);
// a test turns it off to compare both layouts.
var optimizeTree = true

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

	// A binary tree over the syscall numbers rather than libseccomp's
	// default linear chain of comparisons: the same decision for every
	// syscall and argument (TestOptimizedProgramDecidesAlike), but
	// installing it costs the kernel about half as much (Docker's
	// profile: ~0.3 instead of ~0.7 ms here, on the path of every
	// container start). The kernel's part is less the JIT than
	// seccomp_cache_prepare, which runs the filter for every syscall
	// number of each architecture to find the always-allowed ones: a walk
	// of depth log(n) each instead of one down the chain. A libseccomp
	// without the attribute (< 2.5) builds the chain.
	if optimizeTree {
		_ = f.SetOptimize(2)
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

// exportBPF returns the compiled classic BPF program of f: struct
// sock_filter[] in the native byte order, as the kernel takes it.
func exportBPF(f *libseccomp.ScmpFilter) ([]byte, error) {
	raw, err := f.ExportBPFMem()
	if errors.Is(err, unix.EOPNOTSUPP) {
		// libseccomp < 2.6 can only write to an fd.
		raw, err = exportBPFToMemfd(f)
	}
	if err != nil {
		return nil, fmt.Errorf("seccomp: exporting the compiled filter: %w", err)
	}
	if len(raw) == 0 || len(raw)%bpf.InsnSize != 0 {
		return nil, fmt.Errorf("seccomp: libseccomp produced a %d byte program, not a whole number of instructions", len(raw))
	}
	if n := len(raw) / bpf.InsnSize; n > bpf.MaxInstructions {
		return nil, fmt.Errorf("seccomp: the compiled filter has %d instructions, more than the kernel limit of %d", n, bpf.MaxInstructions)
	}
	return raw, nil
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

// flagString renders seccomp(2) filter flags for error messages.
func flagString(flags uint) string { return bpf.FlagString(flags) }

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
