package runtime

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/cgroup"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A pre-forked init: the first half of create done before the container's
// configuration exists. Prefork makes the container's state directory,
// start socket and cgroups and clones the init into fresh namespaces (the
// nsenter constructor joins the v1 cgroups, CLONE_INTO_CGROUP the v2 one,
// exactly as for create); the init starts its Go runtime and waits on the
// sync socket for its config. Create with CreateOpts.Preforked then only
// checks that the pre-forked init fits the configuration and sends it the
// config: the clone, the exec of berth-runtime-init, the constructor's
// cgroup joins and the Go start-up (about 5 ms together) are off its path.
//
// What must be known ahead is only what the clone depends on: the
// container id and cgroups path (the cgroups are joined at clone time:
// moving a running process into a cgroup later takes the kernel's
// cgroup_threadgroup_rwsem for writing, ~10 ms per hierarchy), the set of
// namespaces to create, whether there is a terminal, and the stdio. A
// configuration that differs in any of these, asks for a user namespace or
// joins a namespace by path is not served: create releases the pre-forked
// init and takes the ordinary path.

// PreforkOpts say what a pre-forked init is cloned for.
type PreforkOpts struct {
	// CgroupsPath is the linux.cgroupsPath the container will have.
	CgroupsPath string
	// Namespaces are the namespaces the container will have; all must be
	// new ones (no path), and none a user namespace.
	Namespaces []specs.LinuxNamespace
	// Terminal is process.terminal (the console socket is internal: a
	// Preforked init never serves a ConsoleSocket).
	Terminal bool
	IO       IO
	// Devices, with SetDevices, are the linux.resources.devices the
	// container is expected to have (berthd's defaults): the devices
	// cgroup is programmed with them now, at idle time, and create does
	// not program it again when the configuration's rules are these
	// (see presetDevices). Any other rules are applied in full by create.
	Devices    []specs.LinuxDeviceCgroup
	SetDevices bool
}

// Preforked is a pre-forked container init waiting for its config. It is
// consumed by Create/CreateContainer (used or released) or by Release.
type Preforked struct {
	r             *Runtime
	id            string
	dir           string
	plan          nsPlan
	terminal      bool
	io            IO
	cgroupsPath   string
	cg            cgroup.Manager
	ch            *child
	cfg           *initproc.Config
	consoleParent *os.File
	used          atomic.Bool
	// devicesSet: the devices cgroup holds the rules of devices
	// (PreforkOpts.SetDevices).
	devicesSet bool
	devices    []specs.LinuxDeviceCgroup
}

// preforkUsed counts the creates that used a pre-forked init (tests).
var preforkUsed atomic.Int64

// PreforkUsed returns how many creates in this process took a pre-forked
// init.
func PreforkUsed() int64 { return preforkUsed.Load() }

// Prefork clones an init for container id ahead of its configuration (see
// Preforked). On failure nothing is left behind.
func (r *Runtime) Prefork(ctx context.Context, id string, o PreforkOpts) (_ *Preforked, retErr error) {
	initproc.Tracef("prefork: begin")
	if err := checkID(id); err != nil {
		return nil, err
	}
	plan, err := planNamespaces(o.Namespaces)
	if err != nil {
		return nil, err
	}
	if !plan.preforkable() {
		return nil, errdefs.Newf(errdefs.NotImplemented, "prefork: namespaces to join or a user namespace")
	}
	dir := r.dir(id)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, errdefs.Newf(errdefs.AlreadyExists, "container with id exists: %s", id)
		}
		return nil, err
	}
	pf := &Preforked{r: r, id: id, dir: dir, plan: plan, terminal: o.Terminal, io: o.IO, cgroupsPath: o.CgroupsPath}
	defer func() {
		if retErr != nil {
			pf.release()
		}
	}()
	listener, err := listenUnix(dir, startSock)
	if err != nil {
		return nil, err
	}
	defer listener.Close()
	var consoleConn *os.File
	if o.Terminal {
		if consoleConn, pf.consoleParent, err = consoleSocket(""); err != nil {
			return nil, err
		}
		defer consoleConn.Close()
	}
	// Limits are not known yet: the directories only. Create validates
	// the configuration's resources and applies them.
	if pf.cg, err = cgroup.New(o.CgroupsPath, id, nil); err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, err)
	}
	initproc.Tracef("prefork: cgroup.New")
	if err := pf.cg.Apply(-1); err != nil {
		return nil, fmt.Errorf("create cgroup: %w", err)
	}
	initproc.Tracef("prefork: cgroup made")
	if o.SetDevices {
		// Before the clone: the init never runs without its rules. They
		// always let it mknod (cgroup.DefaultDeviceRules), which is all
		// its set-up needs of the devices cgroup.
		if err := pf.cg.Set(&specs.LinuxResources{Devices: o.Devices}); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("prefork: device rules: %w", err))
		}
		pf.devicesSet, pf.devices = true, slices.Clone(o.Devices)
		initproc.Tracef("prefork: devices set")
	}
	// The mount namespace is made by the init once it has its config
	// (Config.UnshareMountNS): one copied now would miss the root
	// filesystem the caller mounts meanwhile (unless propagation happens
	// to bring it).
	cplan := plan
	cplan.cloneFlags &^= unix.CLONE_NEWNS
	pf.ch, pf.cfg, err = r.spawn(spawnOpts{
		plan: cplan, io: o.IO, listener: listener, consoleConn: consoleConn, cgroupPaths: pf.cg.Paths(),
		preforked: true,
	})
	if err != nil {
		return nil, err
	}
	pf.cfg.UnshareMountNS = plan.cloneFlags&unix.CLONE_NEWNS != 0
	// A record from now on: should our caller die before create or
	// Release (the shim killed), Delete(force) (berthd's killStale)
	// finds the init and the cgroups and removes them. Create overwrites
	// it with the full record.
	start, _, _ := procStat(pf.ch.pid)
	if err := r.save(&persisted{
		ID: id, InitPid: pf.ch.pid, InitStart: start, Created: time.Now().UTC(), Owner: currentOwner(),
		CgroupPaths: pf.cg.Paths(), NamespacePaths: map[specs.LinuxNamespaceType]string{},
		Config: &specs.Spec{Linux: &specs.Linux{}}, Creating: true,
	}); err != nil {
		return nil, err
	}
	// The file create's save writes its record into (see saveAhead).
	if f, err := os.OpenFile(filepath.Join(dir, stateAhead), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
		f.Close()
	}
	initproc.Tracef("prefork: spawned")
	return pf, nil
}

// ID returns the container id the init was pre-forked for.
func (pf *Preforked) ID() string { return pf.id }

// Pid returns the pre-forked init's pid.
func (pf *Preforked) Pid() int { return pf.ch.pid }

// Release kills the pre-forked init and removes its cgroups and state
// directory, unless create took it. It is safe to call more than once.
func (pf *Preforked) Release() {
	if pf == nil || !pf.used.CompareAndSwap(false, true) {
		return
	}
	pf.release()
}

func (pf *Preforked) release() {
	if pf.ch != nil {
		pf.ch.kill()
	}
	if pf.consoleParent != nil {
		pf.consoleParent.Close()
	}
	if pf.cg != nil {
		_ = pf.cg.Destroy()
	}
	_ = os.RemoveAll(pf.dir)
}

// preforkable says whether a plan can be served by a pre-forked init:
// only new namespaces, created at clone time, no user namespace.
func (pl nsPlan) preforkable() bool {
	return !pl.userns && len(pl.threadJoins) == 0 && len(pl.ctorJoins) == 0 && pl.unshareFlags == 0 && !pl.joinMount
}

// take returns the pre-forked init if it fits a create of id with plan,
// options o and the cgroup manager cg made from the configuration, and
// marks it used; otherwise it releases it (create then takes the ordinary
// path) and returns false.
func (pf *Preforked) take(id string, plan nsPlan, spec *specs.Spec, o CreateOpts, cg cgroup.Manager) bool {
	if !pf.used.CompareAndSwap(false, true) {
		return false
	}
	joinNet := ""
	if pl, path, ok := lateNetJoin(plan); ok && pf.plan.cloneFlags&unix.CLONE_NEWNET != 0 {
		plan, joinNet = pl, path
	}
	// Device rules set ahead stay only with a configuration that has
	// resources (with none, the ordinary path programs nothing).
	fits := pf.id == id && plan.preforkable() && (!pf.devicesSet || spec.Linux.Resources != nil) && plan.cloneFlags == pf.plan.cloneFlags &&
		o.PreserveFDs == 0 && o.ConsoleSocket == "" && spec.Process != nil && spec.Process.Terminal == pf.terminal &&
		o.IO == pf.io && maps.Equal(cg.Paths(), pf.cg.Paths())
	if fits {
		// Still waiting for its config? (A dead one is not used.)
		if _, st, err := procStat(pf.ch.pid); err != nil || st == 'Z' || st == 'X' {
			fits = false
		}
	}
	if !fits {
		initproc.Tracef("create: pre-forked init does not fit; releasing it")
		pf.release()
		return false
	}
	pf.cfg.JoinNetNS = joinNet
	preforkUsed.Add(1)
	return true
}

// lateNetJoin: a configuration that joins a network namespace by path (a
// network berthd set up: the sandbox's namespace) and creates every other
// namespace can still be served by an init pre-forked with a network
// namespace of its own: the init joins the path once it has its config,
// on the thread that execs, before it mounts anything
// (initproc.Config.JoinNetNS); its own namespace goes with its other
// threads at execve. lateNetJoin returns the plan as the pre-forked init
// must have been made for it and the path, or false when the
// configuration joins nothing but the network namespace.
func lateNetJoin(plan nsPlan) (nsPlan, string, bool) {
	if len(plan.threadJoins) != 1 || plan.threadJoins[0].typ != specs.NetworkNamespace {
		return plan, "", false
	}
	path := plan.threadJoins[0].path
	plan.threadJoins = nil
	plan.cloneFlags |= unix.CLONE_NEWNET
	return plan, path, true
}

// manager returns the cgroup manager for spec's cgroups: the pre-forked
// init's own when the path is the same and nothing must be applied before
// a process joins (its resources are validated by Set, which create calls
// next and whose failure undoes the create), else a new one from the
// configuration (which validates them now).
func (pf *Preforked) manager(spec *specs.Spec) (cgroup.Manager, error) {
	if spec.Linux.CgroupsPath == pf.cgroupsPath && !needsApply(spec.Linux.Resources) {
		return pf.cg, nil
	}
	return cgroup.New(spec.Linux.CgroupsPath, pf.id, spec.Linux.Resources)
}

// needsApply says whether resources carry values that must be in place
// before a process joins the cgroup (cgroup.New keeps them for Apply).
func needsApply(res *specs.LinuxResources) bool {
	if res == nil || res.CPU == nil {
		return false
	}
	c := res.CPU
	return c.Cpus != "" || c.Mems != "" || c.RealtimeRuntime != nil || c.RealtimePeriod != nil
}

// presetDevices says whether create can leave the devices cgroup as the
// pre-forked init's set-up programmed it: cg is that init's own manager
// (same cgroups, nothing to apply first; its devices were programmed by
// it), spec has resources with exactly the rules it was programmed with,
// and no mount of spec opens a device (mountsOpenNoDevice). Then the
// resources are set without their devices, and before the init's mounts
// rather than after them (see create).
func (pf *Preforked) presetDevices(cg cgroup.Manager, spec *specs.Spec) bool {
	res := spec.Linux.Resources
	return pf != nil && pf.devicesSet && cg == pf.cg && res != nil && sameDeviceRules(res.Devices, pf.devices) &&
		mountsOpenNoDevice(spec.Mounts)
}

// openDevices undoes the rules set ahead, before the init gets its
// config, for a configuration with a mount that opens a device
// (mountsOpenNoDevice), which those rules would refuse (they allow the
// mknod of any device, and that is all the rest of the set-up needs): on
// the ordinary path the init sets up the root filesystem in a fresh
// cgroup, whose devices cgroup is its parent's (all devices, usually),
// and only then are the configuration's rules programmed (in full, after
// the mounts, by create). Here every device is allowed again, which a
// child cgroup can only be when its parent allows it too. False when that
// failed (a parent that restricts devices on cgroup v1): the caller lets
// the pre-forked init go and takes the ordinary path. True when nothing
// was set ahead.
func (pf *Preforked) openDevices() bool {
	if !pf.devicesSet {
		return true
	}
	err := pf.cg.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}})
	initproc.Tracef("create: preset device rules opened up (err %v)", err)
	return err == nil
}

// mountsOpenNoDevice says whether none of mounts makes the kernel open a
// device: each is a bind mount or has a source that is no path (proc,
// tmpfs, sysfs, devpts, mqueue, cgroup, overlay...). A mount from a block
// device opens it, which needs its "r" (and "w") in the devices cgroup.
func mountsOpenNoDevice(mounts []specs.Mount) bool {
	for _, m := range mounts {
		if m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind") {
			continue
		}
		if strings.HasPrefix(m.Source, "/") {
			return false
		}
	}
	return true
}

// devicesPreset counts the creates that found their device rules set
// ahead (tests).
var devicesPreset atomic.Int64

// DevicesPreset returns how many creates in this process left the devices
// cgroup as the pre-forked init's set-up programmed it.
func DevicesPreset() int64 { return devicesPreset.Load() }

// sameDeviceRules says whether a and b are the same rules in the same
// order (numbers compared by value; nil and empty alike).
func sameDeviceRules(a, b []specs.LinuxDeviceCgroup) bool {
	return slices.EqualFunc(a, b, func(x, y specs.LinuxDeviceCgroup) bool {
		return x.Allow == y.Allow && x.Type == y.Type && x.Access == y.Access && sameNum(x.Major, y.Major) && sameNum(x.Minor, y.Minor)
	})
}

func sameNum(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Preforked says whether the container's init was a pre-forked one.
func (c *Container) Preforked() bool { return c.c.preforked }

// StagedMounts says which mount trees a pre-forked init staged while it
// waited and attached (initproc stage_linux.go): "staged: dev proc sys",
// or "" when none. BERTH_NO_STAGE in the environment of the process that
// pre-forks turns staging off; with BERTH_STAGE_WAIT a config that comes
// while the init stages waits for the staging to end instead of stopping
// it (tests).
func (c *Container) StagedMounts() string { return c.c.staged }
