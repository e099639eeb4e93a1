package runtime

import (
	"context"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroup"
)

// Stats reads a running or paused container's resource usage from its
// cgroup files (no process of the container is involved).
func (r *Runtime) Stats(ctx context.Context, id string) (*cgroup.Stats, error) {
	p, err := r.load(id)
	if err != nil {
		return nil, err
	}
	if r.status(p) == StatusStopped {
		return nil, errdefs.Newf(errdefs.Conflict, "container %q is not running", id)
	}
	m, err := cgroup.Load(p.CgroupPaths)
	if err != nil {
		return nil, err
	}
	return m.Stats()
}
