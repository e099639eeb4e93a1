package cgroup

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager controls the cgroup(s) of one container.
//
// A Manager is safe for concurrent use by several goroutines of one
// process. Two processes working on the same container must be serialised by
// the caller (the runtime's per-container lock).
type Manager interface {
	// Apply creates the container's cgroup directories (every mounted
	// controller and, on a hybrid host, the unified hierarchy as well) and
	// moves pid into them. It is safe to call again with another pid.
	// Apply(-1) only creates the directories: the runtime then lets the
	// child join by itself while it is still single-threaded (writing a
	// v1 "tasks" file, or CLONE_INTO_CGROUP on v2), which avoids the
	// cgroup_threadgroup_rwsem write lock that moving a whole process takes.
	Apply(pid int) error
	// Set validates r and writes it to the cgroup files. A nil r is a no-op.
	// Fields left nil in r are not touched. It is used both at create time
	// (after Apply) and by `update`.
	Set(r *specs.LinuxResources) error
	// Freeze stops every process of the container; Thaw resumes them.
	Freeze() error
	Thaw() error
	// Paused reports whether the container's cgroup is frozen.
	Paused() (bool, error)
	// Pids lists every pid in the container's cgroup(s), sub-cgroups
	// included, sorted and without duplicates.
	Pids() ([]int, error)
	// Destroy removes the container's cgroup directories (and any
	// sub-cgroups). It kills nothing: the caller must have killed and
	// reaped the processes first. Missing directories are not an error.
	Destroy() error
	// Paths maps controller name to absolute directory. The key "" holds the
	// unified (cgroup v2) directory, on a v2 host and on a hybrid host. The
	// runtime persists it and hands it back to Load.
	Paths() map[string]string
	// Stats reads a small set of usage figures.
	Stats() (*Stats, error)
	// OOMKillCount returns how many processes of the container the kernel's
	// OOM killer has killed.
	OOMKillCount() (uint64, error)
}

// Stats is a snapshot of the container's resource usage. Limits of 0 mean
// "unlimited".
type Stats struct {
	// MemoryUsage is the memory currently charged to the cgroup, in bytes.
	MemoryUsage uint64 `json:"memoryUsage"`
	// MemoryMaxUsage is the peak of MemoryUsage (0 where the kernel does not
	// record it).
	MemoryMaxUsage uint64 `json:"memoryMaxUsage"`
	// MemoryLimit is the hard memory limit in bytes; 0 = unlimited.
	MemoryLimit uint64 `json:"memoryLimit"`
	// OOMKills counts processes killed by the OOM killer in the cgroup.
	OOMKills uint64 `json:"oomKills"`
	// PidsCurrent is the number of tasks in the cgroup.
	PidsCurrent uint64 `json:"pidsCurrent"`
	// PidsLimit is the pids limit; 0 = unlimited.
	PidsLimit uint64 `json:"pidsLimit"`
	// CPUUsage, CPUUser and CPUSystem are the consumed CPU time in
	// nanoseconds (total, user mode, kernel mode).
	CPUUsage  uint64 `json:"cpuUsage"`
	CPUUser   uint64 `json:"cpuUser"`
	CPUSystem uint64 `json:"cpuSystem"`
	// MemoryStat is the memory controller's detailed counters
	// (memory.stat: "cache", "inactive_file", "total_inactive_file", ...).
	MemoryStat map[string]uint64 `json:"memoryStat,omitempty"`
	// IOServiceBytes are the bytes read and written per device (v1
	// blkio.io_service_bytes_recursive, v2 io.stat rbytes/wbytes), with
	// Op "Read", "Write" (and v1's other ops).
	IOServiceBytes []IOEntry `json:"ioServiceBytes,omitempty"`
}

// IOEntry is one block I/O counter of a device.
type IOEntry struct {
	Major, Minor uint64
	Op           string
	Value        uint64
}

// Host cgroup layouts reported by Mode.
const (
	ModeV1     = "v1"
	ModeV2     = "v2"
	ModeHybrid = "hybrid"
)

// ErrUnsupported is returned on platforms without Linux cgroups.
var ErrUnsupported = errors.New("cgroup: cgroups are only supported on Linux")
