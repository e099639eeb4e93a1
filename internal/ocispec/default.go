package ocispec

import (
	"os"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultOCIVersion is the ociVersion written by Default. Validate accepts
// any 1.x.y version (with an optional pre-release suffix such as "-dev").
const DefaultOCIVersion = "1.2.1"

// DefaultHostname is the hostname Default gives the container.
const DefaultHostname = "berth"

// DefaultPath is the PATH in the default process environment.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultCaps is the small capability set a plain `spec` container gets.
var defaultCaps = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// defaultMaskedPaths are host kernel interfaces hidden from the container
// (bind-mounted over with /dev/null, or an empty read-only tmpfs for
// directories).
var defaultMaskedPaths = []string{
	"/proc/acpi",
	"/proc/asound",
	"/proc/interrupts",
	"/proc/kcore",
	"/proc/keys",
	"/proc/latency_stats",
	"/proc/sched_debug",
	"/proc/scsi",
	"/proc/timer_list",
	"/proc/timer_stats",
	"/sys/devices/virtual/powercap",
	"/sys/firmware",
}

// defaultReadonlyPaths are remounted read-only inside the container.
var defaultReadonlyPaths = []string{
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
}

// Default returns a new copy of the configuration berth generates for
// `berth-runtime spec`: an interactive `sh` as root in a read-only rootfs
// called "rootfs", with a minimal capability set, new pid, network, ipc,
// uts, mount and cgroup namespaces, the usual /proc, /dev, /sys mounts,
// masked and read-only kernel paths, and a deny-all device cgroup.
//
// Every call returns an independent value; callers may modify it freely.
func Default() *specs.Spec {
	caps := func() []string { return slices.Clone(defaultCaps) }
	return &specs.Spec{
		Version: DefaultOCIVersion,
		Process: &specs.Process{
			Terminal: true,
			User:     specs.User{UID: 0, GID: 0},
			Args:     []string{"sh"},
			Env: []string{
				"PATH=" + DefaultPath,
				"TERM=xterm",
			},
			Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  caps(),
				Effective: caps(),
				Permitted: caps(),
			},
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024},
			},
			NoNewPrivileges: true,
		},
		Root: &specs.Root{
			Path:     "rootfs",
			Readonly: true,
		},
		Hostname: DefaultHostname,
		Mounts: []specs.Mount{
			{
				Destination: "/proc",
				Type:        "proc",
				Source:      "proc",
			},
			{
				Destination: "/dev",
				Type:        "tmpfs",
				Source:      "tmpfs",
				Options:     []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
			},
			{
				Destination: "/dev/pts",
				Type:        "devpts",
				Source:      "devpts",
				Options:     []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"},
			},
			{
				Destination: "/dev/shm",
				Type:        "tmpfs",
				Source:      "shm",
				Options:     []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"},
			},
			{
				Destination: "/dev/mqueue",
				Type:        "mqueue",
				Source:      "mqueue",
				Options:     []string{"nosuid", "noexec", "nodev"},
			},
			{
				Destination: "/sys",
				Type:        "sysfs",
				Source:      "sysfs",
				Options:     []string{"nosuid", "noexec", "nodev", "ro"},
			},
			{
				Destination: "/sys/fs/cgroup",
				Type:        "cgroup",
				Source:      "cgroup",
				Options:     []string{"nosuid", "noexec", "nodev", "relatime", "ro"},
			},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{
					{Allow: false, Access: "rwm"},
				},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
				{Type: specs.CgroupNamespace},
			},
			MaskedPaths:   slices.Clone(defaultMaskedPaths),
			ReadonlyPaths: slices.Clone(defaultReadonlyPaths),
		},
	}
}

// Rootless adjusts s, in place, so that an unprivileged user can run it:
//
//   - a new user namespace is added (if absent) mapping container uid 0 and
//     gid 0 to the calling process's effective uid and gid (size 1), unless
//     mappings are already present;
//   - the cgroup namespace is removed, and the /sys/fs/cgroup cgroup mount
//     with it (a cgroup filesystem cannot be mounted from a user namespace
//     that does not own the cgroup namespace; the /sys bind below already
//     shows the host's /sys/fs/cgroup, read-only);
//   - linux.resources.devices is cleared (an unprivileged user cannot manage
//     the device cgroup) and linux.resources is dropped when that leaves it
//     empty;
//   - /sys is bind-mounted from the host (rbind, ro) instead of mounting a
//     new sysfs, which requires owning the network namespace's user ns;
//   - the "gid=N" option is dropped from devpts mounts, since only the
//     mapped gid exists inside the user namespace.
//
// The network namespace is kept: a fresh, empty network namespace works
// inside a user namespace. Callers that want the host network remove it.
// Rootless is idempotent.
func Rootless(s *specs.Spec) {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	l := s.Linux

	var ns []specs.LinuxNamespace
	hasUser := false
	for _, n := range l.Namespaces {
		switch n.Type {
		case specs.CgroupNamespace:
			continue
		case specs.UserNamespace:
			hasUser = true
		}
		ns = append(ns, n)
	}
	if !hasUser {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace})
	}
	l.Namespaces = ns

	if len(l.UIDMappings) == 0 {
		l.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Geteuid()), Size: 1}}
	}
	if len(l.GIDMappings) == 0 {
		l.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getegid()), Size: 1}}
	}

	if r := l.Resources; r != nil {
		r.Devices = nil
		if isZeroResources(r) {
			l.Resources = nil
		}
	}

	var mounts []specs.Mount
	for _, m := range s.Mounts {
		switch {
		case m.Destination == "/sys/fs/cgroup" && m.Type == "cgroup":
			continue
		case m.Destination == "/sys" && m.Type == "sysfs":
			m = specs.Mount{
				Destination: "/sys",
				Type:        "bind",
				Source:      "/sys",
				Options:     []string{"rbind", "nosuid", "noexec", "nodev", "ro"},
			}
		case m.Type == "devpts":
			m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool {
				return len(o) > 4 && o[:4] == "gid="
			})
		}
		mounts = append(mounts, m)
	}
	s.Mounts = mounts
}

func isZeroResources(r *specs.LinuxResources) bool {
	return len(r.Devices) == 0 && r.Memory == nil && r.CPU == nil && r.Pids == nil &&
		r.BlockIO == nil && len(r.HugepageLimits) == 0 && r.Network == nil &&
		len(r.Rdma) == 0 && len(r.Unified) == 0
}
