package daemon

import (
	"context"

	"github.com/moby/moby/api/types/build"
	apicontainer "github.com/moby/moby/api/types/container"
	apisystem "github.com/moby/moby/api/types/system"

	systemrouter "github.com/berth-dev/berth/internal/api/router/system"
	"github.com/berth-dev/berth/internal/container"
)

// diskUsage is /system/df: images from the image service, containers'
// writable layers from the container service.
func (d *Daemon) diskUsage(ctx context.Context, o systemrouter.DiskUsageOptions) (*apisystem.DiskUsage, error) {
	du := &apisystem.DiskUsage{}
	if o.Images {
		iu, err := d.images.DiskUsage(ctx, d.containers.ImageInUse)
		if err != nil {
			return nil, err
		}
		// Per image, the containers created from it (df -v's CONTAINERS).
		for i := range iu.Items {
			iu.Items[i].Containers = d.containers.CountByImage(iu.Items[i].ID)
		}
		du.ImageUsage = iu
	}
	if o.Containers {
		list, err := d.containers.List(ctx, container.ListOptions{All: true, Size: true})
		if err != nil {
			return nil, err
		}
		cu := &apicontainer.DiskUsage{Items: list, TotalCount: int64(len(list))}
		for _, c := range list {
			cu.TotalSize += c.SizeRw
			if c.State == apicontainer.StateRunning || c.State == apicontainer.StatePaused {
				cu.ActiveCount++
			} else {
				cu.Reclaimable += c.SizeRw
			}
		}
		du.ContainerUsage = cu
	}
	if o.Volumes {
		vu, err := d.volumes.DiskUsage(ctx)
		if err != nil {
			return nil, err
		}
		du.VolumeUsage = vu
	}
	if o.BuildCache {
		du.BuildCacheUsage = &build.DiskUsage{}
		if d.builder != nil {
			bu, err := d.builder.DiskUsage(ctx)
			if err != nil {
				return nil, err
			}
			du.BuildCacheUsage = bu
		}
	}
	return du, nil
}
