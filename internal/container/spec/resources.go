//go:build linux

package spec

import (
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/blkiodev"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Docker's limits on resources (daemon_unix.go).
const (
	minMemory      = 6 << 20 // 6 MiB
	minCPUShares   = 2
	maxCPUShares   = 262144
	defaultPeriod  = 100000 // µs, the CFS period used for NanoCPUs
	minCPUPeriod   = 1000
	maxCPUPeriod   = 1000000
	minBlkioWeight = 10
	maxBlkioWeight = 1000
)

func invalidRes(format string, args ...any) error {
	return errdefs.Newf(errdefs.InvalidArgument, format, args...)
}

// resources converts HostConfig's cgroup resources with dockerd's
// validation and defaults (swap = 2 x memory when only memory is set;
// NanoCPUs as a quota over a 100 ms period; PidsLimit 0 or -1 unlimited).
func (g *generator) resources() error {
	r := g.hc.Resources
	res := g.s.Linux.Resources

	// Memory.
	switch {
	case r.Memory != 0 && r.Memory < minMemory:
		return invalidRes("Minimum memory limit allowed is 6MB")
	case r.MemorySwap > 0 && r.Memory == 0:
		return invalidRes("You should always set the Memory limit when using Memoryswap limit, see usage")
	case r.Memory > 0 && r.MemorySwap > 0 && r.MemorySwap < r.Memory:
		return invalidRes("Minimum memoryswap limit should be larger than memory limit, see usage")
	case r.MemorySwap < -1:
		return invalidRes("invalid memory swap limit %d: use -1 for unlimited", r.MemorySwap)
	case r.MemoryReservation != 0 && r.MemoryReservation < minMemory:
		return invalidRes("Minimum memory reservation allowed is 6MB")
	case r.Memory > 0 && r.MemoryReservation > 0 && r.Memory < r.MemoryReservation:
		return invalidRes("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	mem := &specs.LinuxMemory{}
	if r.Memory > 0 {
		mem.Limit = i64(r.Memory)
		// Unlimited swap (-1) is no swap limit at all, as in dockerd's
		// spec; 0 means twice the memory limit.
		switch swap := r.MemorySwap; swap {
		case 0:
			mem.Swap = i64(2 * r.Memory)
		case -1:
		default:
			mem.Swap = i64(swap)
		}
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = i64(r.MemoryReservation)
	}
	if s := r.MemorySwappiness; s != nil && *s != -1 {
		if *s < 0 || *s > 100 {
			return invalidRes("Invalid value: %v, valid memory swappiness range is 0-100", *s)
		}
		v := uint64(*s)
		mem.Swappiness = &v
	}
	if r.OomKillDisable != nil {
		v := *r.OomKillDisable
		mem.DisableOOMKiller = &v
	}
	if *mem != (specs.LinuxMemory{}) {
		res.Memory = mem
	}

	// CPU.
	cpu := &specs.LinuxCPU{}
	switch {
	case r.NanoCPUs > 0 && r.CPUPeriod > 0:
		return invalidRes("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	case r.NanoCPUs > 0 && r.CPUQuota > 0:
		return invalidRes("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	case r.NanoCPUs < 0 || (g.host.ncpu > 0 && r.NanoCPUs > int64(g.host.ncpu)*1e9):
		return invalidRes("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", g.host.ncpu, g.host.ncpu)
	case r.CPUPeriod != 0 && (r.CPUPeriod < minCPUPeriod || r.CPUPeriod > maxCPUPeriod):
		return invalidRes("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	case r.CPUQuota > 0 && r.CPUQuota < minCPUPeriod:
		return invalidRes("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	case r.CPUShares < 0:
		return invalidRes("Invalid CPU shares (%d): value must be a positive integer", r.CPUShares)
	}
	if r.NanoCPUs > 0 {
		period := uint64(defaultPeriod)
		cpu.Period = &period
		cpu.Quota = i64(r.NanoCPUs * defaultPeriod / 1e9)
	}
	if r.CPUPeriod != 0 {
		p := uint64(r.CPUPeriod)
		cpu.Period = &p
	}
	if r.CPUQuota != 0 {
		cpu.Quota = i64(r.CPUQuota)
	}
	if r.CPUShares != 0 {
		s := r.CPUShares
		s = max(min(s, maxCPUShares), minCPUShares)
		v := uint64(s)
		cpu.Shares = &v
	}
	if r.CpusetCpus != "" {
		if _, err := parseCPUList(r.CpusetCpus); err != nil {
			return invalidRes("Invalid value %s for cpuset cpus", r.CpusetCpus)
		}
		cpu.Cpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		if _, err := parseCPUList(r.CpusetMems); err != nil {
			return invalidRes("Invalid value %s for cpuset mems", r.CpusetMems)
		}
		cpu.Mems = r.CpusetMems
	}
	if r.CPURealtimePeriod != 0 {
		v := uint64(r.CPURealtimePeriod)
		cpu.RealtimePeriod = &v
	}
	if r.CPURealtimeRuntime != 0 {
		cpu.RealtimeRuntime = i64(r.CPURealtimeRuntime)
	}
	if cpu.Shares != nil || cpu.Quota != nil || cpu.Period != nil || cpu.Cpus != "" || cpu.Mems != "" ||
		cpu.RealtimePeriod != nil || cpu.RealtimeRuntime != nil {
		res.CPU = cpu
	}

	// Pids: 0 and -1 mean unlimited, which is also what no limit means.
	if r.PidsLimit != nil && *r.PidsLimit > 0 {
		res.Pids = &specs.LinuxPids{Limit: i64(*r.PidsLimit)}
	}

	// Block I/O.
	if r.BlkioWeight > 0 && (r.BlkioWeight < minBlkioWeight || r.BlkioWeight > maxBlkioWeight) {
		return invalidRes("Range of blkio weight is from 10 to 1000")
	}
	bio := &specs.LinuxBlockIO{}
	if r.BlkioWeight > 0 {
		w := r.BlkioWeight
		bio.Weight = &w
	}
	for _, wd := range r.BlkioWeightDevice {
		if wd == nil {
			continue
		}
		if wd.Weight < minBlkioWeight || wd.Weight > maxBlkioWeight {
			return invalidRes("invalid weight for device: %s", wd)
		}
		maj, mnr, err := blockDevice(wd.Path)
		if err != nil {
			return err
		}
		w := wd.Weight
		d := specs.LinuxWeightDevice{Weight: &w}
		d.Major, d.Minor = maj, mnr
		bio.WeightDevice = append(bio.WeightDevice, d)
	}
	var err error
	if bio.ThrottleReadBpsDevice, err = throttle(r.BlkioDeviceReadBps); err != nil {
		return err
	}
	if bio.ThrottleWriteBpsDevice, err = throttle(r.BlkioDeviceWriteBps); err != nil {
		return err
	}
	if bio.ThrottleReadIOPSDevice, err = throttle(r.BlkioDeviceReadIOps); err != nil {
		return err
	}
	if bio.ThrottleWriteIOPSDevice, err = throttle(r.BlkioDeviceWriteIOps); err != nil {
		return err
	}
	if bio.Weight != nil || len(bio.WeightDevice) > 0 || len(bio.ThrottleReadBpsDevice) > 0 || len(bio.ThrottleWriteBpsDevice) > 0 ||
		len(bio.ThrottleReadIOPSDevice) > 0 || len(bio.ThrottleWriteIOPSDevice) > 0 {
		res.BlockIO = bio
	}
	return nil
}

// blockDevice returns the major and minor numbers of a host device path.
func blockDevice(p string) (int64, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return 0, 0, invalidRes("invalid block device %s: %v", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK && st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return 0, 0, invalidRes("invalid block device %s: not a device", p)
	}
	return int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev))), nil
}

func throttle(in []*blkiodev.ThrottleDevice) ([]specs.LinuxThrottleDevice, error) {
	var out []specs.LinuxThrottleDevice
	for _, t := range in {
		if t == nil {
			continue
		}
		maj, mnr, err := blockDevice(t.Path)
		if err != nil {
			return nil, err
		}
		d := specs.LinuxThrottleDevice{Rate: t.Rate}
		d.Major, d.Minor = maj, mnr
		out = append(out, d)
	}
	return out, nil
}
