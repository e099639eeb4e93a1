package system

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"

	"github.com/berth-dev/berth/internal/api/filters"
)

// Backend is what the system router needs from the daemon.
//
// Errors are classified with package errdefs; the server maps them to
// status codes (NotFound 404, InvalidArgument 400, Unauthorized 401, ...).
type Backend interface {
	// SystemInfo is GET /info. The router fills Swarm.LocalNodeState
	// ("inactive") when empty; everything else is the backend's.
	SystemInfo(ctx context.Context) (*system.Info, error)

	// SystemVersion is GET /version: Version, Os, Arch, KernelVersion,
	// GoVersion, GitCommit, BuildTime and Components. The router sets
	// ApiVersion and MinAPIVersion (the server's range) and, when
	// Components is empty, an "Engine" component from the other fields.
	SystemVersion(ctx context.Context) (*system.VersionResponse, error)

	// SystemDiskUsage is GET /system/df for the object kinds asked. The
	// backend fills the counts, sizes and Items of each kind asked (nil
	// for the others); the router drops Items unless verbose and derives
	// the pre-1.52 legacy fields (LayersSize, Images, Containers, Volumes,
	// BuildCache) from them for older clients.
	SystemDiskUsage(ctx context.Context, opts DiskUsageOptions) (*system.DiskUsage, error)

	// Events streams events: first the recorded ones from opts.Since (none
	// when zero), then live ones, calling send for each in time order,
	// until opts.Until passes (return nil), ctx ends (return nil) or send
	// fails (return its error). Only events matching opts.Filters are sent.
	// The router has already validated the filter keys (EventFilters).
	// Example: since=now-10m, no until: replay ten minutes then follow.
	Events(ctx context.Context, opts EventsOptions, send func(events.Message) error) error

	// AuthenticateToRegistry checks credentials against the registry
	// (POST /auth, `docker login`). It returns the identity token the
	// registry issued, if any. Bad credentials are Unauthorized.
	AuthenticateToRegistry(ctx context.Context, auth *registry.AuthConfig) (identityToken string, err error)
}

// DiskUsageOptions selects the object kinds of /system/df.
type DiskUsageOptions struct {
	Containers, Images, Volumes, BuildCache bool
}

// EventsOptions select events.
type EventsOptions struct {
	Since, Until time.Time
	Filters      filters.Args
}

// EventFilters are the filter keys /events accepts (as dockerd).
var EventFilters = []string{"config", "container", "daemon", "event", "image", "label", "network", "node", "plugin", "scope", "secret", "service", "type", "volume"}
