//go:build linux

package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// hostInfo is what Generate needs to know about the host. It is gathered
// by probeHost, which tests replace to get host-independent output.
type hostInfo struct {
	kernel   [2]int // major, minor
	cgroupV2 bool   // /sys/fs/cgroup is the unified hierarchy
	// sysctls that exist on the host, among those Docker sets by default.
	sysctls map[string]bool
	// thermalThrottle lists /sys/devices/system/cpu/cpuN/thermal_throttle
	// directories present on the host (masked since Docker 28).
	thermalThrottle []string
	hostname        string
	ncpu            int
	capLast         int    // /proc/sys/kernel/cap_last_cap, -1 if unknown
	capBounding     uint64 // berth's own bounding set, 0 if unknown
}

var probeHost = realHost

// realHost is the host as it is now: all but the hostname is probed once
// per process (kernel, cgroup version, sysctls, CPUs and capabilities do
// not change under a running berthd), not on every container start. The
// map and slice in it are shared and read-only.
func realHost() hostInfo {
	h := staticHost()
	h.hostname, _ = os.Hostname()
	return h
}

var staticHost = sync.OnceValue(probeStaticHost)

func probeStaticHost() hostInfo {
	h := hostInfo{sysctls: map[string]bool{}, ncpu: runtime.NumCPU(), capLast: readCapLast(), capBounding: readOwnBounding()}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		if v, err := parseKernelVersion(unix.ByteSliceToString(u.Release[:])); err == nil {
			h.kernel = v
		}
	}
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		h.cgroupV2 = true
	}
	for _, k := range defaultSysctlNames {
		if _, err := os.Stat(filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))); err == nil {
			h.sysctls[k] = true
		}
	}
	for _, cpu := range possibleCPUs() {
		p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/thermal_throttle", cpu)
		if _, err := os.Stat(p); err == nil {
			h.thermalThrottle = append(h.thermalThrottle, p)
		}
	}
	return h
}

// possibleCPUs parses /sys/devices/system/cpu/possible ("0-3,8").
func possibleCPUs() []int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return nil
	}
	cpus, err := parseCPUList(strings.TrimSpace(string(b)))
	if err != nil {
		return nil
	}
	return cpus
}

// parseCPUList parses a cpuset list such as "0-2,4".
func parseCPUList(s string) ([]int, error) {
	var out []int
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("invalid cpu list %q", s)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("invalid cpu list %q", s)
			}
		}
		if b-a > 1<<16 {
			return nil, fmt.Errorf("invalid cpu list %q: range too large", s)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

// sourceMount returns the mount point holding the host path p (symlinks
// resolved) and its propagation tags, mountinfo's optional fields ("shared:N",
// "master:N"). Tests replace it.
var sourceMount = func(p string) (mountpoint, optional string, err error) {
	resolved, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", "", err
	}
	infos, err := mountinfo.GetMounts(mountinfo.ParentsFilter(resolved))
	if err != nil {
		return "", "", err
	}
	var best *mountinfo.Info
	for _, mi := range infos {
		if best == nil || len(mi.Mountpoint) > len(best.Mountpoint) {
			best = mi
		}
	}
	if best == nil {
		return "", "", fmt.Errorf("cannot find the mount point of %s", p)
	}
	return best.Mountpoint, best.Optional, nil
}
