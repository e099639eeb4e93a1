//go:build linux

package spec

import (
	"github.com/berth-dev/berth/internal/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// namespaces sets linux.namespaces with dockerd's rules. Docker's default
// list is mount, network, uts, pid, ipc; then each mode changes one entry:
//
//	network: host = none of its own; container:<ref> = join; else new,
//	         or NetNSPath
//	ipc:     host = none; container:<ref> = join; private, shareable,
//	         none, "" = new
//	pid:     host = none; container:<ref> = join; else new
//	uts:     host = none (and no hostname)
//	cgroup:  private = new; host = none; "" = new only on a cgroup v2 host
//	         (dockerd's default-cgroupns-mode)
//	user:    only "" and host (berth has no user-namespace remapping)
func (g *generator) namespaces() error {
	l := g.s.Linux
	join := func(mode string, ref string, t specs.LinuxNamespaceType) (specs.LinuxNamespace, error) {
		if ref == "" {
			return specs.LinuxNamespace{}, errdefs.Newf(errdefs.InvalidArgument, "invalid %s mode: %s", mode, "container:")
		}
		if g.in.ContainerNS == nil {
			return specs.LinuxNamespace{}, errdefs.Newf(errdefs.NotImplemented, "%s mode container:%s: no way to resolve containers was given", mode, ref)
		}
		p, err := g.in.ContainerNS(ref, t)
		if err != nil {
			return specs.LinuxNamespace{}, err
		}
		return specs.LinuxNamespace{Type: t, Path: p}, nil
	}

	l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.MountNamespace})

	nm := g.hc.NetworkMode
	switch {
	case nm.IsHost():
	case nm.IsContainer():
		ns, err := join("network", nm.ConnectedContainer(), specs.NetworkNamespace)
		if err != nil {
			return err
		}
		l.Namespaces = append(l.Namespaces, ns)
	default:
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: g.in.NetNSPath})
	}

	if !g.hc.UTSMode.Valid() {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid UTS mode: %v", g.hc.UTSMode)
	}
	if g.hc.UTSMode.IsHost() {
		g.s.Hostname = ""
	} else {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}

	pm := g.hc.PidMode
	if !pm.Valid() {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid PID mode: %v", pm)
	}
	switch {
	case pm.IsHost():
	case pm.IsContainer():
		ns, err := join("PID", pm.Container(), specs.PIDNamespace)
		if err != nil {
			return err
		}
		l.Namespaces = append(l.Namespaces, ns)
	default:
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}

	im := g.hc.IpcMode
	if !im.Valid() {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid IPC mode: %v", im)
	}
	switch {
	case im.IsHost():
	case im.IsContainer():
		ns, err := join("IPC", im.Container(), specs.IPCNamespace)
		if err != nil {
			return err
		}
		l.Namespaces = append(l.Namespaces, ns)
	default:
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}

	cm := g.hc.CgroupnsMode
	if !cm.Valid() {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid cgroup namespace mode: %v", cm)
	}
	if cm.IsPrivate() || (cm.IsEmpty() && g.host.cgroupV2) {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}

	if um := g.hc.UsernsMode; um != "" && !um.IsHost() {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid USER mode: %v (berth supports only \"host\")", um)
	}
	return nil
}
