//go:build !linux

package cgroup

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// New always fails outside Linux.
func New(cgroupsPath, containerID string, r *specs.LinuxResources) (Manager, error) {
	return nil, ErrUnsupported
}

// Load always fails outside Linux.
func Load(paths map[string]string) (Manager, error) {
	return nil, ErrUnsupported
}

// Mode returns "" outside Linux.
func Mode() string { return "" }
