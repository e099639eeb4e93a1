package cgroup

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	devices "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Kernel bounds checked before anything is written.
const (
	minCPUPeriod = 1000    // µs, CFS bandwidth period lower bound
	maxCPUPeriod = 1000000 // µs, upper bound
	minCPUQuota  = 1000    // µs, smallest accepted CFS quota
	minIOWeight  = 10
	maxIOWeight  = 1000
	maxCPUIndex  = 1 << 16 // sanity bound for cpuset lists
)

// DefaultDeviceRules are the devices every container may use whatever its
// configuration says: mknod (only) of any char or block device, so the
// runtime can create the nodes of linux.devices (access to them is still
// governed by the rules), the "default devices" of the OCI runtime spec
// (/dev/null, zero, full, random, urandom, tty, console, ptmx) and the devpts
// slaves. They are appended after the configured rules whenever the devices
// cgroup is programmed, so a container always gets a working /dev. This is
// the same baseline Docker containers have.
var DefaultDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Access: "m"}, // mknod of any char device
	{Allow: true, Type: "b", Access: "m"}, // mknod of any block device
	charDev(1, 3),                         // /dev/null
	charDev(1, 5),                         // /dev/zero
	charDev(1, 7),                         // /dev/full
	charDev(1, 8),                         // /dev/random
	charDev(1, 9),                         // /dev/urandom
	charDev(5, 0),                         // /dev/tty
	charDev(5, 1),                         // /dev/console
	charDev(5, 2),                         // /dev/ptmx
	charDev(136, DeviceWildcard),          // /dev/pts/*
}

// DeviceWildcard stands for "any major" or "any minor" in DefaultDeviceRules.
const DeviceWildcard = int64(devices.Wildcard)

func charDev(major, minor int64) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Access: "rwm", Major: &major}
	if minor != DeviceWildcard {
		d.Minor = &minor
	}
	return d
}

// converted is the outcome of checking a specs.LinuxResources against the
// host: main goes to the fs (v1) or fs2 (v2) manager, unified (hybrid hosts
// only, may be nil) to the v2 directory beside the v1 ones.
type converted struct {
	main    *cgroups.Resources
	unified *cgroups.Resources
}

// convert validates r and translates it. It reads the cgroup filesystem to
// learn what the kernel supports but never writes. programDevices says
// whether the devices cgroup is to be (re)programmed.
func (m *manager) convert(r *specs.LinuxResources, programDevices bool) (*converted, error) {
	res := &cgroups.Resources{SkipDevices: true}
	var uni *cgroups.Resources
	unifiedRes := func() *cgroups.Resources {
		if uni == nil {
			uni = &cgroups.Resources{SkipDevices: true}
		}
		return uni
	}
	if r == nil {
		r = &specs.LinuxResources{}
	}

	if err := m.convertMemory(r.Memory, res); err != nil {
		return nil, err
	}
	if err := m.convertCPU(r.CPU, res); err != nil {
		return nil, err
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		l := *r.Pids.Limit
		if l <= 0 {
			l = -1 // unlimited ("max"), as Docker means by 0 and -1
		}
		res.PidsLimit = &l
	}
	if err := m.convertBlockIO(r.BlockIO, res); err != nil {
		return nil, err
	}

	if len(r.HugepageLimits) > 0 {
		sizes := cgroups.HugePageSizes()
		var limits []*cgroups.HugepageLimit
		for _, h := range r.HugepageLimits {
			if !slices.Contains(sizes, h.Pagesize) {
				return nil, fmt.Errorf("cgroup: hugepage size %q is not supported by this kernel (supported: %s)",
					h.Pagesize, strings.Join(sizes, ", "))
			}
			limits = append(limits, &cgroups.HugepageLimit{Pagesize: h.Pagesize, Limit: h.Limit})
		}
		switch {
		case m.mode == ModeV2:
			res.HugetlbLimit = limits
		case m.v1Paths["hugetlb"] != "":
			res.HugetlbLimit = limits
		case m.mode == ModeHybrid && m.unifiedHas("hugetlb"):
			unifiedRes().HugetlbLimit = limits
		default:
			return nil, errors.New("cgroup: hugepage limits need the hugetlb controller, which is not available on this host")
		}
	}

	if n := r.Network; n != nil && m.mode != ModeV2 {
		// net_cls and net_prio exist only as v1 controllers; where they are
		// not mounted the settings are dropped.
		if n.ClassID != nil && m.v1Paths["net_cls"] != "" {
			res.NetClsClassid = *n.ClassID
		}
		if len(n.Priorities) > 0 && m.v1Paths["net_prio"] != "" {
			for _, p := range n.Priorities {
				if p.Name == "" || strings.ContainsAny(p.Name, " \n/") {
					return nil, fmt.Errorf("cgroup: invalid network interface name %q in network priorities", p.Name)
				}
				res.NetPrioIfpriomap = append(res.NetPrioIfpriomap,
					&cgroups.IfPrioMap{Interface: p.Name, Priority: int64(p.Priority)})
			}
		}
	}

	if len(r.Rdma) > 0 {
		if m.mode != ModeV2 && m.v1Paths["rdma"] == "" {
			return nil, errors.New("cgroup: rdma limits need the rdma controller, which is not mounted")
		}
		res.Rdma = make(map[string]cgroups.LinuxRdma, len(r.Rdma))
		for dev, l := range r.Rdma {
			res.Rdma[dev] = cgroups.LinuxRdma{HcaHandles: l.HcaHandles, HcaObjects: l.HcaObjects}
		}
	}

	if len(r.Unified) > 0 {
		for k := range r.Unified {
			if err := checkUnifiedKey(k); err != nil {
				return nil, err
			}
		}
		switch m.mode {
		case ModeV2:
			res.Unified = r.Unified
		case ModeHybrid:
			if m.v2Dir == "" {
				return nil, errors.New("cgroup: unified resources given but the container has no cgroup v2 directory")
			}
			unifiedRes().Unified = r.Unified
		default:
			return nil, errors.New("cgroup: unified (cgroup v2) resources given but this host only has cgroup v1")
		}
	}

	if programDevices {
		rules, err := deviceRules(r.Devices)
		if err != nil {
			return nil, err
		}
		res.Devices = rules
		res.SkipDevices = false
	}
	return &converted{main: res, unified: uni}, nil
}

func (m *manager) convertMemory(mem *specs.LinuxMemory, res *cgroups.Resources) error {
	if mem == nil {
		return nil
	}
	// Kernel, KernelTCP and UseHierarchy are deliberately ignored: kernel
	// memory limits are gone from current kernels and cgroup v2, and
	// hierarchy is always on.
	var limit int64
	if mem.Limit != nil {
		limit = *mem.Limit
		if limit < -1 {
			return fmt.Errorf("cgroup: invalid memory limit %d: use -1 for unlimited or a positive number of bytes", limit)
		}
		res.Memory = limit // 0 means "leave unchanged"
	}
	if mem.Reservation != nil {
		v := *mem.Reservation
		if v < -1 {
			return fmt.Errorf("cgroup: invalid memory reservation %d: use -1 for unlimited or a positive number of bytes", v)
		}
		if limit > 0 && v > limit {
			return fmt.Errorf("cgroup: memory reservation %d is above the memory limit %d", v, limit)
		}
		res.MemoryReservation = v
	}
	if mem.Swap != nil {
		v := *mem.Swap
		if v < -1 {
			return fmt.Errorf("cgroup: invalid memory+swap limit %d: use -1 for unlimited or a positive number of bytes", v)
		}
		if v > 0 && limit > 0 && v < limit {
			return fmt.Errorf("cgroup: memory+swap limit %d is below the memory limit %d "+
				"(swap counts memory plus swap, so it must be at least the memory limit, or -1)", v, limit)
		}
		if m.mode != ModeV2 {
			if v > 0 && limit == -1 {
				return fmt.Errorf("cgroup: memory+swap limit %d cannot go with an unlimited (-1) memory limit on cgroup v1", v)
			}
			if v != 0 && !m.v1FileExists("memory", "memory.memsw.limit_in_bytes") {
				// No swap accounting: "unlimited" and "no swap beyond
				// memory" are what the kernel does anyway.
				if v != -1 && v != limit {
					return fmt.Errorf("cgroup: memory+swap limit %d needs swap accounting, which this kernel lacks "+
						"(no memory.memsw.limit_in_bytes)", v)
				}
				v = 0
			}
		}
		res.MemorySwap = v
	}
	if mem.Swappiness != nil && *mem.Swappiness != math.MaxUint64 { // MaxUint64 is int64(-1): "default"
		v := *mem.Swappiness
		if v > 100 {
			return fmt.Errorf("cgroup: invalid memory swappiness %d: valid range is 0-100", v)
		}
		if m.mode != ModeV2 { // cgroup v2 has no per-cgroup swappiness
			res.MemorySwappiness = &v
		}
	}
	if mem.DisableOOMKiller != nil && m.mode != ModeV2 { // v2 has no switch for it
		res.OomKillDisable = *mem.DisableOOMKiller
	}
	if mem.CheckBeforeUpdate != nil {
		res.MemoryCheckBeforeUpdate = *mem.CheckBeforeUpdate
	}
	return nil
}

func (m *manager) convertCPU(c *specs.LinuxCPU, res *cgroups.Resources) error {
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 {
		if m.mode == ModeV2 {
			res.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(*c.Shares)
		} else {
			res.CpuShares = *c.Shares
		}
	}
	if c.Quota != nil {
		q := *c.Quota
		if q < -1 || (q > 0 && q < minCPUQuota) {
			return fmt.Errorf("cgroup: invalid cpu quota %d: use -1 for unlimited or at least %d µs", q, minCPUQuota)
		}
		res.CpuQuota = q
	}
	if c.Period != nil {
		p := *c.Period
		if p != 0 && (p < minCPUPeriod || p > maxCPUPeriod) {
			return fmt.Errorf("cgroup: invalid cpu period %d: must be between %d and %d µs", p, minCPUPeriod, maxCPUPeriod)
		}
		res.CpuPeriod = p
	}
	if c.Burst != nil {
		b := *c.Burst
		res.CpuBurst = &b
	}
	var rtRuntime int64
	var rtPeriod uint64
	if c.RealtimeRuntime != nil {
		rtRuntime = *c.RealtimeRuntime
	}
	if c.RealtimePeriod != nil {
		rtPeriod = *c.RealtimePeriod
	}
	if rtRuntime != 0 || rtPeriod != 0 {
		if m.mode == ModeV2 {
			return errors.New("cgroup: cpu realtime runtime/period need the cgroup v1 cpu controller; cgroup v2 has no such limits")
		}
		if !m.v1FileExists("cpu", "cpu.rt_runtime_us") {
			return errors.New("cgroup: cpu realtime runtime/period need a kernel with CONFIG_RT_GROUP_SCHED (no cpu.rt_runtime_us)")
		}
		if rtRuntime < -1 {
			return fmt.Errorf("cgroup: invalid cpu realtime runtime %d: use -1 for unlimited or a number of µs", rtRuntime)
		}
		if rtPeriod != 0 && rtRuntime > 0 && uint64(rtRuntime) > rtPeriod {
			return fmt.Errorf("cgroup: cpu realtime runtime %d µs exceeds the realtime period %d µs", rtRuntime, rtPeriod)
		}
		res.CpuRtRuntime = rtRuntime
		res.CpuRtPeriod = rtPeriod
	}
	if c.Cpus != "" {
		if err := m.checkCpuset("cpus", c.Cpus); err != nil {
			return err
		}
		res.CpusetCpus = c.Cpus
	}
	if c.Mems != "" {
		if err := m.checkCpuset("mems", c.Mems); err != nil {
			return err
		}
		res.CpusetMems = c.Mems
	}
	if c.Idle != nil {
		v := *c.Idle
		if v != 0 && v != 1 {
			return fmt.Errorf("cgroup: invalid cpu idle %d: must be 0 or 1", v)
		}
		// cpu.idle appeared in Linux 5.15; on older kernels the setting is
		// dropped.
		if m.cpuIdleSupported() {
			res.CPUIdle = &v
		}
	}
	return nil
}

func (m *manager) convertBlockIO(b *specs.LinuxBlockIO, res *cgroups.Resources) error {
	if b == nil {
		return nil
	}
	checkWeight := func(what string, w *uint16) (uint16, error) {
		if w == nil || *w == 0 {
			return 0, nil
		}
		if *w < minIOWeight || *w > maxIOWeight {
			return 0, fmt.Errorf("cgroup: invalid blkio %s %d: valid range is %d-%d", what, *w, minIOWeight, maxIOWeight)
		}
		return *w, nil
	}
	checkDev := func(what string, major, minor int64) error {
		if major < 0 || minor < 0 {
			return fmt.Errorf("cgroup: invalid device %d:%d in blkio %s", major, minor, what)
		}
		return nil
	}
	var err error
	if res.BlkioWeight, err = checkWeight("weight", b.Weight); err != nil {
		return err
	}
	if m.mode != ModeV2 { // leaf weights do not exist in cgroup v2
		if res.BlkioLeafWeight, err = checkWeight("leafWeight", b.LeafWeight); err != nil {
			return err
		}
	}
	for _, wd := range b.WeightDevice {
		if err := checkDev("weightDevice", wd.Major, wd.Minor); err != nil {
			return err
		}
		w, err := checkWeight("device weight", wd.Weight)
		if err != nil {
			return err
		}
		lw, err := checkWeight("device leafWeight", wd.LeafWeight)
		if err != nil {
			return err
		}
		if m.mode == ModeV2 {
			lw = 0
		}
		if w == 0 && lw == 0 {
			continue
		}
		res.BlkioWeightDevice = append(res.BlkioWeightDevice, cgroups.NewWeightDevice(wd.Major, wd.Minor, w, lw))
	}
	throttle := func(what string, in []specs.LinuxThrottleDevice) ([]*cgroups.ThrottleDevice, error) {
		var out []*cgroups.ThrottleDevice
		for _, td := range in {
			if err := checkDev(what, td.Major, td.Minor); err != nil {
				return nil, err
			}
			out = append(out, cgroups.NewThrottleDevice(td.Major, td.Minor, td.Rate))
		}
		return out, nil
	}
	if res.BlkioThrottleReadBpsDevice, err = throttle("throttleReadBpsDevice", b.ThrottleReadBpsDevice); err != nil {
		return err
	}
	if res.BlkioThrottleWriteBpsDevice, err = throttle("throttleWriteBpsDevice", b.ThrottleWriteBpsDevice); err != nil {
		return err
	}
	if res.BlkioThrottleReadIOPSDevice, err = throttle("throttleReadIOPSDevice", b.ThrottleReadIOPSDevice); err != nil {
		return err
	}
	if res.BlkioThrottleWriteIOPSDevice, err = throttle("throttleWriteIOPSDevice", b.ThrottleWriteIOPSDevice); err != nil {
		return err
	}
	return nil
}

// deviceRules builds the rule list the devices cgroup is programmed with:
// deny everything, then the configured rules in order, then
// DefaultDeviceRules.
func deviceRules(in []specs.LinuxDeviceCgroup) ([]*devices.Rule, error) {
	rules := []*devices.Rule{{
		Type: devices.WildcardDevice, Major: devices.Wildcard, Minor: devices.Wildcard,
		Permissions: "rwm", Allow: false,
	}}
	for i, d := range in {
		r, err := deviceRule(d)
		if err != nil {
			return nil, fmt.Errorf("cgroup: device rule %d: %w", i, err)
		}
		rules = append(rules, r)
	}
	for _, d := range DefaultDeviceRules {
		r, err := deviceRule(d)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func deviceRule(d specs.LinuxDeviceCgroup) (*devices.Rule, error) {
	t := d.Type
	if t == "" {
		t = "a"
	}
	if t != "a" && t != "b" && t != "c" {
		return nil, fmt.Errorf("invalid device type %q: must be a, b or c", d.Type)
	}
	num := func(what string, p *int64) (int64, error) {
		if p == nil || *p == DeviceWildcard {
			return devices.Wildcard, nil
		}
		if *p < 0 {
			return 0, fmt.Errorf("invalid device %s number %d", what, *p)
		}
		return *p, nil
	}
	major, err := num("major", d.Major)
	if err != nil {
		return nil, err
	}
	minor, err := num("minor", d.Minor)
	if err != nil {
		return nil, err
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	perms := devices.Permissions(access)
	if strings.Trim(access, "rwm") != "" || !perms.IsValid() {
		return nil, fmt.Errorf("invalid device access %q: must be made of r, w and m", d.Access)
	}
	return &devices.Rule{Type: devices.Type(t[0]), Major: major, Minor: minor, Permissions: perms, Allow: d.Allow}, nil
}

func checkUnifiedKey(k string) error {
	switch {
	case k == "", strings.ContainsAny(k, "/\x00"), k == ".", k == "..":
		return fmt.Errorf("cgroup: unified resource %q must be a plain cgroup file name", k)
	case !strings.Contains(k, "."):
		return fmt.Errorf("cgroup: unified resource %q must have the form CONTROLLER.PARAMETER", k)
	}
	return nil
}

// parseCPUList parses a kernel list such as "0-3,8,10-11".
func parseCPUList(s string) (map[int]bool, error) {
	set := make(map[int]bool)
	s = strings.TrimSpace(s)
	if s == "" {
		return set, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 || a >= maxCPUIndex {
			return nil, fmt.Errorf("bad element %q", part)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b >= maxCPUIndex {
				return nil, fmt.Errorf("bad range %q", part)
			}
		}
		for i := a; i <= b; i++ {
			set[i] = true
		}
	}
	return set, nil
}

// checkCpuset validates a cpuset list ("cpus" or "mems") and makes sure the
// parent cgroup allows every element of it.
func (m *manager) checkCpuset(kind, list string) error {
	want, err := parseCPUList(list)
	if err != nil {
		return fmt.Errorf("cgroup: invalid cpuset %s %q: %v", kind, list, err)
	}
	dir, allowed, err := m.parentCpuset(kind)
	if err != nil {
		return err
	}
	if dir == "" {
		return nil // nothing to compare with
	}
	have, err := parseCPUList(allowed)
	if err != nil {
		return fmt.Errorf("cgroup: parse %s of %s: %v", kind, dir, err)
	}
	for i := range want {
		if !have[i] {
			return fmt.Errorf("cgroup: cpuset %s %q is not allowed: the parent cgroup %s only allows %q",
				kind, list, dir, strings.TrimSpace(allowed))
		}
	}
	return nil
}

// parentCpuset finds the nearest existing ancestor of the container's cpuset
// cgroup with a non-empty list of kind and returns its directory and list.
func (m *manager) parentCpuset(kind string) (string, string, error) {
	var dir, root string
	var files []string
	switch {
	case m.mode == ModeV2:
		dir, root = m.v2Dir, m.v2Root
		files = []string{"cpuset." + kind + ".effective"}
	case m.v1Paths["cpuset"] != "":
		dir = m.v1Paths["cpuset"]
		root = v1MountOf(dir)
		files = []string{"cpuset." + kind, kind} // kind alone: "noprefix" mounts
	default:
		return "", "", fmt.Errorf("cgroup: cpuset %s given but the cpuset controller is not mounted", kind)
	}
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(d, f))
			if err == nil && strings.TrimSpace(string(b)) != "" {
				return d, string(b), nil
			}
		}
		if d == root || len(d) <= len(root) || d == "/" {
			break
		}
	}
	if m.mode == ModeV2 {
		return "", "", errors.New("cgroup: cpuset limits need the cpuset controller, which is not enabled on this host")
	}
	return "", "", nil
}

// v1MountOf returns the hierarchy mount directory (e.g.
// /sys/fs/cgroup/cpuset) of a v1 cgroup directory.
func v1MountOf(dir string) string {
	rest, ok := strings.CutPrefix(dir, cgroupRoot+"/")
	if !ok {
		return cgroupRoot
	}
	first, _, _ := strings.Cut(rest, "/")
	return filepath.Join(cgroupRoot, first)
}

// v1FileExists reports whether file exists for the v1 controller ctrl,
// looking in the container's directory or, before it is created, in its
// nearest existing ancestor (the interface files are the same at every
// level below the root).
func (m *manager) v1FileExists(ctrl, file string) bool {
	dir := m.v1Paths[ctrl]
	if dir == "" {
		return false
	}
	return fileNear(dir, v1MountOf(dir), file)
}

func (m *manager) cpuIdleSupported() bool {
	if m.mode == ModeV2 {
		return fileNear(m.v2Dir, m.v2Root, "cpu.idle")
	}
	return m.v1FileExists("cpu", "cpu.idle")
}

// fileNear checks for file in dir or its nearest existing ancestor not above
// root.
func fileNear(dir, root, file string) bool {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			_, err := os.Stat(filepath.Join(d, file))
			if err == nil {
				return true
			}
			// The root cgroup lacks many interface files its children
			// have; only trust a negative answer from below the root.
			if d != root {
				return false
			}
		}
		if d == root || len(d) <= len(root) || d == "/" {
			return false
		}
	}
}

// unifiedHas reports whether controller ctrl can be used in the unified
// directory on a hybrid host.
func (m *manager) unifiedHas(ctrl string) bool {
	if m.v2Dir == "" {
		return false
	}
	for d := m.v2Dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "cgroup.controllers")); err == nil {
			return slices.Contains(strings.Fields(string(b)), ctrl)
		}
		if d == m.v2Root || len(d) <= len(m.v2Root) {
			return false
		}
	}
}
