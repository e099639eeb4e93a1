//go:build !unix

package logger

import "github.com/berth-dev/berth/internal/errdefs"

// lockLog needs flock(2); berth's file drivers are unix-only.
func lockLog(path string, exclusive bool) (func(), error) {
	return nil, errdefs.Newf(errdefs.NotImplemented, "logger: log file locking is not supported on this platform")
}
