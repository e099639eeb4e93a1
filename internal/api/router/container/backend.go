package container

import (
	"context"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/filters"
)

// Backend is everything the container router needs; the daemon's
// container service implements it. It is composed of small role
// interfaces, one per group of endpoints.
//
// Names: every name argument is what the client put in the path — a
// container name (with or without the leading "/"), a full ID or a unique
// ID prefix. The backend resolves it.
//
// Errors are classified with package errdefs and mapped once by the
// server: an unknown container is NotFound with Docker's message
// "No such container: <name>"; a name in use is Conflict ("Conflict. The
// container name \"/x\" is already in use by container \"<id>\". You have
// to remove (or rename) that container to be able to reuse that name.");
// removing a running container without force is Conflict; starting a
// running container or stopping a stopped one is NotModified (304); an
// invalid option is InvalidArgument.
type Backend interface {
	QueryBackend
	LifecycleBackend
	StateBackend
	StreamBackend
	ArchiveBackend
}

// QueryBackend reads containers.
type QueryBackend interface {
	// ContainerList is GET /containers/json. The router has validated
	// the filter keys (ListFilters); the backend applies them, All (else
	// running only), Limit (>0: the newest n) and Size (SizeRw and
	// SizeRootFs). Newest first.
	ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error)
	// ContainerInspect is GET /containers/{name}/json; size fills SizeRw
	// and SizeRootFs.
	ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error)
	// ContainerTop runs ps (with psArgs, default "-ef") for the
	// container's processes. A container that is not running is Conflict
	// ("container <id> is not running").
	ContainerTop(ctx context.Context, name, psArgs string) (*container.TopResponse, error)
	// ContainerChanges lists the writable layer's changes.
	ContainerChanges(ctx context.Context, name string) ([]container.FilesystemChange, error)
}

// LifecycleBackend creates, changes and removes containers.
type LifecycleBackend interface {
	// ContainerCreate is POST /containers/create. The router has
	// validated the name and platform, and made Config, HostConfig and
	// NetworkingConfig non-nil. An image that is not present is NotFound
	// ("No such image: busybox:latest") so the docker CLI pulls and
	// retries.
	ContainerCreate(ctx context.Context, opts CreateOptions) (container.CreateResponse, error)
	// ContainerUpdate changes resources and restart policy.
	ContainerUpdate(ctx context.Context, name string, update container.UpdateConfig) (container.UpdateResponse, error)
	// ContainerRename gives the container newName (validated by the
	// router, without "/"). A name in use is Conflict.
	ContainerRename(ctx context.Context, name, newName string) error
	// ContainerRemove is DELETE /containers/{name}.
	ContainerRemove(ctx context.Context, name string, opts RemoveOptions) error
	// ContainersPrune removes stopped containers matching f ("until",
	// "label", "label!"; validated by the router).
	ContainersPrune(ctx context.Context, f filters.Args) (*container.PruneReport, error)
}

// StateBackend drives the container's process.
type StateBackend interface {
	// ContainerStart starts a created or stopped container; NotModified
	// when it is running.
	ContainerStart(ctx context.Context, name string) error
	// ContainerStop sends opts.Signal (the container's stop signal when
	// empty), waits opts.Timeout seconds (the container's stop timeout
	// when nil; -1 forever) and kills. NotModified when not running.
	ContainerStop(ctx context.Context, name string, opts StopOptions) error
	// ContainerRestart stops (as ContainerStop, but a stopped container
	// is fine) and starts.
	ContainerRestart(ctx context.Context, name string, opts StopOptions) error
	// ContainerKill sends signal (name "SIGHUP", "HUP" or number; "" is
	// SIGKILL). A container that is not running is Conflict.
	ContainerKill(ctx context.Context, name, signal string) error
	// ContainerPause freezes the container's processes.
	ContainerPause(ctx context.Context, name string) error
	// ContainerUnpause thaws them.
	ContainerUnpause(ctx context.Context, name string) error
}

// StreamBackend serves the endpoints that stream.
type StreamBackend interface {
	// ContainerAttach attaches to the container's stdio. It checks the
	// container and options first (an error then is answered as a normal
	// HTTP error), then calls opts.Streams exactly once with the
	// container's TTY setting to take the connection over, and copies
	// until the container's output ends, the client detaches (DetachKeys
	// on stdin; return nil) or goes away (ctx is cancelled). With Logs,
	// the existing log is sent first; with Stream, live output follows.
	// An error after Streams is written to the client's stderr stream by
	// the router.
	ContainerAttach(ctx context.Context, name string, opts AttachOptions) error

	// ContainerLogs returns the log entries selected by opts on a channel
	// the backend closes at the end (at once without Follow; when the
	// container stops, ctx ends or Until passes with Follow), and whether
	// the container has a TTY (the router then writes raw bytes, else the
	// multiplexed framing). An entry with Err ends the stream with that
	// error written in-stream.
	ContainerLogs(ctx context.Context, name string, opts LogsOptions) (<-chan LogMessage, bool, error)

	// ContainerStats calls send with one sample (opts.Stream false: after
	// collecting two samples for CPU deltas, or at once with OneShot) or
	// with a sample every second until ctx ends or send fails. An error
	// returned before the first send is answered with its status code.
	ContainerStats(ctx context.Context, name string, opts StatsOptions, send func(*container.StatsResponse) error) error

	// ContainerWait checks the container exists (NotFound otherwise) and
	// returns a channel that receives one WaitResponse when the condition
	// is met: not-running (now, if it is not running), next-exit (the
	// next exit after this call) or removed. The router sends the 200
	// header at once, then the body when the response arrives.
	ContainerWait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error)

	// ContainerResize sets the TTY size.
	ContainerResize(ctx context.Context, name string, height, width uint32) error
}

// ArchiveBackend copies files in and out of the container's filesystem.
// Paths are inside the container and must be resolved against its root.
type ArchiveBackend interface {
	// ContainerStatPath stats path (HEAD /containers/{name}/archive). A
	// missing path is NotFound.
	ContainerStatPath(ctx context.Context, name, path string) (*container.PathStat, error)
	// ContainerArchivePath returns a tar of path and its stat.
	ContainerArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *container.PathStat, error)
	// ContainerExtractToDir extracts the tar in content into directory
	// path (which must exist: NotFound otherwise).
	ContainerExtractToDir(ctx context.Context, name, path string, opts ExtractOptions, content io.Reader) error
	// ContainerExport returns a tar of the container's whole filesystem.
	ContainerExport(ctx context.Context, name string) (io.ReadCloser, error)
}

// ListOptions are GET /containers/json's parameters.
type ListOptions struct {
	All     bool
	Limit   int
	Size    bool
	Filters filters.Args
}

// ListFilters are the filter keys the container list accepts (dockerd's).
var ListFilters = []string{"ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task", "label", "name", "network", "publish", "since", "status", "volume"}

// PruneFilters are the filter keys container prune accepts.
var PruneFilters = []string{"until", "label", "label!"}

// CreateOptions are POST /containers/create's parameters and body.
type CreateOptions struct {
	// Name is the requested name without a leading "/", or "" to have one
	// generated.
	Name string
	// Platform, if set, is the platform the image must have.
	Platform *ocispec.Platform
	// Config, HostConfig and NetworkingConfig are never nil.
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// RemoveOptions are DELETE /containers/{name}'s flags.
type RemoveOptions struct {
	Force         bool // kill a running container first
	RemoveVolumes bool // remove its anonymous volumes
	RemoveLink    bool // remove the link (legacy links), not the container
}

// StopOptions are stop's and restart's parameters.
type StopOptions struct {
	Signal  string
	Timeout *int // seconds; nil: the container's default
}

// AttachOptions are the attach parameters plus the stream setup.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	Logs, Stream          bool
	DetachKeys            string
	// Streams takes the connection over and returns the client's streams
	// for a container with (tty) or without a TTY.
	Streams func(tty bool) (*AttachStreams, error)
}

// AttachStreams are the client's side of an attach: Stdin (nil unless
// asked for; io.EOF at the client's half-close), Stdout and Stderr (raw
// with a TTY, else framed; nil unless asked for).
type AttachStreams = api.Streams

// LogsOptions are GET /containers/{name}/logs's parameters.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	// Since and Until bound the entries' times (zero: unbounded).
	Since, Until time.Time
	// Tail is the number of last entries to send; -1 for all.
	Tail int
	// Timestamps and Details are applied by the router; the backend
	// fills LogMessage.Timestamp and Attrs.
	Timestamps, Details bool
}

// LogMessage is one log entry.
type LogMessage struct {
	// Stream is "stdout" or "stderr".
	Stream    string
	Line      []byte
	Timestamp time.Time
	// Attrs are the log driver's extra attributes ("--details").
	Attrs []LogAttr
	Err   error
}

// LogAttr is one extra attribute of a log entry.
type LogAttr struct{ Key, Value string }

// StatsOptions are GET /containers/{name}/stats's parameters.
type StatsOptions struct {
	Stream  bool
	OneShot bool
}

// ExtractOptions are PUT /containers/{name}/archive's flags.
type ExtractOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a
	// non-directory or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID makes the files owned by the container's user.
	CopyUIDGID bool
}
