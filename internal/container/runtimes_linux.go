package container

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/cgroup"
	"github.com/berth-dev/berth/internal/shim"
)

// BerthRuntime is the name of berth's own runtime (HostConfig.Runtime,
// /info's Runtimes and default DefaultRuntime).
const BerthRuntime = "berth"

// Runtimes resolves HostConfig.Runtime names: berth's own runtime and the
// daemon's configured external OCI runtimes (daemon.json "runtimes",
// --add-runtime). The set may change while berthd runs (SIGHUP).
type Runtimes interface {
	// Default is the name a container without --runtime gets.
	Default() string
	// Lookup returns the external runtime called name, nil for berth's
	// own, and errdefs.InvalidArgument for a name that is not configured.
	Lookup(name string) (*shim.OCIRuntime, error)
}

// ociRuntimeFile, in a running container's bundle, records the external
// runtime its shim was started with: berthd's own operations on the
// container (pause, resume, update, stats, top, delete) use the same one
// even after a reload changed the configuration or berthd restarted.
const ociRuntimeFile = "oci-runtime.json"

// ctrRuntime is what berthd asks of the runtime that holds a container.
// *runtime.Runtime (berth's own, on the shims' shared state root) is one;
// ociOps, for a container of an external runtime, the other.
type ctrRuntime interface {
	Stats(ctx context.Context, id string) (*cgroup.Stats, error)
	Pids(ctx context.Context, id string) ([]int, error)
	Delete(ctx context.Context, id string, force bool) error
	Pause(ctx context.Context, id string) error
	Resume(ctx context.Context, id string) error
	Update(ctx context.Context, id string, res *specs.LinuxResources) error
	CgroupPaths(ctx context.Context, id string) (map[string]string, error)
}

var (
	_ ctrRuntime = (*runtime.Runtime)(nil)
	_ ctrRuntime = (*ociOps)(nil)
)

// resolveRuntime fills in the default runtime and refuses unknown names
// (Docker's error and status).
func (s *Service) resolveRuntime(name string) (string, error) {
	if s.cfg.Runtimes == nil {
		if name == "" || name == BerthRuntime {
			return BerthRuntime, nil
		}
		return "", errdefs.Newf(errdefs.InvalidArgument, "unknown or invalid runtime name: %s", name)
	}
	if name == "" {
		name = s.cfg.Runtimes.Default()
	}
	if _, err := s.cfg.Runtimes.Lookup(name); err != nil {
		return "", err
	}
	return name, nil
}

// ociRuntimeFor returns the external runtime a start of rec uses (nil:
// berth's own).
func (s *Service) ociRuntimeFor(rec *Record) (*shim.OCIRuntime, error) {
	switch name := rec.Host.Runtime; {
	case name == "" || name == BerthRuntime:
		return nil, nil
	case s.cfg.Runtimes == nil:
		return nil, errdefs.Newf(errdefs.InvalidArgument, "unknown or invalid runtime name: %s", name)
	default:
		return s.cfg.Runtimes.Lookup(name)
	}
}

// recordOCIRuntime writes o into the bundle (see ociRuntimeFile).
func recordOCIRuntime(bundle string, o *shim.OCIRuntime) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(bundle, ociRuntimeFile), b, 0o600)
}

// runtimeOf returns the runtime holding container id.
func (s *Service) runtimeOf(id string) ctrRuntime {
	b, err := os.ReadFile(filepath.Join(s.bundleDir(id), ociRuntimeFile))
	if err != nil {
		return s.cfg.Runtime
	}
	var o shim.OCIRuntime
	if err := json.Unmarshal(b, &o); err != nil || o.Path == "" {
		return s.cfg.Runtime
	}
	return &ociOps{o: &o, bundle: s.bundleDir(id)}
}

// ociOps serves berthd's operations on a container of an external
// runtime: freezing and limits through the runtime binary, usage and
// pids from the cgroup files of the spec's cgroupsPath (which the
// runtime used as given).
type ociOps struct {
	o      *shim.OCIRuntime
	bundle string
}

func (r *ociOps) cgroup(id string) (cgroup.Manager, error) {
	b, err := os.ReadFile(filepath.Join(r.bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.Newf(errdefs.NotFound, "container %s has no bundle", id)
		}
		return nil, err
	}
	var sp specs.Spec
	if err := json.Unmarshal(b, &sp); err != nil {
		return nil, err
	}
	var path string
	if sp.Linux != nil {
		path = sp.Linux.CgroupsPath
	}
	return cgroup.New(path, id, nil)
}

func (r *ociOps) running(id string) error {
	if _, err := os.Stat(r.o.StateDir(id)); err != nil {
		return errdefs.Newf(errdefs.Conflict, "container %q is not running", id)
	}
	return nil
}

func (r *ociOps) Stats(ctx context.Context, id string) (*cgroup.Stats, error) {
	if err := r.running(id); err != nil {
		return nil, err
	}
	m, err := r.cgroup(id)
	if err != nil {
		return nil, err
	}
	return m.Stats()
}

func (r *ociOps) Pids(ctx context.Context, id string) ([]int, error) {
	if err := r.running(id); err != nil {
		return nil, err
	}
	m, err := r.cgroup(id)
	if err != nil {
		return nil, err
	}
	return m.Pids()
}

func (r *ociOps) CgroupPaths(ctx context.Context, id string) (map[string]string, error) {
	m, err := r.cgroup(id)
	if err != nil {
		return nil, err
	}
	return m.Paths(), nil
}

// Delete kills what is left and removes the runtime's state and the
// container's cgroups.
func (r *ociOps) Delete(ctx context.Context, id string, force bool) error {
	err := r.o.ForceDelete(ctx, id)
	if m, cerr := r.cgroup(id); cerr == nil {
		err = errors.Join(err, m.Destroy())
	}
	return err
}

func (r *ociOps) Pause(ctx context.Context, id string) error  { return r.o.Pause(ctx, id) }
func (r *ociOps) Resume(ctx context.Context, id string) error { return r.o.Resume(ctx, id) }
func (r *ociOps) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	return r.o.Update(ctx, id, res)
}
