package system

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	apisystem "github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/internal/api"
)

// legacyDiskUsage is /system/df as API versions before 1.52 answer it:
// the usage summaries plus the item lists at the top level.
type legacyDiskUsage struct {
	apisystem.DiskUsage
	LayersSize int64               `json:"LayersSize"`
	Images     []image.Summary     `json:"Images"`
	Containers []container.Summary `json:"Containers"`
	Volumes    []volume.Volume     `json:"Volumes"`
	BuildCache []build.CacheRecord `json:"BuildCache"`
}

func (s *Router) diskUsage(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var opts DiskUsageOptions
	types, ok := q["type"]
	if !ok || !api.VersionAtLeast(ctx, "1.42") {
		opts = DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true}
	} else {
		for _, t := range types {
			switch apisystem.DiskUsageObject(t) {
			case apisystem.ContainerObject:
				opts.Containers = true
			case apisystem.ImageObject:
				opts.Images = true
			case apisystem.VolumeObject:
				opts.Volumes = true
			case apisystem.BuildCacheObject:
				opts.BuildCache = true
			default:
				return api.InvalidParam(fmt.Errorf("unknown object type: %s", t))
			}
		}
	}
	legacy := !api.VersionAtLeast(ctx, "1.52")
	verbose := legacy
	if v := q.Get("verbose"); !legacy && v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return api.InvalidParam(fmt.Errorf("invalid value for verbose: %s", v))
		}
		verbose = b
	}
	du, err := s.backend.SystemDiskUsage(ctx, opts)
	if err != nil {
		return err
	}
	out := *du
	if !legacy {
		if !verbose {
			if out.ImageUsage != nil {
				iu := *out.ImageUsage
				iu.Items = nil
				out.ImageUsage = &iu
			}
			if out.ContainerUsage != nil {
				cu := *out.ContainerUsage
				cu.Items = nil
				out.ContainerUsage = &cu
			}
			if out.VolumeUsage != nil {
				vu := *out.VolumeUsage
				vu.Items = nil
				out.VolumeUsage = &vu
			}
			if out.BuildCacheUsage != nil {
				bu := *out.BuildCacheUsage
				bu.Items = nil
				out.BuildCacheUsage = &bu
			}
		}
		return api.WriteJSON(w, http.StatusOK, &out)
	}
	l := legacyDiskUsage{DiskUsage: out}
	if u := out.ImageUsage; u != nil {
		l.LayersSize, l.Images = u.TotalSize, nonNil(u.Items)
	}
	if u := out.ContainerUsage; u != nil {
		l.Containers = nonNil(u.Items)
	}
	if u := out.VolumeUsage; u != nil {
		l.Volumes = nonNil(u.Items)
	}
	if u := out.BuildCacheUsage; u != nil {
		l.BuildCache = nonNil(u.Items)
	}
	return api.WriteJSON(w, http.StatusOK, &l)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
