//go:build !linux || !cgo

package seccomp

import (
	"github.com/berth-dev/berth/internal/runtime/seccomp/bpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Validate refuses any seccomp config: this build cannot install one.
func Validate(s *specs.LinuxSeccomp) error {
	if s == nil {
		return nil
	}
	return ErrNotImplemented
}

// Compile refuses any seccomp config: this build cannot compile one.
func Compile(s *specs.LinuxSeccomp, cacheDir string) (*bpf.Program, error) {
	if s == nil {
		return nil, nil
	}
	return nil, ErrNotImplemented
}

// Load refuses any seccomp config: this build cannot install one.
func Load(s *specs.LinuxSeccomp) (listenerFD int, err error) {
	if s == nil {
		return -1, nil
	}
	return -1, ErrNotImplemented
}

// SendListener is not implemented in this build.
func SendListener(listenerPath string, state specs.ContainerProcessState, fd int) error {
	return ErrNotImplemented
}

// Features reports that seccomp is not compiled in.
func Features() *features.Seccomp {
	enabled := false
	return &features.Seccomp{Enabled: &enabled}
}

// Warm does nothing in this build.
func Warm(cacheDir string) {}
