package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/singleflight"

	apibuild "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/registry"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/image/content"
	"github.com/berth-dev/berth/internal/image/snapshot"
)

// Images is what the builder needs of the image service.
type Images interface {
	// StateOf returns a local image's config and layers, and its ID.
	StateOf(ctx context.Context, name string) (*image.State, digest.Digest, error)
	// Scratch is the empty state.
	Scratch() *image.State
	Platform() ocispec.Platform
	// NewLayer makes a layer of an active snapshot's changes (nil when
	// there are none); LayerFromTar of a tar stream.
	NewLayer(ctx context.Context, key, parentChain string, stubs ...string) (*image.Layer, error)
	// NewLayerLinked is NewLayer for a snapshot that never changes again
	// (an exited RUN container): its files are linked, not copied.
	NewLayerLinked(ctx context.Context, key, parentChain string, stubs ...string) (*image.Layer, error)
	LayerFromTar(ctx context.Context, r io.Reader, parentChain string) (*image.Layer, error)
	// CommitLayer commits an unmounted active snapshot as the layer of
	// its own changes (nil when there are none).
	CommitLayer(ctx context.Context, key, parentChain string) (*image.Layer, error)
	// WriteImage records st as an image tagged refs.
	WriteImage(ctx context.Context, st *image.State, refs []string) (digest.Digest, error)
	// HoldGC keeps GC away while layers are unreferenced.
	HoldGC() func()
	// GC sweeps what nothing references (after a cache prune).
	GC(ctx context.Context) (int64, error)
	Snapshots() *snapshot.Snapshotter
	// Content is the blob store (cache export reads layers from it).
	Content() *content.Store
	// UnpackLayer stores and unpacks a layer blob on parentChain,
	// fetching it through open only when missing (cache import).
	UnpackLayer(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest, parentChain string, open func(context.Context) (io.ReadCloser, error)) (*image.Layer, error)
}

// RunRequest is one RUN step: a container on Parent's filesystem.
type RunRequest struct {
	Parent      *image.State
	Args        []string
	Env         []string
	User        string
	WorkDir     string
	NetworkMode string
	ExtraHosts  []string
	Mounts      []mount.Mount
	Resources   container.Resources
	ShmSize     int64
	// Output receives the process's stdout and stderr.
	Output io.Writer
	// Started is called with the container's ID once it exists.
	Started func(id string)
}

// RunResult is a finished RUN container: its writable snapshot (to diff)
// and exit code. The caller removes the container with Runner.Remove.
type RunResult struct {
	ContainerID string
	Snapshot    string
	ExitCode    int
}

// Runner runs RUN steps as containers through berth's own runtime (the
// daemon implements it over the container service).
type Runner interface {
	Run(ctx context.Context, req RunRequest) (RunResult, error)
	Remove(ctx context.Context, id string) error
}

// DefaultKeepStorage is the build cache's default size budget.
const DefaultKeepStorage = 10 << 30

// Config builds a Builder.
type Config struct {
	// KeepStorage is the cache's size budget in bytes: after a build,
	// least recently used entries are evicted beyond it (0: no limit).
	KeepStorage int64
	// Root is where contexts are unpacked and cache mounts kept
	// (<data-root>/build).
	Root   string
	DB     *bolt.DB
	Images Images
	Runner Runner
	// Pull fetches a base image that is not present (or with --pull),
	// with the build's registry credentials; nil refuses.
	Pull func(ctx context.Context, ref string, auth map[string]registry.AuthConfig) error
	// Registry is the registry client for a cache reference, with the
	// build's credentials for its registry (--cache-to/--cache-from
	// type=registry); nil refuses registry caches.
	Registry func(ref string, auth map[string]registry.AuthConfig) *distribution.Client
	Log      *slog.Logger
}

// Builder builds images from Dockerfiles. It is safe for concurrent use.
type Builder struct {
	cfg   Config
	cache *cache
	// steps computes each cache key once across concurrent builds.
	steps singleflight.Group
	// bg tracks background bookkeeping Close waits for.
	bg sync.WaitGroup
	// sums caches the digests of directory contexts' files.
	sums sumCache
	// lineage maps a COPY step's key without its content to the chain
	// ID of its last result, whose files a later miss may link
	// (copylink_linux.go). In memory: an optimisation only.
	lineage sync.Map
}

// Close waits for background bookkeeping.
func (b *Builder) Close() { b.bg.Wait() }

// New opens the build cache.
func New(cfg Config) (*Builder, error) {
	if cfg.DB == nil || cfg.Images == nil || cfg.Runner == nil {
		return nil, fmt.Errorf("build: config needs DB, Images and Runner")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Root, 0o700); err != nil {
		return nil, err
	}
	// What builds a crash interrupted left: mounts first (never remove
	// through one), then contexts and secrets.
	if ents, err := os.ReadDir(cfg.Root); err == nil {
		for _, e := range ents {
			p := filepath.Join(cfg.Root, e.Name())
			switch {
			case strings.HasPrefix(e.Name(), "mnt-"):
				unmountAll(p)
				if os.Remove(p) != nil {
					// A secret's directory (never a mount point).
					if !isMountPoint(p) {
						_ = os.RemoveAll(p)
					}
				}
			case strings.HasPrefix(e.Name(), "ctx-"):
				_ = os.RemoveAll(p)
			}
		}
	}
	// Snapshots of steps a crash interrupted (writable snapshots of
	// COPY steps, views of stages, layers being unpacked).
	ctx := context.Background()
	_ = cfg.Images.Snapshots().Walk(ctx, func(i snapshot.Info) error {
		if strings.HasPrefix(i.Key, "build-") || strings.HasPrefix(i.Key, "layer-") {
			if err := cfg.Images.Snapshots().Remove(ctx, i.Key); err != nil {
				cfg.Log.Warn("build: removing a leftover snapshot", "key", i.Key, "err", err)
			}
		}
		return nil
	})
	c, err := openCache(cfg.DB)
	if err != nil {
		return nil, err
	}
	return &Builder{cfg: cfg, cache: c}, nil
}

// Holders lists the snapshots and blobs the build cache keeps, for the
// image service's garbage collector.
func (b *Builder) Holders(ctx context.Context) ([]string, []digest.Digest, error) {
	return b.cache.holders()
}

// DiskUsage is the build cache part of system df.
func (b *Builder) DiskUsage(ctx context.Context) (*apibuild.DiskUsage, error) {
	return b.cache.usage()
}

// Prune empties the build cache (entries used within keepRecent stay
// unless all) and collects the layers nothing else uses.
func (b *Builder) Prune(ctx context.Context, all bool, until time.Duration) (*apibuild.CachePruneReport, error) {
	cutoff := time.Now().Add(-until)
	removed, _, err := b.cache.remove(func(k string, e *cacheEntry) bool {
		return until > 0 && e.LastUsed.After(cutoff)
	})
	if err != nil {
		return nil, err
	}
	freed, err := b.cfg.Images.GC(ctx)
	rep := &apibuild.CachePruneReport{SpaceReclaimed: uint64(freed)}
	for _, k := range removed {
		rep.CachesDeleted = append(rep.CachesDeleted, k[:25])
	}
	return rep, err
}

// enforceBudget evicts least recently used cache entries beyond the
// size budget and collects their layers.
func (b *Builder) enforceBudget(ctx context.Context) {
	if b.cfg.KeepStorage <= 0 {
		return
	}
	removed, err := b.cache.evict(b.cfg.KeepStorage)
	if err != nil {
		b.cfg.Log.Warn("build cache: eviction", "err", err)
		return
	}
	if len(removed) == 0 {
		return
	}
	freed, err := b.cfg.Images.GC(ctx)
	b.cfg.Log.Info("build cache over budget: evicted least recently used entries", "entries", len(removed), "freed", freed, "err", err)
}

// Options are a build's parameters (POST /build's query).
type Options struct {
	Tags        []string
	Dockerfile  string
	BuildArgs   map[string]*string
	Labels      map[string]string
	Target      string
	NoCache     bool
	Pull        bool
	Quiet       bool
	NetworkMode string
	ExtraHosts  []string
	Platform    string
	// Secrets are RUN --mount=type=secret sources by id.
	Secrets map[string][]byte
	// AuthConfigs are registry credentials by registry, for pulls.
	AuthConfigs map[string]registry.AuthConfig
	// Resources and ShmSize limit RUN containers.
	Resources container.Resources
	ShmSize   int64
	// CacheFrom are cache sources: local images (the classic builder's
	// cachefrom) or BuildKit-style specs (type=registry|local); CacheTo
	// are where the build's cache is exported (cacheio.go).
	CacheFrom []string
	CacheTo   []string
	// ContextRef is a context directory read in place (the body is then
	// empty); Remote a git URL (URL#ref:subdir) to clone as the context.
	ContextRef *ContextRef
	Remote     string
	// SSH are RUN --mount=type=ssh sources: agent socket paths by ID.
	SSH map[string]string
}

// Output receives the build's progress: lines of the classic builder's
// output, and the image ID at the end.
type Output interface {
	Stream(s string)
	Aux(id string)
}

// RunError is a RUN step whose command failed: Docker reports its
// exit code as the build's error code.
type RunError struct {
	Cmd  []string
	Code int
}

func (e *RunError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(e.Cmd, " "), e.Code)
}

// Build reads the context (a tar, or a bare Dockerfile) from body, builds
// the target stage and records the image under the tags. It returns the
// image ID.
func (b *Builder) Build(ctx context.Context, o Options, body io.Reader, out Output) (digest.Digest, error) {
	if o.Platform != "" {
		if err := b.checkPlatform(o.Platform); err != nil {
			return "", err
		}
	}
	for _, t := range o.Tags {
		if t == "" {
			return "", errdefs.Newf(errdefs.InvalidArgument, "invalid tag: empty")
		}
	}
	cacheFrom, cacheTo, cacheImages, err := parseCacheOptions(o)
	if err != nil {
		return "", err
	}
	t0 := time.Now()
	phase := func(name string) {
		b.cfg.Log.Debug("build phase", "phase", name, "since_start", time.Since(t0))
	}
	// Scratch space for the spool or a clone (a context read in place
	// makes it only if a RUN bind-mounts the context).
	dir := ""
	if o.ContextRef == nil {
		d, err := os.MkdirTemp(b.cfg.Root, "ctx-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	dfPath := o.Dockerfile
	if dfPath == "" {
		dfPath = "Dockerfile"
	}
	fsys, bare, err := b.openContext(ctx, o, body, dir)
	var src []byte
	switch {
	case errors.Is(err, errNotArchive):
		src = bare
	case err != nil:
		return "", err
	default:
		src, err = readFile(fsys, dfPath)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = errdefs.Newf(errdefs.InvalidArgument, "Cannot locate specified Dockerfile: %s", dfPath)
			}
			fsys.Close()
			return "", err
		}
	}
	defer fsys.Close()
	phase("context")
	df, err := parseDockerfile(src)
	if err != nil {
		return "", err
	}
	bctx := &buildContext{fsys: fsys, dir: dir, root: b.cfg.Root}
	defer bctx.removeScratch()
	if err := bctx.loadIgnore(dfPath); err != nil {
		return "", err
	}
	release := b.cfg.Images.HoldGC()
	defer release()
	s := &session{b: b, opts: o, df: df, ctx: bctx, out: out, consumed: map[string]bool{}}
	if !o.NoCache {
		s.imp = b.importCaches(ctx, o, cacheFrom, cacheImages, out)
	}
	st, err := s.run(ctx)
	if err != nil {
		return "", err
	}
	phase("steps")
	// Recording use (for LRU eviction and system df) is bookkeeping: off
	// the build's path.
	b.bg.Add(1)
	go func(hits []string) {
		defer b.bg.Done()
		if err := b.cache.touch(hits); err != nil {
			b.cfg.Log.Warn("build cache: recording use", "err", err)
		}
		b.enforceBudget(context.WithoutCancel(ctx))
	}(s.hits)
	for k, v := range o.Labels {
		if st.Config.Config.Labels == nil {
			st.Config.Config.Labels = map[string]string{}
		}
		st.Config.Config.Labels[k] = v
	}
	var unused []string
	for k := range o.BuildArgs {
		if !s.consumed[k] && !builtinArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 && !o.Quiet {
		sort.Strings(unused)
		out.Stream(fmt.Sprintf("[Warning] One or more build-args [%s] were not consumed\n", strings.Join(unused, " ")))
	}
	id, err := b.cfg.Images.WriteImage(ctx, st, o.Tags)
	if err != nil {
		return "", err
	}
	phase("image")
	if err := s.exportCaches(ctx, cacheTo); err != nil {
		return "", err
	}
	out.Aux(id.String())
	if o.Quiet {
		// As dockerd: the only text of a quiet build is the ID.
		out.Stream(id.String() + "\n")
	} else {
		out.Stream(fmt.Sprintf("Successfully built %s\n", shortID(id.String())))
		for _, t := range o.Tags {
			out.Stream(fmt.Sprintf("Successfully tagged %s\n", familiar(t)))
		}
	}
	return id, nil
}

func (b *Builder) checkPlatform(p string) error {
	return checkPlatform(b.cfg.Images.Platform(), p)
}

// checkPlatform refuses a platform other than the native one.
func checkPlatform(native ocispec.Platform, p string) error {
	parts := strings.Split(strings.ToLower(p), "/")
	if parts[0] != native.OS || len(parts) > 1 && parts[1] != native.Architecture && !(parts[1] == "x86_64" && native.Architecture == "amd64") {
		return errdefs.Newf(errdefs.InvalidArgument, "platform %q is not supported: berth builds for the native platform %s/%s only", p, native.OS, native.Architecture)
	}
	return nil
}

// builtinArgs are the proxy arguments usable without an ARG.
var builtinArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true, "HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true, "NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// session is one build.
type session struct {
	b    *Builder
	opts Options
	df   *dockerfile
	ctx  *buildContext
	out  Output

	mu       sync.Mutex
	consumed map[string]bool
	// hits are the cache entries used, marked used at the end.
	hits    []string
	stages  []*stageRun
	total   int
	printer *orderedOutput
	// imp are the caches imported with --cache-from (nil: none);
	// mountsUsed the cache mounts RUN steps used (cacheio.go).
	imp        *cacheImport
	mountsUsed map[string]bool
}

// stageRun is one stage's build.
type stageRun struct {
	idx    int
	stage  instructions.Stage
	deps   []int
	done   chan struct{}
	state  *image.State
	key    string
	err    error
	first  int // number of its FROM step
	needed bool
}

// dependsOn reports whether the stage waits for stage j (its result is
// then complete when this stage runs).
func (sr *stageRun) dependsOn(j int) bool {
	for _, d := range sr.deps {
		if d == j {
			return true
		}
	}
	return false
}

// run builds the stages the target needs, independent ones in parallel,
// and returns the target's state.
func (s *session) run(ctx context.Context) (*image.State, error) {
	df := s.df
	target := len(df.stages) - 1
	if s.opts.Target != "" {
		i, ok := df.stageIndex(s.opts.Target, len(df.stages))
		if !ok {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "failed to reach build target %s in Dockerfile", s.opts.Target)
		}
		target = i
	}
	meta, err := s.metaEnv()
	if err != nil {
		return nil, err
	}
	s.stages = make([]*stageRun, len(df.stages))
	for i, st := range df.stages {
		sr := &stageRun{idx: i, stage: st, done: make(chan struct{})}
		base, err := expandWord(df.escape, st.BaseName, meta)
		if err != nil {
			return nil, stepError(st.Location, err)
		}
		sr.stage.BaseName = base
		if j, ok := df.stageIndex(base, i); ok {
			sr.deps = append(sr.deps, j)
		}
		for _, c := range st.Commands {
			switch c := c.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					// --from is expanded once, here, with the global ARGs
					// (the stage to wait for must be known now).
					from, err := expandWord(df.escape, c.From, meta)
					if err != nil {
						return nil, stepError(c.Location(), err)
					}
					if from == "" {
						return nil, stepError(c.Location(), errdefs.Newf(errdefs.InvalidArgument, "COPY --from=%s is empty: --from may use only global ARGs (declared before the first FROM)", c.From))
					}
					c.From = from
					if j, ok := df.stageIndex(from, i); ok {
						sr.deps = append(sr.deps, j)
					}
				}
			case *instructions.RunCommand:
				for _, m := range instructions.GetMounts(c) {
					if m.From != "" {
						from, err := expandWord(df.escape, m.From, meta)
						if err != nil {
							from = m.From
						}
						if j, ok := df.stageIndex(from, i); ok {
							sr.deps = append(sr.deps, j)
						}
					}
				}
			}
		}
		s.stages[i] = sr
	}
	// Only what the target needs.
	var mark func(i int)
	mark = func(i int) {
		if s.stages[i].needed {
			return
		}
		s.stages[i].needed = true
		for _, d := range s.stages[i].deps {
			mark(d)
		}
	}
	mark(target)
	var order []int
	for i, sr := range s.stages {
		if sr.needed {
			sr.first = s.total + 1
			s.total += 1 + len(sr.stage.Commands)
			order = append(order, i)
		}
	}
	s.printer = newOrderedOutput(s.out, order, s.opts.Quiet)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, i := range order {
		sr := s.stages[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(sr.done)
			defer s.printer.finish(sr.idx)
			for _, d := range sr.deps {
				select {
				case <-s.stages[d].done:
				case <-ctx.Done():
					sr.err = ctx.Err()
					return
				}
				if s.stages[d].err != nil {
					sr.err = errDependency
					return
				}
			}
			sr.state, sr.key, sr.err = s.buildStage(ctx, sr, meta)
			if sr.err != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	// The first real error, in stage order.
	for _, i := range order {
		if err := s.stages[i].err; err != nil && !errors.Is(err, errDependency) && !errors.Is(err, context.Canceled) {
			return nil, err
		}
	}
	for _, i := range order {
		if err := s.stages[i].err; err != nil {
			return nil, err
		}
	}
	return s.stages[target].state, nil
}

var errDependency = errors.New("a stage this one depends on failed")

// metaEnv is the scope of FROM lines: the ARGs before the first FROM,
// with build-arg overrides.
func (s *session) metaEnv() (*envMap, error) {
	env := newEnvMap()
	for _, a := range s.df.metaArgs {
		for _, kv := range a.Args {
			v, has := "", false
			if kv.Value != nil {
				ex, err := expandWord(s.df.escape, *kv.Value, env)
				if err != nil {
					return nil, stepError(a.Location(), err)
				}
				v, has = ex, true
			}
			if bv, ok := s.opts.BuildArgs[kv.Key]; ok && bv != nil {
				v, has = *bv, true
				s.consumed[kv.Key] = true
			}
			if has {
				env.Set(kv.Key, v)
			}
		}
	}
	return env, nil
}

func expandWord(escape rune, word string, env shell.EnvGetter) (string, error) {
	lex := shell.NewLex(escape)
	out, _, err := lex.ProcessWord(word, env)
	return out, err
}

// cacheKey derives a step's key from its parent's and what the step does.
func cacheKey(parent string, parts ...any) string {
	h := sha256.New()
	h.Write([]byte(parent))
	h.Write([]byte{0})
	b, _ := json.Marshal(parts)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ExitCode is the failed command's status, the build's error code.
func (e *RunError) ExitCode() int { return e.Code }
