//go:build linux

package spec

import (
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// defaultSysctls are set by dockerd in every container with its own
// network namespace, where the host has them: ICMP echo sockets for every
// group (ping without CAP_NET_RAW) and binding ports below 1024 without
// CAP_NET_BIND_SERVICE.
var defaultSysctls = map[string]string{
	"net.ipv4.ping_group_range":           "0 2147483647",
	"net.ipv4.ip_unprivileged_port_start": "0",
}

var defaultSysctlNames = []string{"net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}

// ipcSysctls are the System V IPC sysctls, namespaced by the IPC
// namespace (as is fs.mqueue.*).
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// sysctls sets linux.sysctl: Docker's defaults, then HostConfig.Sysctls,
// each of which must belong to a namespace the container does not share
// with the host (runc's rules, checked here so the error comes at create).
func (g *generator) sysctls() error {
	out := map[string]string{}
	nm := g.hc.NetworkMode
	if !nm.IsHost() && !nm.IsContainer() {
		for _, k := range defaultSysctlNames {
			if g.host.sysctls[k] {
				out[k] = defaultSysctls[k]
			}
		}
	}
	// The NIS domain name is set through its sysctl, as dockerd does; a
	// kernel.domainname in HostConfig.Sysctls wins over it.
	if g.cfg.Domainname != "" {
		if g.hc.UTSMode.IsHost() {
			return errdefs.Newf(errdefs.InvalidArgument, "conflicting options: domainname and the host UTS namespace")
		}
		out["kernel.domainname"] = g.cfg.Domainname
	}
	for k, v := range g.hc.Sysctls {
		key := strings.ReplaceAll(k, "/", ".")
		switch {
		case strings.HasPrefix(key, "net."):
			if nm.IsHost() {
				return errdefs.Newf(errdefs.InvalidArgument, "sysctl %q not allowed in host network namespace", k)
			}
		case ipcSysctls[key] || strings.HasPrefix(key, "fs.mqueue."):
			if g.hc.IpcMode.IsHost() {
				return errdefs.Newf(errdefs.InvalidArgument, "sysctl %q is not allowed in the hosts ipc namespace", k)
			}
		case key == "kernel.hostname":
			return errdefs.Newf(errdefs.InvalidArgument, "sysctl %q is not allowed as it conflicts with the OCI %q field", k, "hostname")
		case key == "kernel.domainname":
			if g.hc.UTSMode.IsHost() {
				return errdefs.Newf(errdefs.InvalidArgument, "sysctl %q is not allowed in the host UTS namespace", k)
			}
		default:
			return errdefs.Newf(errdefs.InvalidArgument, "sysctl %q is not in a separate kernel namespace", k)
		}
		out[k] = v
	}
	if len(out) > 0 {
		g.s.Linux.Sysctl = out
	}
	return nil
}
