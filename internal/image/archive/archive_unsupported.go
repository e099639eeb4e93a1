//go:build !linux

package archive

import (
	"context"
	"io"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Apply is only implemented on Linux.
func Apply(context.Context, string, io.Reader, ApplyOptions) (ApplyResult, error) {
	return ApplyResult{}, errdefs.Newf(errdefs.NotImplemented, "unpacking layers is only supported on linux")
}

// Diff is only implemented on Linux.
func Diff(context.Context, []string, string, io.Writer) (digest.Digest, int64, error) {
	return "", 0, errdefs.Newf(errdefs.NotImplemented, "layer diffs are only supported on linux")
}

// Tar is only implemented on Linux.
func Tar(context.Context, string, io.Writer) error {
	return errdefs.Newf(errdefs.NotImplemented, "tar export is only supported on linux")
}

// ApplyIn is only implemented on Linux.
func ApplyIn(context.Context, int, string, io.Reader, ApplyOptions) (ApplyResult, error) {
	return ApplyResult{}, errdefs.Newf(errdefs.NotImplemented, "unpacking archives is only supported on linux")
}

// TarAt is only implemented on Linux.
func TarAt(context.Context, int, string, string, io.Writer, TarOptions) error {
	return errdefs.Newf(errdefs.NotImplemented, "tar export is only supported on linux")
}

// IsPseudoFS is only implemented on Linux.
func IsPseudoFS(int) bool { return false }
