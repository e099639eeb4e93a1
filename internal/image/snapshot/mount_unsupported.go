//go:build !linux

package snapshot

import "github.com/berth-dev/berth/internal/errdefs"

// MountAll is only implemented on Linux.
func MountAll([]Mount, string) error {
	return errdefs.Newf(errdefs.NotImplemented, "mounting snapshots is only supported on linux")
}

// Unmount is only implemented on Linux.
func Unmount(string) error {
	return errdefs.Newf(errdefs.NotImplemented, "mounting snapshots is only supported on linux")
}
