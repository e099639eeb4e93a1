package container

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ListOptions are ps's parameters.
type ListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters map[string][]string
}

var listFilters = map[string]bool{"id": true, "name": true, "label": true, "exited": true, "status": true,
	"ancestor": true, "before": true, "since": true, "volume": true, "network": true, "publish": true,
	"expose": true, "health": true, "isolation": true, "is-task": true}

// List answers ps from the in-memory index: it never talks to a shim.
func (s *Service) List(ctx context.Context, o ListOptions) ([]container.Summary, error) {
	for k := range o.Filters {
		if !listFilters[k] {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid filter '%s'", k)
		}
	}
	s.mu.RLock()
	recs := make([]Record, 0, len(s.byID))
	for _, c := range s.byID {
		c.mu.Lock()
		recs = append(recs, c.rec)
		c.mu.Unlock()
	}
	s.mu.RUnlock()
	// Newest first, as Docker lists.
	sort.Slice(recs, func(i, j int) bool { return recs[i].Created.After(recs[j].Created) })
	var before, since *Record
	for _, key := range []string{"before", "since"} {
		for _, v := range o.Filters[key] {
			c, err := s.Get(v)
			if err != nil {
				return nil, err
			}
			r := c.snapshot()
			if key == "before" {
				before = &r
			} else {
				since = &r
			}
		}
	}
	for _, v := range o.Filters["status"] {
		if err := container.ValidateContainerState(container.ContainerState(v)); err != nil {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid filter 'status=%s'", v)
		}
	}
	var exited []int
	for _, v := range o.Filters["exited"] {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid filter 'exited=%s'", v)
		}
		exited = append(exited, n)
	}
	all := o.All || len(o.Filters["status"]) > 0 || len(exited) > 0 || o.Limit > 0 || before != nil || since != nil
	now := time.Now()
	out := []container.Summary{}
	for _, r := range recs {
		if !all && !r.State.Running() && !r.State.Restarting {
			continue
		}
		if before != nil && !r.Created.Before(before.Created) {
			continue
		}
		if since != nil && !r.Created.After(since.Created) {
			continue
		}
		if !s.matches(&r, o.Filters, exited) {
			continue
		}
		sum := summary(&r, now)
		if o.Size {
			if n, _, err := s.cfg.Snapshots.Usage(ctx, r.Snapshot); err == nil {
				sum.SizeRw = n
			}
		}
		out = append(out, sum)
		if o.Limit > 0 && len(out) >= o.Limit {
			break
		}
	}
	return out, nil
}

func (s *Service) matches(r *Record, f map[string][]string, exited []int) bool {
	any := func(key string, ok func(v string) bool) bool {
		vals := f[key]
		if len(vals) == 0 {
			return true
		}
		for _, v := range vals {
			if ok(v) {
				return true
			}
		}
		return false
	}
	if !any("id", func(v string) bool { return strings.HasPrefix(r.ID, v) }) {
		return false
	}
	if !any("name", func(v string) bool {
		re, err := regexp.Compile(v)
		if err != nil {
			return false
		}
		return re.MatchString(strings.TrimPrefix(r.Name, "/")) || re.MatchString(r.Name)
	}) {
		return false
	}
	// Labels: every label filter must match (Docker's rule for labels).
	for _, v := range f["label"] {
		k, val, hasVal := strings.Cut(v, "=")
		got, ok := r.Config.Labels[k]
		if !ok || hasVal && got != val {
			return false
		}
	}
	if !any("status", func(v string) bool { return string(statusOf(r)) == v }) {
		return false
	}
	if len(exited) > 0 {
		if r.State.Status != container.StateExited {
			return false
		}
		okExit := false
		for _, n := range exited {
			if r.State.ExitCode == n {
				okExit = true
			}
		}
		if !okExit {
			return false
		}
	}
	if !any("ancestor", func(v string) bool {
		return v == r.Config.Image || strings.HasPrefix(r.Image, v) || strings.HasPrefix(strings.TrimPrefix(r.Image, "sha256:"), v) || strings.TrimSuffix(v, ":latest") == strings.TrimSuffix(r.Config.Image, ":latest")
	}) {
		return false
	}
	if !any("network", func(v string) bool { _, ok := r.Networks[v]; return ok }) {
		return false
	}
	if !any("health", func(v string) bool { return healthFilter(r.State.Health) == v }) {
		return false
	}
	if !any("is-task", func(v string) bool { return v == "false" }) {
		return false
	}
	if !any("isolation", func(v string) bool { return v == "default" || v == "" }) {
		return false
	}
	if !any("expose", func(v string) bool {
		for p := range r.Config.ExposedPorts {
			if p.String() == v || strings.Split(p.String(), "/")[0] == v {
				return true
			}
		}
		return false
	}) {
		return false
	}
	if !any("publish", func(v string) bool { return publishes(r, v) }) {
		return false
	}
	if !any("volume", func(v string) bool {
		if usesVolume(r, v) {
			return true
		}
		for _, b := range r.Host.Binds {
			if strings.HasPrefix(b, v+":") || strings.Contains(b, ":"+v) {
				return true
			}
		}
		return false
	}) {
		return false
	}
	return true
}

func statusOf(r *Record) container.ContainerState {
	if r.State.Removing {
		return container.StateRemoving
	}
	if r.State.Paused {
		return container.StatePaused
	}
	if r.State.Status == "" {
		return container.StateCreated
	}
	return r.State.Status
}

func summary(r *Record, now time.Time) container.Summary {
	sum := container.Summary{
		ID: r.ID, Names: []string{r.Name}, Image: r.Config.Image, ImageID: r.Image,
		Command: commandString(*r), Created: r.Created.Unix(), Labels: r.Config.Labels,
		State: statusOf(r), Status: statusString(r.State, now), Ports: []container.PortSummary{},
		Mounts: apiMounts(r.MountPoints),
	}
	if sum.Labels == nil {
		sum.Labels = map[string]string{}
	}
	sum.Health = healthSummary(r.State.Health)
	sum.HostConfig.NetworkMode = string(r.Host.NetworkMode)
	nets, ports := networkSettings(r)
	sum.NetworkSettings = &container.NetworkSettingsSummary{Networks: nets}
	sum.Ports = portSummary(ports)
	return sum
}

// Inspect returns the container in Docker's inspect shape.
func (s *Service) Inspect(ctx context.Context, ref string, size bool) (*container.InspectResponse, error) {
	c, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	r := c.rec
	var execIDs []string
	for id := range c.execs {
		execIDs = append(execIDs, id)
	}
	c.mu.Unlock()
	dir := s.dataDir(r.ID)
	out := &container.InspectResponse{
		ID: r.ID, Created: r.Created.Format(time.RFC3339Nano), Path: r.Path, Args: r.Args,
		State: &container.State{
			Status: statusOf(&r), Running: r.State.Running() || r.State.Restarting, Paused: r.State.Paused,
			Restarting: r.State.Restarting, OOMKilled: r.State.OOMKilled, Dead: r.State.Dead,
			Pid: r.State.Pid, ExitCode: r.State.ExitCode, Error: r.State.Error,
			StartedAt: timeString(r.State.StartedAt), FinishedAt: timeString(r.State.FinishedAt),
			Health: r.State.Health,
		},
		Image:          r.Image,
		ResolvConfPath: dir + "/resolv.conf", HostnamePath: dir + "/hostname", HostsPath: dir + "/hosts",
		LogPath: r.LogPath, Name: r.Name, RestartCount: r.Restarts, Driver: "overlay2",
		Platform: r.Platform, ExecIDs: execIDs, HostConfig: r.Host, Config: r.Config,
		Mounts: apiMounts(r.MountPoints),
		GraphDriver: &storage.DriverData{Name: "overlay2", Data: map[string]string{
			"MergedDir": s.rootfsDir(r.ID),
		}},
		NetworkSettings: &container.NetworkSettings{
			SandboxKey: "", Ports: network.PortMap{}, Networks: map[string]*network.EndpointSettings{},
		},
	}
	out.NetworkSettings.Networks, out.NetworkSettings.Ports = networkSettings(&r)
	if r.Sandbox != nil {
		out.NetworkSettings.SandboxKey = r.Sandbox.Key
		out.NetworkSettings.SandboxID = r.ID
	} else if r.State.Running() && r.Host.NetworkMode != "host" && r.State.Pid > 0 {
		out.NetworkSettings.SandboxKey = fmt.Sprintf("/proc/%d/ns/net", r.State.Pid)
	}
	if size {
		if n, _, err := s.cfg.Snapshots.Usage(ctx, r.Snapshot); err == nil {
			out.SizeRw = &n
			zero := int64(0)
			out.SizeRootFs = &zero
		}
	}
	return out, nil
}

// timeString formats like Docker: RFC 3339 with nanoseconds, and the zero
// time as "0001-01-01T00:00:00Z".
func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Top lists the container's processes (ps -ef style columns).
func (s *Service) Pids(ctx context.Context, ref string) ([]int, error) {
	c, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	running := c.rec.State.Running()
	c.mu.Unlock()
	if !running {
		return nil, errdefs.Newf(errdefs.Conflict, "container %s is not running", c.ID())
	}
	pids, err := s.runtimeOf(c.ID()).Pids(ctx, c.ID())
	if err == nil {
		// Pids serves top: dockerd emits "top" for it.
		rec := c.snapshot()
		s.event("top", &rec, nil)
	}
	return pids, err
}

// SnapshotKey returns the container's writable snapshot (for export,
// diff and commit).
func (s *Service) SnapshotKey(ref string) (string, error) {
	c, err := s.Get(ref)
	if err != nil {
		return "", err
	}
	return c.snapshot().Snapshot, nil
}

// CountByImage counts the containers created from image id.
func (s *Service) CountByImage(id string) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, c := range s.byID {
		c.mu.Lock()
		if c.rec.Image == id {
			n++
		}
		c.mu.Unlock()
	}
	return n
}
