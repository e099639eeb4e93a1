package spec

import (
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPath is the PATH a container gets when its image sets none.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultCgroupParent is the cgroup parent of containers whose HostConfig
// names none.
const DefaultCgroupParent = "/berth"

// Input is what Generate needs besides the container configuration: host
// paths the daemon prepared and the resolution of references to other
// containers.
type Input struct {
	// ID is the container's full ID. It names the cgroup and, when
	// Config.Hostname is empty, gives the hostname (its first 12
	// characters).
	ID string
	// Config is the container's configuration, already merged with its
	// image's (MergeImageConfig).
	Config *container.Config
	// HostConfig is the container's host configuration, with the
	// daemon's defaults (ulimits, ...) already merged in.
	HostConfig *container.HostConfig
	// Rootfs is the host path where the daemon mounted the container's
	// root filesystem; it becomes root.path. /etc/passwd and /etc/group
	// are read inside it, and a missing working directory is created.
	Rootfs string
	// HostnamePath, HostsPath and ResolvConfPath are host files the
	// daemon generated, bind-mounted at /etc/hostname, /etc/hosts and
	// /etc/resolv.conf ("" = no mount). They are read-only when the
	// root filesystem is.
	HostnamePath, HostsPath, ResolvConfPath string
	// NetNSPath is the network namespace to join for the bridge, none
	// and user-defined network modes; "" makes a new, empty one. It is
	// ignored for host (the host's namespace) and container:<ref>
	// (resolved through ContainerNS).
	NetNSPath string
	// Mounts are extra mounts the daemon resolved (volumes, --volumes-from,
	// --init's binary, ...). They join the user mounts, override a
	// default mount with the same destination, and are sorted with the
	// other user mounts by destination depth.
	Mounts []specs.Mount
	// CgroupsPath is linux.cgroupsPath; "" means HostConfig.CgroupParent
	// (or DefaultCgroupParent) + "/" + ID.
	CgroupsPath string
	// ContainerNS resolves "container:<ref>" network, ipc and pid modes
	// to a namespace path such as /proc/<pid>/ns/net. It may be nil when
	// no such mode is used.
	ContainerNS func(ref string, nsType specs.LinuxNamespaceType) (string, error)
}
