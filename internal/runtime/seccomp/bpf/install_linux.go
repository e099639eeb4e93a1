package bpf

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install loads p on the calling OS thread with seccomp(2)
// (SECCOMP_SET_MODE_FILTER and p.Flags). The caller must have called
// runtime.LockOSThread and is expected to execve from this thread; the
// filter reaches the other threads of the process only with
// SECCOMP_FILTER_FLAG_TSYNC.
//
// Install never sets no_new_privs: the caller must either have set it or
// hold CAP_SYS_ADMIN.
//
// With SECCOMP_FILTER_FLAG_NEW_LISTENER in p.Flags it returns the listener
// fd (close-on-exec, owned by the caller); otherwise -1.
func (p *Program) Install() (listenerFD int, err error) {
	if err := p.Check(); err != nil {
		return -1, err
	}
	insns := make([]unix.SockFilter, p.Len())
	for i := range insns {
		code, jt, jf, k := p.Insn(i)
		insns[i] = unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
	}
	flags := p.Flags
	prog := unix.SockFprog{Len: uint16(len(insns)), Filter: &insns[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(insns)
	runtime.KeepAlive(&prog)

	if errno != 0 {
		switch errno {
		case unix.EACCES:
			return -1, fmt.Errorf("seccomp: loading filter: %w (the thread has neither no_new_privs set nor CAP_SYS_ADMIN)", errno)
		case unix.ESRCH:
			return -1, fmt.Errorf("seccomp: loading filter with SECCOMP_FILTER_FLAG_TSYNC: %w (another thread of the process could not be synchronised)", errno)
		default:
			return -1, fmt.Errorf("seccomp: loading filter (flags %s): %w", FlagString(flags), errno)
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
		return -1, fmt.Errorf("seccomp: loading filter with SECCOMP_FILTER_FLAG_TSYNC: thread %d could not be synchronised", r)
	}
	return -1, nil
}
