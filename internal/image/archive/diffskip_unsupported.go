//go:build !linux

package archive

import (
	"context"
	"io"
	"io/fs"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// DiffSkipping needs Linux.
func DiffSkipping(context.Context, []string, string, io.Writer, func(string, fs.FileMode, int64) bool) (digest.Digest, int64, error) {
	return "", 0, errdefs.Newf(errdefs.NotImplemented, "layer diff is only supported on Linux")
}

// DiffSkippingStats needs Linux.
func DiffSkippingStats(context.Context, []string, string, io.Writer, func(string, fs.FileMode, int64) bool) (digest.Digest, int64, DiffStats, error) {
	return "", 0, DiffStats{}, errdefs.Newf(errdefs.NotImplemented, "layer diff is only supported on Linux")
}
