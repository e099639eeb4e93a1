package shim

import specs "github.com/opencontainers/runtime-spec/specs-go"

// SparePrefork has the warm spare shim pre-fork a container init as soon
// as it starts, at idle time, for a container that does not exist yet:
// the spare is given a container id (NewID) of its own, and pre-forks
// the init exactly as Prepare would for a container with that id, these
// namespaces and the cgroups path CgroupParent/<id> (its cgroups are
// made under their final names: no rename and no migration is needed
// once the container exists). The daemon's create then asks for the
// spare (ClaimSpare) and, when the new container's layout is the one the
// spare was made for, gives the container the spare's id: the whole
// clone of the init (cgroups, namespaces, the init's exec and Go start)
// is off the paths of create and start. A container that does not fit
// gets an id of its own; a Spawn or Prepare that takes the spare anyway
// has the shim let the unneeded init go in the background.
//
// Terminal and stdin are those of a detached container without stdin
// (docker run -d, docker run without -i): no terminal, stdin /dev/null.
type SparePrefork struct {
	// RuntimeRoot and RuntimeInit as in SpawnOpts.
	RuntimeRoot string
	RuntimeInit string
	// CgroupParent is the parent of the container cgroups (linux.cgroupsPath
	// is CgroupParent + "/" + id).
	CgroupParent string
	// Namespaces are the container's linux.namespaces: all new ones, no
	// user namespace.
	Namespaces []specs.LinuxNamespace
	// Devices, with SetDevices, are the linux.resources.devices of such a
	// container: its devices cgroup is programmed with them at idle time
	// (runtime.PreforkOpts.Devices).
	Devices    []specs.LinuxDeviceCgroup
	SetDevices bool
	// NewID returns a fresh container id.
	NewID func() string `json:"-"`
	// Defer, if set, runs the start of the next spare after a claim (the
	// daemon holds it until it is quiet: internal/quiet); nil starts it
	// at once on a goroutine of its own.
	Defer func(func()) `json:"-"`
	// Stopping, if set, says the daemon is stopping: a held start that
	// runs then starts nothing.
	Stopping func() bool `json:"-"`
}
