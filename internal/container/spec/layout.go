//go:build linux

package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Layout returns what Generate puts in linux.namespaces and
// linux.cgroupsPath for in, without generating the rest: the daemon uses
// it to have a container init pre-forked (namespaces and cgroups are what
// its clone depends on) while it mounts and generates the full spec. Mode
// "container:<ref>" namespaces need in.ContainerNS, as for Generate.
func Layout(in Input) (namespaces []specs.LinuxNamespace, cgroupsPath string, err error) {
	// The same host facts as Generate (probed once per process).
	g := &generator{in: in, cfg: in.Config, hc: in.HostConfig, host: probeHost()}
	g.s = &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	if err := g.namespaces(); err != nil {
		return nil, "", err
	}
	if err := g.cgroupsPath(); err != nil {
		return nil, "", err
	}
	return g.s.Linux.Namespaces, g.s.Linux.CgroupsPath, nil
}
