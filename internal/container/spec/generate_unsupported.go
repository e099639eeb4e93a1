//go:build !linux

package spec

import (
	"context"

	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Generate needs Linux: it reads the container's files with openat2 and
// probes the host's devices, cgroups and kernel.
func Generate(ctx context.Context, in Input) (*specs.Spec, error) {
	return nil, errdefs.Newf(errdefs.NotImplemented, "generating a container spec is only supported on Linux")
}
