package volume

import (
	"context"
	"sort"
	"time"

	apivolume "github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/internal/api/filters"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Get returns one volume in Docker's inspect shape. UsageData carries the
// reference count; its Size is -1 (computed only by DiskUsage).
func (s *Service) Get(ctx context.Context, name string) (*apivolume.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.vols[name]
	if !ok {
		return nil, errdefs.Newf(errdefs.NotFound, "get %s: no such volume", name)
	}
	out := s.describe(v)
	out.UsageData = &apivolume.UsageData{RefCount: int64(len(v.refs)), Size: -1}
	return &out, nil
}

func (s *Service) describe(v *vol) apivolume.Volume {
	return apivolume.Volume{
		Name: v.rec.Name, Driver: v.rec.Driver, Mountpoint: s.dataPath(v.rec.Name),
		CreatedAt: v.rec.CreatedAt.Format(time.RFC3339), Labels: v.rec.Labels, Options: v.rec.Options,
		Scope: "local",
	}
}

// ListFilters are the filters List accepts.
var ListFilters = []string{"dangling", "driver", "label", "name"}

// List returns the volumes matching f (dangling, driver, label, name), by
// name.
func (s *Service) List(ctx context.Context, f filters.Args) ([]apivolume.Volume, error) {
	if err := f.Validate(ListFilters...); err != nil {
		return nil, err
	}
	dangling, err := f.GetBoolOrDefault("dangling", false)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []apivolume.Volume{}
	for _, v := range s.vols {
		if f.Contains("dangling") && (len(v.refs) == 0) != dangling {
			continue
		}
		if !f.ExactMatch("driver", v.rec.Driver) || !f.Match("name", v.rec.Name) || !f.MatchKVList("label", v.rec.Labels) {
			continue
		}
		out = append(out, s.describe(v))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DiskUsage returns every volume with its size and reference count, for
// /system/df.
func (s *Service) DiskUsage(ctx context.Context) (*apivolume.DiskUsage, error) {
	s.mu.Lock()
	type item struct {
		v    apivolume.Volume
		refs int64
	}
	items := make([]item, 0, len(s.vols))
	for _, v := range s.vols {
		items = append(items, item{s.describe(v), int64(len(v.refs))})
	}
	s.mu.Unlock()
	sort.Slice(items, func(i, j int) bool { return items[i].v.Name < items[j].v.Name })
	du := &apivolume.DiskUsage{}
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		size, err := dirSize(it.v.Mountpoint)
		if err != nil {
			size = -1
		}
		it.v.UsageData = &apivolume.UsageData{RefCount: it.refs, Size: size}
		du.Items = append(du.Items, it.v)
		du.TotalCount++
		if size > 0 {
			du.TotalSize += size
		}
		if it.refs > 0 {
			du.ActiveCount++
		} else if size > 0 {
			du.Reclaimable += size
		}
	}
	return du, nil
}
