//go:build !linux

package shim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Spawn is Linux only.
func Spawn(ctx context.Context, o SpawnOpts) (*Client, error) {
	return nil, errdefs.Newf(errdefs.NotImplemented, "berth-shim runs on Linux only")
}

func sockAddr(dir, name string) (string, func(), error) {
	return filepath.Join(dir, name), func() {}, nil
}

// Main is Linux only.
func Main() int {
	fmt.Fprintln(os.Stderr, "berth-shim: Linux only")
	return 2
}

// ReleaseSpare does nothing off Linux.
func ReleaseSpare() {}
