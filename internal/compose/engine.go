package compose

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/sirupsen/logrus"
)

// API is the part of the Engine API client compose uses. *client.Client
// implements it; so does anything else speaking the Docker Engine API.
type API interface {
	ContainerCreate(ctx context.Context, options client.ContainerCreateOptions) (client.ContainerCreateResult, error)
	ContainerStart(ctx context.Context, id string, options client.ContainerStartOptions) (client.ContainerStartResult, error)
	ContainerStop(ctx context.Context, id string, options client.ContainerStopOptions) (client.ContainerStopResult, error)
	ContainerRestart(ctx context.Context, id string, options client.ContainerRestartOptions) (client.ContainerRestartResult, error)
	ContainerKill(ctx context.Context, id string, options client.ContainerKillOptions) (client.ContainerKillResult, error)
	ContainerRemove(ctx context.Context, id string, options client.ContainerRemoveOptions) (client.ContainerRemoveResult, error)
	ContainerRename(ctx context.Context, id string, options client.ContainerRenameOptions) (client.ContainerRenameResult, error)
	ContainerPause(ctx context.Context, id string, options client.ContainerPauseOptions) (client.ContainerPauseResult, error)
	ContainerUnpause(ctx context.Context, id string, options client.ContainerUnpauseOptions) (client.ContainerUnpauseResult, error)
	ContainerInspect(ctx context.Context, id string, options client.ContainerInspectOptions) (client.ContainerInspectResult, error)
	ContainerList(ctx context.Context, options client.ContainerListOptions) (client.ContainerListResult, error)
	ContainerLogs(ctx context.Context, id string, options client.ContainerLogsOptions) (client.ContainerLogsResult, error)
	ContainerWait(ctx context.Context, id string, options client.ContainerWaitOptions) client.ContainerWaitResult
	ContainerTop(ctx context.Context, id string, options client.ContainerTopOptions) (client.ContainerTopResult, error)
	CopyToContainer(ctx context.Context, id string, options client.CopyToContainerOptions) (client.CopyToContainerResult, error)

	ImageInspect(ctx context.Context, ref string, opts ...client.ImageInspectOption) (client.ImageInspectResult, error)
	ImagePull(ctx context.Context, ref string, options client.ImagePullOptions) (client.ImagePullResponse, error)
	ImagePush(ctx context.Context, ref string, options client.ImagePushOptions) (client.ImagePushResponse, error)
	ImageBuild(ctx context.Context, buildContext io.Reader, options client.ImageBuildOptions) (client.ImageBuildResult, error)
	ImageRemove(ctx context.Context, ref string, options client.ImageRemoveOptions) (client.ImageRemoveResult, error)

	NetworkCreate(ctx context.Context, name string, options client.NetworkCreateOptions) (client.NetworkCreateResult, error)
	NetworkInspect(ctx context.Context, id string, options client.NetworkInspectOptions) (client.NetworkInspectResult, error)
	NetworkList(ctx context.Context, options client.NetworkListOptions) (client.NetworkListResult, error)
	NetworkRemove(ctx context.Context, id string, options client.NetworkRemoveOptions) (client.NetworkRemoveResult, error)
	NetworkConnect(ctx context.Context, id string, options client.NetworkConnectOptions) (client.NetworkConnectResult, error)

	VolumeCreate(ctx context.Context, options client.VolumeCreateOptions) (client.VolumeCreateResult, error)
	VolumeInspect(ctx context.Context, id string, options client.VolumeInspectOptions) (client.VolumeInspectResult, error)
	VolumeList(ctx context.Context, options client.VolumeListOptions) (client.VolumeListResult, error)
	VolumeRemove(ctx context.Context, id string, options client.VolumeRemoveOptions) (client.VolumeRemoveResult, error)

	Events(ctx context.Context, options client.EventsListOptions) client.EventsResult

	// ClientVersion is the API version in use (negotiated with the engine
	// after the first request).
	ClientVersion() string
}

var _ API = (*client.Client)(nil)

// Engine runs Compose commands against one Engine API endpoint.
type Engine struct {
	API API
	// Progress receives the resource events of a command, one line each,
	// as Docker Compose prints them without a terminal
	// (" Container p-web-1  Started"); nil discards them.
	Progress io.Writer
	// Version is recorded in the com.docker.compose.version label of the
	// networks and volumes created.
	Version string
	// RegistryAuth returns the X-Registry-Auth value for pulling or
	// pushing ref (the CLI's stored credentials); nil sends none.
	RegistryAuth func(ref string) (string, error)
	// MaxConcurrency bounds how many services are worked on at once
	// (--parallel, COMPOSE_PARALLEL_LIMIT); 0 or less is unlimited.
	MaxConcurrency int

	mu  sync.Mutex
	log *logrus.Logger
}

// event reports a step on resource (e.g. "Container p-web-1", "Started").
func (e *Engine) event(resource, status string) {
	if e.Progress == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	fmt.Fprintf(e.Progress, " %s  %s\n", resource, status)
}

func (e *Engine) auth(ref string) (string, error) {
	if e.RegistryAuth == nil {
		return "", nil
	}
	return e.RegistryAuth(ref)
}

// Warnf prints a warning on the progress stream through logrus, as
// Compose (and compose-go's own warnings) do: `WARN[0000] ...` on a
// terminal, `time=... level=warning msg=...` otherwise.
func (e *Engine) Warnf(format string, args ...any) {
	if e.Progress == nil {
		return
	}
	e.mu.Lock()
	if e.log == nil {
		e.log = logrus.New()
		e.log.Out = e.Progress
	}
	l := e.log
	e.mu.Unlock()
	l.Warnf(format, args...)
}

// oneoff selects which containers a listing includes.
type oneoff int

const (
	oneoffExclude oneoff = iota
	oneoffInclude
	oneoffOnly
)

// listContainers lists the containers of project (stopped ones too when all),
// optionally only those of services, sorted by service then number.
func (e *Engine) listContainers(ctx context.Context, project string, which oneoff, all bool, services ...string) ([]container.Summary, error) {
	f := make(client.Filters).Add("label", LabelProject+"="+project)
	switch which {
	case oneoffExclude:
		f.Add("label", LabelOneoff+"=False")
	case oneoffOnly:
		f.Add("label", LabelOneoff+"=True")
	}
	if len(services) == 1 {
		f.Add("label", LabelService+"="+services[0])
	}
	res, err := e.API.ContainerList(ctx, client.ContainerListOptions{All: all, Filters: f})
	if err != nil {
		return nil, err
	}
	out := res.Items
	if len(services) > 1 {
		want := map[string]bool{}
		for _, s := range services {
			want[s] = true
		}
		out = out[:0]
		for _, c := range res.Items {
			if want[c.Labels[LabelService]] {
				out = append(out, c)
			}
		}
	}
	sortContainers(out)
	return out, nil
}

func sortContainers(cs []container.Summary) {
	sort.SliceStable(cs, func(i, j int) bool {
		si, sj := cs[i].Labels[LabelService], cs[j].Labels[LabelService]
		if si != sj {
			return si < sj
		}
		ni, _ := strconv.Atoi(cs[i].Labels[LabelContainerNumber])
		nj, _ := strconv.Atoi(cs[j].Labels[LabelContainerNumber])
		if ni != nj {
			return ni < nj
		}
		return containerName(cs[i]) < containerName(cs[j])
	})
}

// containerName is the container's name without the leading slash.
func containerName(c container.Summary) string {
	for _, n := range c.Names {
		if len(n) > 1 && n[0] == '/' {
			n = n[1:]
		}
		// Links add names like /other/alias; the canonical one has no
		// further slash.
		if !containsSlash(n) {
			return n
		}
	}
	if len(c.Names) > 0 {
		return c.Names[0]
	}
	return c.ID
}

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

// ContainerDisplayName is the name compose commands show for c.
func ContainerDisplayName(c container.Summary) string { return containerName(c) }

// servicesOf returns p's services named in names (all, in name order,
// when names is empty), or a "no such service" error.
func servicesOf(p *types.Project, names []string) ([]types.ServiceConfig, error) {
	if len(names) == 0 {
		names = p.ServiceNames()
	}
	out := make([]types.ServiceConfig, 0, len(names))
	for _, n := range names {
		s, ok := p.Services[n]
		if !ok {
			return nil, serviceNotFound(n)
		}
		out = append(out, s)
	}
	return out, nil
}
