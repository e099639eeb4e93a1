package apitest

import (
	"context"
	"runtime"
	"sync"

	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	apisystem "github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/internal/api/router/system"
	"github.com/berth-dev/berth/internal/errdefs"
)

// System is a fake system.Backend.
type System struct {
	mu sync.Mutex
	// Recorded are replayed to /events (filtered by type and container);
	// set before serving, or use Record.
	Recorded []events.Message
	// Users are the credentials /auth accepts (user → password).
	Users map[string]string
}

var _ system.Backend = (*System)(nil)

// Record adds events to replay; safe while the server runs.
func (s *System) Record(evs ...events.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Recorded = append(s.Recorded, evs...)
}

// NewSystem returns a fake with user "alice"/"secret".
func NewSystem() *System { return &System{Users: map[string]string{"alice": "secret"}} }

func (s *System) SystemInfo(ctx context.Context) (*apisystem.Info, error) {
	return &apisystem.Info{
		ID: "BERTH:TEST", Name: "berth-test", ServerVersion: "0.0.0-test", OperatingSystem: "Berth Test OS",
		OSType: "linux", Architecture: runtime.GOARCH, Driver: "overlay", NCPU: 2, MemTotal: 1 << 30,
		DockerRootDir: "/var/lib/berth", CgroupDriver: "cgroupfs", CgroupVersion: "2",
	}, nil
}

func (s *System) SystemVersion(ctx context.Context) (*apisystem.VersionResponse, error) {
	return &apisystem.VersionResponse{
		Version: "0.0.0-test", Os: "linux", Arch: runtime.GOARCH, KernelVersion: "6.0.0-test",
		GoVersion: runtime.Version(), GitCommit: "abcdef0", BuildTime: "2026-01-01T00:00:00Z",
	}, nil
}

func (s *System) SystemDiskUsage(ctx context.Context, opts system.DiskUsageOptions) (*apisystem.DiskUsage, error) {
	du := &apisystem.DiskUsage{}
	if opts.Images {
		du.ImageUsage = &imageDiskUsage
	}
	if opts.Containers {
		du.ContainerUsage = &containerDiskUsage
	}
	if opts.Volumes {
		du.VolumeUsage = &volumeDiskUsage
	}
	return du, nil
}

// Events replays the recorded events matching opts, then waits for ctx
// (or returns at once when Until is set).
func (s *System) Events(ctx context.Context, opts system.EventsOptions, send func(events.Message) error) error {
	s.mu.Lock()
	evs := append([]events.Message(nil), s.Recorded...)
	s.mu.Unlock()
	for _, ev := range evs {
		if !opts.Filters.ExactMatch("type", string(ev.Type)) || !opts.Filters.ExactMatch("container", ev.Actor.ID) {
			continue
		}
		if !opts.Since.IsZero() && ev.TimeNano < opts.Since.UnixNano() {
			continue
		}
		if !opts.Until.IsZero() && ev.TimeNano > opts.Until.UnixNano() {
			continue
		}
		if err := send(ev); err != nil {
			return err
		}
	}
	if !opts.Until.IsZero() {
		return nil
	}
	<-ctx.Done()
	return nil
}

func (s *System) AuthenticateToRegistry(ctx context.Context, auth *registry.AuthConfig) (string, error) {
	if p, ok := s.Users[auth.Username]; ok && p == auth.Password {
		return "", nil
	}
	return "", errdefs.Newf(errdefs.Unauthorized, "login to %s: unauthorized: incorrect username or password", auth.ServerAddress)
}

var (
	imageDiskUsage = image.DiskUsage{ActiveCount: 1, TotalCount: 2, TotalSize: 5_000_000, Reclaimable: 1_000_000,
		Items: []image.Summary{{ID: "sha256:" + strings.Repeat("a", 64), RepoTags: []string{"busybox:latest"}, Size: 4_000_000, Containers: 1}}}
	containerDiskUsage = container.DiskUsage{ActiveCount: 0, TotalCount: 1, TotalSize: 100}
	volumeDiskUsage    = volume.DiskUsage{}
)
