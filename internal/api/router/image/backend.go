package image

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/api/filters"
	"github.com/berth-dev/berth/internal/progress"
)

// Backend is what the image router needs from the image service. Images
// (service.go) adapts *image.Service to it; Inspect, History, Tag and
// Load are the service's own methods.
//
// Names are what the client sent: a reference ("busybox", "busybox:1.36",
// "localhost:5000/a/b@sha256:...") or an image ID or ID prefix. Errors are
// classified with package errdefs: an unknown image is NotFound ("No such
// image: busybox:latest"), an image in use Conflict, a bad reference
// InvalidArgument, a registry refusing credentials Unauthorized.
type Backend interface {
	QueryBackend
	TransferBackend
	// Tag makes target (a reference) name the image source names.
	Tag(ctx context.Context, source, target string) error
	// Remove untags or deletes name with Docker's rules.
	Remove(ctx context.Context, name string, opts RemoveOptions) ([]image.DeleteResponse, error)
	// Prune removes dangling images (all unused with dangling=false)
	// matching f (keys PruneFilters, validated by the router).
	Prune(ctx context.Context, f filters.Args) (*image.PruneReport, error)
}

// QueryBackend reads images.
type QueryBackend interface {
	// List is GET /images/json (filter keys ListFilters, validated).
	List(ctx context.Context, opts ListOptions) ([]image.Summary, error)
	// Inspect is GET /images/{name}/json.
	Inspect(ctx context.Context, name string) (*image.InspectResponse, error)
	// History is GET /images/{name}/history, newest first.
	History(ctx context.Context, name string) ([]image.HistoryResponseItem, error)
}

// TransferBackend moves images in and out. The operations that report
// progress send it to a progress.Sink (never nil); the router encodes it
// as Docker's JSON messages. An error returned before the first progress
// event other than "Pulling from ..." is answered with its HTTP status
// (so `docker pull nosuch` prints "Error response from daemon: ..."); a
// later one is written in the stream.
type TransferBackend interface {
	// Pull fetches ref (tagged or digested; the router adds the tag).
	Pull(ctx context.Context, ref string, opts PullOptions) error
	// Push uploads ref to its registry.
	Push(ctx context.Context, ref string, opts PushOptions) error
	// Import makes an image from the root filesystem tar in src and
	// returns its ID.
	Import(ctx context.Context, src io.Reader, opts ImportOptions) (string, error)
	// Load adds the images of a `docker save` archive, reporting
	// "Loaded image: <ref>" (or "Loaded image ID: <id>") statuses.
	Load(ctx context.Context, r io.Reader, sink progress.Sink) ([]string, error)
	// Save writes names (references or IDs) as one `docker save` archive.
	// An error before anything was written is answered with its status.
	Save(ctx context.Context, names []string, w io.Writer) error
}

// CommitBackend makes an image from a container (POST /commit); the
// container service implements it.
type CommitBackend interface {
	// Commit makes an image of the container's filesystem and config
	// (with opts.Config's non-zero fields and opts.Changes applied),
	// tags it opts.Ref when set and returns the image ID. An unknown
	// container is NotFound ("No such container: x").
	Commit(ctx context.Context, opts CommitOptions) (string, error)
}

// DistributionBackend asks a registry about an image without pulling it
// (GET /distribution/{name}/json; Compose resolves digests with it).
// Registry (distribution.go) implements it over the registry client.
type DistributionBackend interface {
	DistributionInspect(ctx context.Context, ref string, auth *registry.AuthConfig) (*registry.DistributionInspect, error)
}

// ListOptions are GET /images/json's parameters.
type ListOptions struct {
	All        bool
	Filters    filters.Args
	SharedSize bool
	Manifests  bool
}

// ListFilters are the filter keys the image list accepts (dockerd's).
var ListFilters = []string{"before", "dangling", "label", "reference", "since", "until"}

// PruneFilters are the filter keys image prune accepts.
var PruneFilters = []string{"dangling", "label", "label!", "until"}

// RemoveOptions are rmi's flags.
type RemoveOptions struct {
	Force   bool
	NoPrune bool
}

// PullOptions tune a pull.
type PullOptions struct {
	Platform *ocispec.Platform
	// Auth is the client's X-Registry-Auth (zero when none).
	Auth     *registry.AuthConfig
	Progress progress.Sink
}

// PushOptions tune a push.
type PushOptions struct {
	Auth     *registry.AuthConfig
	Progress progress.Sink
}

// ImportOptions are POST /images/create?fromSrc=-'s parameters.
type ImportOptions struct {
	// Ref tags the image ("repo[:tag]"), "" for none.
	Ref      string
	Changes  []string
	Message  string
	Platform *ocispec.Platform
}

// CommitOptions are POST /commit's parameters and body.
type CommitOptions struct {
	Container string
	// Ref tags the image ("repo[:tag]"), "" for none.
	Ref     string
	Comment string
	Author  string
	// Pause pauses the container during the commit (default true).
	Pause   bool
	Changes []string
	// Config overrides the container's config (nil: none).
	Config *container.Config
}
