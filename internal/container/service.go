package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/image/snapshot"
	"github.com/berth-dev/berth/internal/logger"
	"github.com/berth-dev/berth/internal/quiet"
	"github.com/berth-dev/berth/internal/runtime"
)

// Images is what the service needs of the image service.
type Images interface {
	// Resolve finds a local image by reference or ID (NotFound if absent).
	Resolve(ctx context.Context, name string) (*image.Resolved, error)
	// GC removes the snapshots and blobs nothing holds (a spare snapshot
	// that held a removed image's layers, snapspare.go).
	GC(ctx context.Context) (int64, error)
}

// Snapshots is what the service needs of the snapshotter: a writable
// snapshot per container on its image's top layer.
type Snapshots interface {
	Prepare(ctx context.Context, key, parent string, labels map[string]string) ([]snapshot.Mount, error)
	Mounts(ctx context.Context, key string) ([]snapshot.Mount, error)
	Remove(ctx context.Context, key string) error
	Usage(ctx context.Context, key string) (size int64, inodes int64, err error)
	Walk(ctx context.Context, fn func(snapshot.Info) error) error
}

// Event is a container event for the events stream (action "create",
// "start", "die", ... with Docker's attributes).
type Event struct {
	Action     string
	ID         string
	Attributes map[string]string
}

// Config builds a Service.
type Config struct {
	// Root is the daemon's data root; records' files go to Root/containers.
	Root string
	// ExecRoot is the daemon's run directory; bundles go to ExecRoot/c and
	// the runtime's state to ExecRoot/runtime.
	ExecRoot  string
	DB        *bolt.DB
	Images    Images
	Snapshots Snapshots
	// Runtime is berth's runtime on ExecRoot/runtime (pause, resume,
	// update, pids): the same state the shims write.
	Runtime *runtime.Runtime
	// Runtimes resolves HostConfig.Runtime (nil: berth's own only).
	Runtimes Runtimes
	// ShimBinary is berth-shim's path ("" finds it beside the daemon).
	ShimBinary string
	// Volumes resolves and mounts named and anonymous volumes; nil
	// refuses them.
	Volumes Volumes
	// DefaultLog is the daemon's log-driver and log-opts.
	DefaultLog container.LogConfig
	// DefaultUlimits are the daemon's default-ulimits.
	DefaultUlimits []*container.Ulimit
	// Events receives container events; nil drops them.
	Events func(Event)
	// InitPath is --init's binary (daemon init-path; "" finds berth-init
	// beside berthd, then on PATH); DefaultInit is the daemon's "init".
	InitPath    string
	DefaultInit bool
	// OnExit, if set, is called after a container's exit is recorded
	// (restart policies hook in here).
	OnExit func(id string, st State)
	// Networks is the network manager; nil leaves bridge-mode
	// containers in an empty network namespace.
	Networks Networks
	// NetworkEvents receives network connect/disconnect events.
	NetworkEvents func(Event)
	// Quiet holds the work done ahead of time for the next create (the
	// next warm spare shim, the spare snapshot and its mount) until the
	// daemon is quiet; nil starts it at once.
	Quiet *quiet.Gate
	Log   *slog.Logger
}

// Service manages containers. It is safe for concurrent use.
type Service struct {
	cfg   Config
	store *store
	log   *slog.Logger

	mu    sync.RWMutex
	byID  map[string]*Container
	names map[string]string // "/name" -> id
	// execs maps exec IDs to their container, for /exec/{id}/... calls.
	execs map[string]*Container
	// creating holds the snapshot keys of creates in progress, from
	// before their snapshot is prepared until their record is in byID, so
	// that an image GC never takes a fresh container snapshot (Holders).
	creating map[string]bool
	// wg tracks monitor goroutines (they end with their container, not
	// with berthd).
	wg sync.WaitGroup
	// bg tracks teardown and cleanup work Close waits for.
	bg sync.WaitGroup
	// sup is the supervision state (restart.go, health.go).
	sup supervisor
	// ahead is the shim prepared at create (prefork.go).
	ahead aheadSlot
	// spare is the writable snapshot prepared ahead (snapspare.go);
	// guarded by mu.
	spare snapSpare
}

// New opens the container store; call Restore next.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil || cfg.Images == nil || cfg.Snapshots == nil || cfg.Runtime == nil {
		return nil, fmt.Errorf("container: config needs DB, Images, Snapshots and Runtime")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.DefaultLog.Type == "" {
		cfg.DefaultLog.Type = "json-file"
	}
	for _, d := range []string{filepath.Join(cfg.Root, "containers"), filepath.Join(cfg.ExecRoot, "c")} {
		if err := os.MkdirAll(d, 0o710); err != nil {
			return nil, err
		}
	}
	st, err := openStore(cfg.DB, filepath.Join(cfg.Root, "containers"))
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: st, log: cfg.Log, byID: map[string]*Container{}, names: map[string]string{}, execs: map[string]*Container{}, creating: map[string]bool{}}, nil
}

func (s *Service) event(action string, r *Record, extra map[string]string) {
	if s.cfg.Events == nil {
		return
	}
	attrs := map[string]string{"name": strings.TrimPrefix(r.Name, "/")}
	if r.Config != nil {
		attrs["image"] = r.Config.Image
		for k, v := range r.Config.Labels {
			attrs[k] = v
		}
	}
	for k, v := range extra {
		attrs[k] = v
	}
	s.cfg.Events(Event{Action: action, ID: r.ID, Attributes: attrs})
}

// dataDir is where a container's persistent files live.
func (s *Service) dataDir(id string) string { return filepath.Join(s.cfg.Root, "containers", id) }

// bundleDir is the container's OCI bundle and shim state directory.
func (s *Service) bundleDir(id string) string { return filepath.Join(s.cfg.ExecRoot, "c", id) }

func (s *Service) rootfsDir(id string) string { return filepath.Join(s.bundleDir(id), "rootfs") }

// Get finds a container by full ID, name (with or without "/") or unique
// ID prefix, as Docker does.
func (s *Service) Get(ref string) (*Container, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.getLocked(ref)
}

func (s *Service) getLocked(ref string) (*Container, error) {
	if ref == "" {
		return nil, errdefs.Newf(errdefs.NotFound, "No such container: %s", ref)
	}
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	name := ref
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	if id, ok := s.names[name]; ok {
		return s.byID[id], nil
	}
	var found *Container
	for id, c := range s.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.Newf(errdefs.InvalidArgument, "multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errdefs.Newf(errdefs.NotFound, "No such container: %s", ref)
	}
	return found, nil
}

// newID returns a fresh 64-hex-digit container ID that is not all digits
// (Docker avoids those: they would parse as numbers in some places).
func newID() string {
	for {
		var b [32]byte
		_, _ = rand.Read(b[:])
		id := hex.EncodeToString(b[:])
		if strings.Trim(id[:12], "0123456789") != "" {
			return id
		}
	}
}

// Holders lists the writable snapshots that containers hold, for the
// image service's garbage collector.
func (s *Service) Holders(ctx context.Context) ([]string, []digest.Digest, error) {
	var keys []string
	if k := s.spareHeld(ctx); k != "" {
		keys = append(keys, k)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.byID {
		c.mu.Lock()
		if c.rec.Snapshot != "" {
			keys = append(keys, c.rec.Snapshot)
		}
		c.mu.Unlock()
	}
	for k := range s.creating {
		keys = append(keys, k)
	}
	return keys, nil, nil
}

// ImageInUse reports a container using image id (and whether it runs),
// for image removal.
func (s *Service) ImageInUse(id string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var stopped string
	for _, c := range s.byID {
		c.mu.Lock()
		img, running := c.rec.Image, c.rec.State.Running()
		cid := c.rec.ID
		c.mu.Unlock()
		if img != id {
			continue
		}
		if running {
			return cid, true
		}
		stopped = cid
	}
	return stopped, false
}

// Close waits (up to 10 s) for teardown and cleanup work in flight; shims
// and their containers keep running (live restore).
func (s *Service) Close() error {
	s.stopSupervision()
	s.cfg.Quiet.Close() // what it holds runs now, and sees the service closing
	s.dropAhead("")
	s.awaitReleases()
	s.releaseSpare()
	done := make(chan struct{})
	go func() { s.bg.Wait(); s.store.waitLater(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.log.Warn("container cleanup still running at shutdown; the next start finishes it")
	}
	s.closePremounts()
	return nil
}

// logConfig is the logger configuration of r.
func (s *Service) logConfig(r *Record) logger.Config {
	lc := r.Host.LogConfig
	if lc.Type == "" {
		lc.Type = s.cfg.DefaultLog.Type
	}
	labels := map[string]string{}
	if r.Config != nil {
		labels = r.Config.Labels
	}
	env := map[string]string{}
	if r.Config != nil {
		for _, kv := range r.Config.Env {
			if k, v, ok := strings.Cut(kv, "="); ok {
				env[k] = v
			}
		}
	}
	img := ""
	if r.Config != nil {
		img = r.Config.Image
	}
	return logger.Config{
		Type: lc.Type, Opts: lc.Config, Dir: s.dataDir(r.ID),
		ContainerID: r.ID, ContainerName: strings.TrimPrefix(r.Name, "/"),
		ImageID: r.Image, ImageName: img, Labels: labels, Env: env,
	}
}
