package container

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Stats samples a container's usage from its cgroup files and its network
// namespace's counters: no shim is asked, so a hung shim cannot stall it.
// A container that is not running gives an empty sample, as Docker's.
func (s *Service) Stats(ctx context.Context, ref string) (*container.StatsResponse, error) {
	c, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	id, name, running, pid := c.rec.ID, c.rec.Name, c.rec.State.Running(), c.rec.State.Pid
	netMode := c.rec.Host.NetworkMode
	c.mu.Unlock()
	out := &container.StatsResponse{ID: id, Name: name, OSType: "linux", Read: time.Now().UTC()}
	if !running {
		return out, nil
	}
	st, err := s.runtimeOf(id).Stats(ctx, id)
	if err != nil {
		if errdefs.Is(err, errdefs.Conflict) || errdefs.Is(err, errdefs.NotFound) {
			return out, nil
		}
		return nil, err
	}
	out.CPUStats = container.CPUStats{
		CPUUsage:    container.CPUUsage{TotalUsage: st.CPUUsage, UsageInUsermode: st.CPUUser, UsageInKernelmode: st.CPUSystem},
		SystemUsage: systemCPUUsage(),
		OnlineCPUs:  uint32(runtime.NumCPU()),
	}
	out.MemoryStats = container.MemoryStats{Usage: st.MemoryUsage, MaxUsage: st.MemoryMaxUsage, Stats: st.MemoryStat, Limit: st.MemoryLimit}
	if out.MemoryStats.Limit == 0 {
		out.MemoryStats.Limit = hostMemory()
	}
	out.PidsStats = container.PidsStats{Current: st.PidsCurrent, Limit: st.PidsLimit}
	for _, e := range st.IOServiceBytes {
		out.BlkioStats.IoServiceBytesRecursive = append(out.BlkioStats.IoServiceBytesRecursive,
			container.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	if netMode != "host" && pid > 0 {
		out.Networks = netStats(pid)
	}
	return out, nil
}

// systemCPUUsage is the host's total CPU time in nanoseconds, the
// denominator of Docker's CPU percentage (from /proc/stat's cpu line).
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 || fields[0] != "cpu" {
			continue
		}
		var ticks uint64
		for _, v := range fields[1:8] {
			n, _ := strconv.ParseUint(v, 10, 64)
			ticks += n
		}
		// USER_HZ is 100 on Linux.
		return ticks * (uint64(time.Second) / 100)
	}
	return 0
}

func hostMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb uint64
	fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
	return kb * 1024
}

// netStats reads the interface counters of pid's network namespace.
func netStats(pid int) map[string]container.NetworkStats {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	out := map[string]container.NetworkStats{}
	for _, line := range strings.Split(string(b), "\n")[2:] {
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
		out[name] = container.NetworkStats{RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11)}
	}
	return out
}
