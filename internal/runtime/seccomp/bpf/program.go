// Package bpf installs a seccomp filter that was compiled beforehand, with
// the seccomp(2) system call and nothing else: no libseccomp, no cgo. It
// is what the container init links (see package initproc), so that the
// init never compiles a filter on the hot path; the runtime parent
// compiles it (package seccomp, which caches the result) and sends the
// Program over the sync socket.
//
// It must not decide anything about the filter: the instructions and the
// seccomp(2) flags arrive ready to use.
package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// InsnSize is the size of one classic BPF instruction (struct sock_filter).
const InsnSize = 8

// MaxInstructions is the kernel's limit on the length of a seccomp program
// (BPF_MAXINSNS).
const MaxInstructions = 4096

// Program is a compiled seccomp filter ready for seccomp(2).
type Program struct {
	// Filter is the classic BPF program, an array of struct sock_filter
	// in the native byte order: exactly what libseccomp's
	// seccomp_export_bpf writes for the config.
	Filter []byte `json:"filter"`
	// Flags are the SECCOMP_SET_MODE_FILTER flags to load it with,
	// SECCOMP_FILTER_FLAG_NEW_LISTENER included when the filter notifies.
	Flags uint `json:"flags"`
}

// Check verifies that p is a loadable program: a whole number of
// instructions, at least one and at most MaxInstructions.
func (p *Program) Check() error {
	if p == nil {
		return errors.New("seccomp: no program")
	}
	n := len(p.Filter)
	if n == 0 || n%InsnSize != 0 {
		return fmt.Errorf("seccomp: a %d byte program is not a whole number of instructions", n)
	}
	if n/InsnSize > MaxInstructions {
		return fmt.Errorf("seccomp: the compiled filter has %d instructions, more than the kernel limit of %d", n/InsnSize, MaxInstructions)
	}
	return nil
}

// Len is the number of instructions of p.
func (p *Program) Len() int { return len(p.Filter) / InsnSize }

// Insn decodes instruction i of p: code, jt, jf, k.
func (p *Program) Insn(i int) (code uint16, jt, jf uint8, k uint32) {
	b := p.Filter[i*InsnSize : (i+1)*InsnSize]
	return binary.NativeEndian.Uint16(b[0:2]), b[2], b[3], binary.NativeEndian.Uint32(b[4:8])
}

// Seccomp(2) filter flags, as in linux/seccomp.h (kept here so that the
// names below do not depend on the platform's x/sys/unix).
const (
	flagTSYNC            = 1 << 0
	flagLog              = 1 << 1
	flagSpecAllow        = 1 << 2
	flagNewListener      = 1 << 3
	flagTSYNCESRCH       = 1 << 4
	flagWaitKillableRecv = 1 << 5
)

// FlagString renders seccomp(2) filter flags for error messages.
func FlagString(flags uint) string {
	names := []struct {
		bit  uint
		name string
	}{
		{flagTSYNC, "TSYNC"},
		{flagLog, "LOG"},
		{flagSpecAllow, "SPEC_ALLOW"},
		{flagNewListener, "NEW_LISTENER"},
		{flagTSYNCESRCH, "TSYNC_ESRCH"},
		{flagWaitKillableRecv, "WAIT_KILLABLE_RECV"},
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
