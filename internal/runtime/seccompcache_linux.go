package runtime

import (
	"fmt"
	"path/filepath"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/seccomp"
	"github.com/berth-dev/berth/internal/runtime/seccomp/bpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// seccompCacheDir is where the compiled seccomp filters of this runtime
// are kept for the next process (see package seccomp, cache_linux.go):
// beside the state root, as <root>-seccomp, not in it. The root holds one
// directory per container and nothing else; List reads it, and callers
// (the engine, the shim, tests) check it is empty once every container
// is deleted. The cache is only an optimisation: files that do not check
// out are ignored and rewritten, and removing the directory at any time
// is safe.
func (r *Runtime) seccompCacheDir() string {
	if filepath.Dir(r.root) == r.root {
		return filepath.Join(r.root, ".berth-seccomp")
	}
	return r.root + "-seccomp"
}

// WarmSeccomp does ahead, at idle time, what the first seccomp compile of
// a fresh process costs on the path of create (seccomp.Warm): a warm
// spare shim calls it while it waits.
func (r *Runtime) WarmSeccomp() { seccomp.Warm(r.seccompCacheDir()) }

// seccompProgram checks and compiles a container's seccomp config, once
// per distinct config on the host; nil when there is none.
func (r *Runtime) seccompProgram(s *specs.LinuxSeccomp) (*bpf.Program, error) {
	if s == nil {
		return nil, nil
	}
	p, err := seccomp.Compile(s, r.seccompCacheDir())
	if err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("seccomp: %w", err))
	}
	return p, nil
}

// forInit returns spec as the container init (or exec process) gets it:
// without linux.seccomp (the init gets the filter compiled,
// Config.Seccomp, and would only spend time decoding the profile's JSON)
// and without what only the runtime's parent side uses — the cgroup
// resources and path (the shim applies them), the namespace list (the
// plan made of it travels as Config's flags). The init decodes its config
// with cold caches on the path of start: every field left out is decoding
// saved (a default container's config 3709 -> 3001 bytes, 38 -> 28 us
// warm, more cold).
func forInit(spec *specs.Spec) *specs.Spec {
	if spec == nil || spec.Linux == nil {
		return spec
	}
	s, l := *spec, *spec.Linux
	l.Seccomp, l.Resources, l.CgroupsPath, l.Namespaces = nil, nil, "", nil
	s.Linux = &l
	return &s
}
