//go:build !linux

package logger

import "github.com/berth-dev/berth/internal/errdefs"

// sendMemfd needs memfd_create(2): journald is Linux-only.
func (l *journaldLogger) sendMemfd(b []byte) error {
	return errdefs.Newf(errdefs.NotImplemented, "logger: journald is not supported on this platform")
}
