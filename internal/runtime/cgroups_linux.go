package runtime

import (
	"context"
	"maps"
)

// CgroupPaths returns container id's cgroup directories: controller name
// to directory for v1 hierarchies, "" for the cgroup2 (unified) one.
func (r *Runtime) CgroupPaths(ctx context.Context, id string) (map[string]string, error) {
	p, err := r.load(id)
	if err != nil {
		return nil, err
	}
	return maps.Clone(p.CgroupPaths), nil
}
