package cgroup

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/cgroups"
	_ "github.com/opencontainers/cgroups/devices" // registers the v1 devices writer and the v2 eBPF filter
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Mode reports the host's cgroup layout: "v2" (unified only), "hybrid" (v1
// controllers plus a cgroup2 mount at /sys/fs/cgroup/unified) or "v1".
func Mode() string {
	switch {
	case cgroups.IsCgroup2UnifiedMode():
		return ModeV2
	case cgroups.IsCgroup2HybridMode():
		return ModeHybrid
	default:
		return ModeV1
	}
}

// manager implements Manager on top of the library's fs (v1) and fs2 (v2)
// managers. On a hybrid host both are used: fs for the v1 controllers and fs2
// for the container's directory in the unified hierarchy.
type manager struct {
	mu   sync.Mutex
	mode string

	v1      *fs.Manager       // v1 and hybrid
	v1Paths map[string]string // controller -> dir, without ""

	v2     *fs2.Manager // v2, and hybrid when the unified dir is in use
	v2Dir  string
	v2Root string // mount point of the unified hierarchy

	// needDevices is set for a manager built by New: its first Set programs
	// the devices cgroup (default deny) even when the resources carry no
	// device rules. A Load-ed manager only touches devices when asked to.
	needDevices bool
}

// New builds the manager for one container; it creates nothing until
// Apply.
//
// cgroupsPath follows the OCI rules: an absolute path is taken relative to
// the root of every hierarchy, a relative one relative to the runtime's own
// cgroup (on the unified hierarchy: the parent of the runtime's own cgroup,
// see unifiedDir), and "" means "/berth/<containerID>". The systemd
// "slice:prefix:name" form is refused: only the cgroupfs driver exists.
//
// r (may be nil) is validated here so impossible values fail before anything
// is created; the parts that must be in place before a process joins
// (cpuset cpus/mems, cpu realtime) are used by Apply. The limits themselves
// are written by Set, which the runtime calls after Apply.
func New(cgroupsPath, containerID string, r *specs.LinuxResources) (Manager, error) {
	inner, err := innerPath(cgroupsPath, containerID)
	if err != nil {
		return nil, err
	}
	m := &manager{mode: Mode(), needDevices: true}

	switch m.mode {
	case ModeV2:
		m.v2Root = cgroupRoot
		if m.v2Dir, err = unifiedDir(cgroupRoot, inner); err != nil {
			return nil, fmt.Errorf("cgroup: resolve %q: %w", cgroupsPath, err)
		}
	default:
		// Let the library map the path onto every mounted v1 hierarchy
		// (it knows about co-mounted controllers and nested setups), then
		// take the unified entry out: it is handled by fs2 below.
		probe, err := fs.NewManager(&cgroups.Cgroup{Path: inner, Resources: &cgroups.Resources{}}, nil)
		if err != nil {
			return nil, fmt.Errorf("cgroup: resolve %q: %w", cgroupsPath, err)
		}
		m.v1Paths = maps.Clone(probe.GetPaths())
		delete(m.v1Paths, "")
		if m.mode == ModeHybrid {
			m.v2Root = hybridUnifiedRoot
			if m.v2Dir, err = unifiedDir(hybridUnifiedRoot, inner); err != nil {
				return nil, fmt.Errorf("cgroup: resolve %q: %w", cgroupsPath, err)
			}
		}
	}

	// Validate everything now (device rules included), so a bad
	// configuration fails before any directory exists.
	conv, err := m.convert(r, true)
	if err != nil {
		return nil, err
	}
	applyRes := &cgroups.Resources{
		CpusetCpus:   conv.main.CpusetCpus,
		CpusetMems:   conv.main.CpusetMems,
		CpuRtRuntime: conv.main.CpuRtRuntime,
		CpuRtPeriod:  conv.main.CpuRtPeriod,
	}
	if err := m.build(applyRes); err != nil {
		return nil, err
	}
	return m, nil
}

// build creates the library managers for the paths already in m.
func (m *manager) build(applyRes *cgroups.Resources) error {
	if len(m.v1Paths) > 0 {
		cg := &cgroups.Cgroup{Resources: applyRes}
		v1, err := fs.NewManager(cg, maps.Clone(m.v1Paths))
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		m.v1 = v1
	}
	if m.v2Dir != "" {
		// fs2 needs non-nil Resources for Freeze.
		v2, err := fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, m.v2Dir)
		if err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		m.v2 = v2
	}
	return nil
}

// Load rebuilds the manager of an existing container from the map its
// Paths returned. Every path must be a clean absolute path below
// /sys/fs/cgroup.
func Load(paths map[string]string) (Manager, error) {
	if len(paths) == 0 {
		return nil, errors.New("cgroup: no cgroup paths to load")
	}
	m := &manager{mode: Mode()}
	for k, p := range paths {
		if err := checkDirUnder(cgroupRoot, p); err != nil {
			return nil, fmt.Errorf("cgroup: load %q: %w", k, err)
		}
		if k == "" {
			m.v2Dir = p
			continue
		}
		if strings.ContainsAny(k, "/\x00") {
			return nil, fmt.Errorf("cgroup: load: bad controller name %q", k)
		}
		if m.v1Paths == nil {
			m.v1Paths = make(map[string]string)
		}
		m.v1Paths[k] = p
	}
	switch m.mode {
	case ModeV2:
		if m.v1Paths != nil {
			return nil, errors.New("cgroup: load: saved paths are for cgroup v1 but this host runs cgroup v2")
		}
		m.v2Root = cgroupRoot
	case ModeV1, ModeHybrid:
		if m.v1Paths == nil {
			return nil, fmt.Errorf("cgroup: load: saved paths are for cgroup v2 but this host runs cgroup %s", m.mode)
		}
		if m.v2Dir != "" {
			if m.mode != ModeHybrid {
				return nil, errors.New("cgroup: load: saved paths have a unified directory but this host has no cgroup2 mount")
			}
			m.v2Root = hybridUnifiedRoot
			if err := checkDirUnder(m.v2Root, m.v2Dir); err != nil {
				return nil, fmt.Errorf("cgroup: load: %w", err)
			}
		}
	}
	if err := m.build(&cgroups.Resources{}); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *manager) Apply(pid int) error {
	if pid <= 0 && pid != -1 {
		return fmt.Errorf("cgroup: apply: invalid pid %d", pid)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	// The last container's Destroy removes the default parent (see
	// removeEmptyDefaultParents): a create racing it finds the parent gone
	// between its mkdirs (ENOENT), or going while it reads the parent's
	// cpuset to copy it (ENODEV: a cgroup being removed), and simply makes
	// it again.
	var err error
	for range 5 {
		if err = m.apply(pid); !errors.Is(err, os.ErrNotExist) && !errors.Is(err, unix.ENODEV) {
			break
		}
	}
	return err
}

func (m *manager) apply(pid int) error {
	if m.v1 != nil {
		if err := m.v1.Apply(pid); err != nil {
			return fmt.Errorf("cgroup: apply pid %d: %w", pid, err)
		}
	}
	if m.v2Dir != "" {
		if err := createUnified(m.v2Root, m.v2Dir, pid); err != nil {
			return err
		}
	}
	return nil
}

func (m *manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	programDevices := r.Devices != nil || m.needDevices
	conv, err := m.convert(r, programDevices)
	if err != nil {
		return err
	}
	switch m.mode {
	case ModeV2:
		if err := m.v2.Set(conv.main); err != nil {
			return fmt.Errorf("cgroup: set resources: %w", err)
		}
	default:
		if err := m.v1.Set(conv.main); err != nil {
			return fmt.Errorf("cgroup: set resources: %w", err)
		}
		if conv.unified != nil {
			if err := m.v2.Set(conv.unified); err != nil {
				return fmt.Errorf("cgroup: set unified resources: %w", err)
			}
		}
	}
	if programDevices {
		m.needDevices = false
	}
	return nil
}

// useV1Freezer says whether pausing goes through the v1 freezer controller
// (v1, and hybrid hosts that mount it) rather than cgroup.freeze.
func (m *manager) useV1Freezer() bool {
	return m.v1 != nil && m.v1Paths["freezer"] != ""
}

func (m *manager) setFreezer(state cgroups.FreezerState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var err error
	switch {
	case m.useV1Freezer():
		err = m.v1.Freeze(state)
	case m.v2 != nil:
		err = m.v2.Freeze(state)
	default:
		err = errors.New("no freezer controller available")
	}
	if err != nil {
		return fmt.Errorf("cgroup: set freezer to %s: %w", state, err)
	}
	return nil
}

func (m *manager) Freeze() error { return m.setFreezer(cgroups.Frozen) }
func (m *manager) Thaw() error   { return m.setFreezer(cgroups.Thawed) }

func (m *manager) Paused() (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var (
		state cgroups.FreezerState
		err   error
	)
	switch {
	case m.useV1Freezer():
		state, err = m.v1.GetFreezerState()
	case m.v2 != nil:
		state, err = m.v2.GetFreezerState()
	}
	if err != nil {
		return false, fmt.Errorf("cgroup: read freezer state: %w", err)
	}
	return state == cgroups.Frozen, nil
}

// dirs lists the container's distinct cgroup directories.
func (m *manager) dirs() []string {
	var out []string
	for _, d := range m.v1Paths {
		out = append(out, d)
	}
	if m.v2Dir != "" {
		out = append(out, m.v2Dir)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

func (m *manager) Pids() ([]int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := make(map[int]bool)
	found := false
	for _, d := range m.dirs() {
		pids, err := cgroups.GetAllPids(d)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("cgroup: list pids of %s: %w", d, err)
		}
		found = true
		for _, p := range pids {
			seen[p] = true
		}
	}
	if !found {
		return nil, errors.New("cgroup: list pids: the container's cgroups do not exist")
	}
	out := slices.Collect(maps.Keys(seen))
	sort.Ints(out)
	return out, nil
}

func (m *manager) Destroy() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dirs := m.dirs()
	if err := removeDirs(dirs, destroyRetry); err != nil {
		return fmt.Errorf("cgroup: destroy: %w", err)
	}
	removeEmptyDefaultParents(dirs)
	return nil
}

func (m *manager) Paths() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := maps.Clone(m.v1Paths)
	if out == nil {
		out = make(map[string]string)
	}
	if m.v2Dir != "" {
		out[""] = m.v2Dir
	}
	return out
}

// unlimited turns the kernel's "no limit" encodings (v1's page-rounded
// LONG_MAX, v2's "max" read as MaxUint64) into 0.
func unlimited(v uint64) uint64 {
	if v >= math.MaxInt64/2 {
		return 0
	}
	return v
}

func (m *manager) Stats() (*Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var (
		st  *cgroups.Stats
		err error
	)
	if m.mode == ModeV2 {
		st, err = m.v2.GetStats()
	} else {
		st, err = m.v1.GetStats()
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup: stats: %w", err)
	}
	out := &Stats{
		MemoryUsage:    st.MemoryStats.Usage.Usage,
		MemoryMaxUsage: st.MemoryStats.Usage.MaxUsage,
		MemoryLimit:    unlimited(st.MemoryStats.Usage.Limit),
		PidsCurrent:    st.PidsStats.Current,
		PidsLimit:      unlimited(st.PidsStats.Limit),
		CPUUsage:       st.CpuStats.CpuUsage.TotalUsage,
		CPUUser:        st.CpuStats.CpuUsage.UsageInUsermode,
		CPUSystem:      st.CpuStats.CpuUsage.UsageInKernelmode,
		MemoryStat:     st.MemoryStats.Stats,
	}
	for _, e := range st.BlkioStats.IoServiceBytesRecursive {
		out.IOServiceBytes = append(out.IOServiceBytes, IOEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	if n, err := m.oomKillCount(); err == nil {
		out.OOMKills = n
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return out, nil
}

func (m *manager) OOMKillCount() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.oomKillCount()
}

func (m *manager) oomKillCount() (uint64, error) {
	var (
		n   uint64
		err error
		dir string
	)
	if m.mode == ModeV2 {
		dir = m.v2Dir
		n, err = fs2.OOMKillCount(dir)
	} else {
		dir = m.v1Paths["memory"]
		if dir == "" {
			return 0, errors.New("cgroup: oom kill count: the memory controller is not mounted")
		}
		n, err = fs.OOMKillCount(dir)
	}
	if err != nil {
		return 0, fmt.Errorf("cgroup: oom kill count of %s: %w", filepath.Clean(dir), err)
	}
	return n, nil
}
