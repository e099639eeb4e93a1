//go:build linux

package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Layout returns what Generate puts in linux.namespaces and
// linux.cgroupsPath for in, without generating the rest: the daemon uses
// it to have a container init pre-forked (namespaces and cgroups are what
// its clone depends on) while it mounts and generates the full spec. Mode
// "container:<ref>" namespaces need in.ContainerNS, as for Generate.
func Layout(in Input) (namespaces []specs.LinuxNamespace, cgroupsPath string, err error) {
	// Of the host, namespaces need only the cgroup version (probeHost
	// stats a dozen files).
	var st unix.Statfs_t
	v2 := unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
	g := &generator{in: in, cfg: in.Config, hc: in.HostConfig, host: hostInfo{cgroupV2: v2}}
	g.s = &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	if err := g.namespaces(); err != nil {
		return nil, "", err
	}
	if err := g.cgroupsPath(); err != nil {
		return nil, "", err
	}
	return g.s.Linux.Namespaces, g.s.Linux.CgroupsPath, nil
}
