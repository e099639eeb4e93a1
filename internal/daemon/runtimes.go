package daemon

import (
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"

	apisystem "github.com/moby/moby/api/types/system"

	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/shim"
)

// runtimeName is what a runtime may be called (it names a directory).
var runtimeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// runtimeSet is the daemon's OCI runtimes: berth's own ("berth", always
// there), those of daemon.json's "runtimes" and --add-runtime, and "runc"
// when a runc binary is on PATH and the configuration names no "runc"
// (dockerd always has runc). SIGHUP replaces the set (set); containers
// keep the runtime they were started with.
type runtimeSet struct {
	execRoot string

	mu       sync.RWMutex
	runtimes map[string]Runtime // external ones
	def      string
}

var _ container.Runtimes = (*runtimeSet)(nil)

func newRuntimeSet(cfg Config) (*runtimeSet, error) {
	r := &runtimeSet{execRoot: cfg.ExecRoot}
	if err := r.set(cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// resolveRuntimes validates cfg's runtimes and default runtime and
// returns the external runtimes with the implicit runc.
func resolveRuntimes(cfg Config) (map[string]Runtime, string, error) {
	out := map[string]Runtime{}
	if p, err := exec.LookPath("runc"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			out["runc"] = Runtime{Path: abs}
		}
	}
	for name, rt := range cfg.Runtimes {
		switch {
		case name == container.BerthRuntime:
			return nil, "", fmt.Errorf("runtime name '%s' is reserved", name)
		case !runtimeName.MatchString(name):
			return nil, "", fmt.Errorf("invalid runtime name %q", name)
		case rt.Path == "":
			return nil, "", fmt.Errorf("runtime %s: path is required", name)
		}
		out[name] = rt
	}
	def := cfg.DefaultRuntime
	if def == "" {
		def = container.BerthRuntime
	}
	if _, ok := out[def]; !ok && def != container.BerthRuntime {
		return nil, "", fmt.Errorf("default runtime %s cannot be found", def)
	}
	return out, def, nil
}

// set replaces the runtimes with cfg's (nothing changes on error).
func (r *runtimeSet) set(cfg Config) error {
	rts, def, err := resolveRuntimes(cfg)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.runtimes, r.def = rts, def
	r.mu.Unlock()
	return nil
}

func (r *runtimeSet) Default() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.def
}

func (r *runtimeSet) Lookup(name string) (*shim.OCIRuntime, error) {
	if name == container.BerthRuntime {
		return nil, nil
	}
	r.mu.RLock()
	rt, ok := r.runtimes[name]
	r.mu.RUnlock()
	if !ok {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "unknown or invalid runtime name: %s", name)
	}
	path := rt.Path
	if !filepath.IsAbs(path) {
		p, err := exec.LookPath(path)
		if err != nil {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "runtime %s: %v", name, err)
		}
		path = p
	}
	return &shim.OCIRuntime{
		Name: name, Path: path, Args: slices.Clone(rt.RuntimeArgs),
		Root: filepath.Join(r.execRoot, "runtimes", name),
	}, nil
}

// info is /info's Runtimes and DefaultRuntime.
func (r *runtimeSet) info() (map[string]apisystem.RuntimeWithStatus, string) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := map[string]apisystem.RuntimeWithStatus{
		container.BerthRuntime: {Runtime: apisystem.Runtime{Path: "berth-shim"}},
	}
	for _, name := range slices.Sorted(maps.Keys(r.runtimes)) {
		rt := r.runtimes[name]
		out[name] = apisystem.RuntimeWithStatus{Runtime: apisystem.Runtime{Path: rt.Path, Args: slices.Clone(rt.RuntimeArgs)}}
	}
	return out, r.def
}
