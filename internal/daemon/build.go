package daemon

import (
	"context"
	"encoding/binary"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	apibuild "github.com/moby/moby/api/types/build"
	apicontainer "github.com/moby/moby/api/types/container"
	apiregistry "github.com/moby/moby/api/types/registry"

	buildrouter "github.com/berth-dev/berth/internal/api/router/build"
	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/image/reference"
)

// buildLabel marks the builder's intermediate containers: they are
// removed after their step, and at start-up if a crash left any.
const buildLabel = "berth.build"

// newBuilder builds the builder over the image and container services.
func (d *Daemon) newBuilder() (*build.Builder, error) {
	keep := int64(build.DefaultKeepStorage)
	if bc := d.cfg.Builder; bc != nil {
		if bc.GC.Enabled != nil && !*bc.GC.Enabled {
			keep = 0
		} else if bc.GC.DefaultKeepStorage != "" {
			n, err := units.FromHumanSize(bc.GC.DefaultKeepStorage)
			if err != nil {
				return nil, errdefs.Newf(errdefs.InvalidArgument, "builder.gc.defaultKeepStorage: %v", err)
			}
			keep = n
		}
	}
	return build.New(build.Config{
		KeepStorage: keep,
		Root:        filepath.Join(d.cfg.DataRoot, "build"), DB: d.db, Images: d.images,
		Runner: buildRunner{d},
		Pull: func(ctx context.Context, ref string, auths map[string]apiregistry.AuthConfig) error {
			o := image.PullOptions{GCHeld: true}
			if a, ok := authFor(ref, auths); ok {
				o.Auth = distribution.AuthFromConfig(&a)
			}
			_, err := d.images.Pull(ctx, ref, o)
			return err
		},
		Registry: func(ref string, auths map[string]apiregistry.AuthConfig) *distribution.Client {
			if a, ok := authFor(ref, auths); ok {
				return d.registry.WithAuth(distribution.AuthFromConfig(&a))
			}
			return d.registry
		},
		Log: d.log.With("svc", "build"),
	})
}

// authFor picks the credentials of ref's registry from a build's
// X-Registry-Config (keyed by host, or Docker Hub's index URL).
func authFor(ref string, auths map[string]apiregistry.AuthConfig) (apiregistry.AuthConfig, bool) {
	if len(auths) == 0 {
		return apiregistry.AuthConfig{}, false
	}
	r, err := reference.Parse(ref)
	if err != nil {
		return apiregistry.AuthConfig{}, false
	}
	host := r.Domain()
	keys := []string{host, "https://" + host, "http://" + host}
	if host == "docker.io" {
		keys = append(keys, "https://index.docker.io/v1/", "index.docker.io")
	}
	for _, k := range keys {
		if a, ok := auths[k]; ok {
			return a, true
		}
	}
	return apiregistry.AuthConfig{}, false
}

// removeBuildLeftovers removes intermediate containers a crash left.
func (d *Daemon) removeBuildLeftovers(ctx context.Context) {
	list, err := d.containers.List(ctx, container.ListOptions{All: true, Filters: map[string][]string{"label": {buildLabel}}})
	if err != nil {
		return
	}
	for _, c := range list {
		_ = d.containers.Remove(ctx, c.ID, container.RemoveOptions{Force: true})
	}
}

// buildRunner runs RUN steps as containers of the container service,
// so they get berth's runtime, shim, network modes and cleanup.
type buildRunner struct{ d *Daemon }

func (r buildRunner) Run(ctx context.Context, req build.RunRequest) (build.RunResult, error) {
	ctrs := r.d.containers
	cfg := &apicontainer.Config{
		Image: req.Parent.ID().String(), Cmd: req.Args, Entrypoint: []string{}, Env: req.Env,
		User: req.User, WorkingDir: req.WorkDir, Labels: map[string]string{buildLabel: "1"},
		AttachStdout: true, AttachStderr: true,
	}
	mode := req.NetworkMode
	if mode == "" || mode == "default" {
		mode = "bridge"
	}
	hc := &apicontainer.HostConfig{
		NetworkMode: apicontainer.NetworkMode(mode), ExtraHosts: req.ExtraHosts, Mounts: req.Mounts,
		LogConfig: apicontainer.LogConfig{Type: "none"}, Resources: req.Resources, ShmSize: req.ShmSize,
	}
	p := req.Parent.Config.Platform
	res, err := ctrs.Create(ctx, container.CreateOptions{
		Config: cfg, HostConfig: hc,
		Image: &image.Resolved{ID: req.Parent.ID(), ChainID: req.Parent.ChainID(), Platform: p},
	})
	if err != nil {
		return build.RunResult{}, err
	}
	out := build.RunResult{ContainerID: res.ID}
	if req.Started != nil {
		req.Started(res.ID)
	}
	if out.Snapshot, err = ctrs.SnapshotKey(res.ID); err != nil {
		return out, err
	}
	ready := make(chan struct{})
	attached := make(chan error, 1)
	client := &demuxClient{w: req.Output, closed: make(chan struct{})}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		attached <- ctrs.Attach(actx, res.ID, container.AttachOptions{Stdout: true, Stderr: true, Ready: func() error {
			close(ready)
			return nil
		}}, client)
	}()
	select {
	case <-ready:
	case err := <-attached:
		return out, err
	}
	if err := ctrs.Start(ctx, res.ID); err != nil {
		return out, err
	}
	wr, err := ctrs.Wait(ctx, res.ID, apicontainer.WaitConditionNotRunning, nil)
	if err != nil {
		return out, err
	}
	// The output ends with the process; a stream still open after a
	// grace period is cut (a daemonised child holding it).
	select {
	case <-attached:
	case <-time.After(2 * time.Second):
		cancel()
		<-attached
	}
	out.ExitCode = wr.StatusCode
	return out, nil
}

func (r buildRunner) Remove(ctx context.Context, id string) error {
	return r.d.containers.Remove(ctx, id, container.RemoveOptions{Force: true})
}

// demuxClient is the attach client of a RUN container: it splits
// Docker's multiplexed frames and writes their payload to w.
type demuxClient struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	closed chan struct{}
	once   sync.Once
}

func (c *demuxClient) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	for len(c.buf) >= 8 {
		n := int(binary.BigEndian.Uint32(c.buf[4:8]))
		if len(c.buf) < 8+n {
			break
		}
		if c.w != nil {
			_, _ = c.w.Write(c.buf[8 : 8+n])
		}
		c.buf = c.buf[8+n:]
	}
	return len(p), nil
}

func (c *demuxClient) Read(p []byte) (int, error) {
	<-c.closed
	return 0, io.EOF
}

func (c *demuxClient) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// buildBackend adapts the builder to the build router.
type buildBackend struct{ d *Daemon }

func (b buildBackend) Build(ctx context.Context, o buildrouter.Options, body io.Reader, out buildrouter.Output) (string, error) {
	id, err := b.d.builder.Build(ctx, build.Options{
		Tags: o.Tags, Dockerfile: o.Dockerfile, BuildArgs: o.BuildArgs, Labels: o.Labels,
		Target: o.Target, NoCache: o.NoCache, Pull: o.Pull, Quiet: o.Quiet,
		NetworkMode: o.NetworkMode, ExtraHosts: o.ExtraHosts, Platform: o.Platform,
		Secrets: o.Secrets, AuthConfigs: o.AuthConfigs, Resources: o.Resources, ShmSize: o.ShmSize,
		CacheFrom: o.CacheFrom, CacheTo: o.CacheTo,
		ContextRef: (*build.ContextRef)(o.ContextRef), Remote: o.Remote, SSH: o.SSH,
	}, body, out)
	if err != nil {
		return "", err
	}
	for _, t := range o.Tags {
		b.d.events.Publish("image", "tag", id.String(), map[string]string{"name": t})
	}
	return id.String(), nil
}

func (b buildBackend) PruneCache(ctx context.Context, all bool, f map[string][]string) (*apibuild.CachePruneReport, error) {
	var until time.Duration
	for _, v := range f["until"] {
		dur, err := time.ParseDuration(v)
		if err != nil {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid until filter %q: %v", v, err)
		}
		until = dur
	}
	for k := range f {
		if k != "until" && !strings.HasPrefix(k, "label") {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid filter %q", k)
		}
	}
	return b.d.builder.Prune(ctx, all, until)
}
