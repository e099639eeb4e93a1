package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Staged mounts. A pre-forked init waits, often for a long time, for its
// config; the mounts every default container gets (Docker's default
// mounts, device nodes and masked/read-only paths) depend on nothing of
// the config but namespaces the init already has (pid for /proc, network
// for /sys, ipc for /dev/mqueue) and the cgroups it already sits in. So
// while it waits it builds them as detached mount trees with the new mount
// API (fsopen/fsmount, open_tree, move_mount onto the detached trees,
// mount_setattr):
//
//	dev:  tmpfs /dev + devpts /dev/pts + mqueue /dev/mqueue + tmpfs /dev/shm,
//	      the default device nodes and the /dev symlinks
//	proc: proc /proc with the default read-only and masked /proc paths
//	sys:  sysfs /sys with the cgroup tree on /sys/fs/cgroup (a tmpfs and the
//	      container's own cgroup directories, bound read-only) and the
//	      masked /sys paths
//
// Once the config is there, initContainer attaches a tree (one move_mount,
// onto a mount point resolved inside the rootfs as every other target)
// only where the spec asks for exactly what was staged: the same mount
// entries (destination, type, source, options; the tree's root first) and
// no other mount under the tree, the same masked and read-only path
// lists, no devices, no user or cgroup namespace, no createContainer hook,
// a rootfs propagation that is not shared, and for /sys the init's own
// network namespace (not JoinNetNS) and its cgroups unchanged.
// Everything else takes the ordinary path (rootfsSetup.mount), and the
// trees not used are dropped: a detached mount goes away with its last
// descriptor, so nothing staged is ever visible on the host, and all of
// them go at execve at the latest (close-on-exec) or with the process.
//
// Each staged mount is made as the ordinary path makes it (same
// superblock and per-mount flags, sources, device nodes with their modes
// and owners, mask mounts); TestStagedMountsSameAsOrdinary compares the
// two mount tables.

// Staged trees.
const (
	treeDev = iota
	treeProc
	treeSys
	nTrees
)

var treeNames = [nTrees]string{"dev", "proc", "sys"}

// stagedEntry is a spec mount entry that a staged tree serves.
type stagedEntry struct {
	tree int
	m    specs.Mount
}

// stagedEntries are the default mounts berthd generates for a container
// (internal/container/spec defaultMounts, /dev/shm with its default
// 64 MiB), in its order. Only these exact entries are staged.
var stagedEntries = []stagedEntry{
	{treeProc, specs.Mount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}}},
	{treeDev, specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}}},
	{treeDev, specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}}},
	{treeSys, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}}},
	{treeSys, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}}},
	{treeDev, specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}}},
	{treeDev, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}}},
}

// treeRoots are the destinations the trees are attached at.
var treeRoots = [nTrees]string{"/dev", "/proc", "/sys"}

// stagedMaskedDefault and stagedReadonly are Docker's default masked and
// read-only paths (internal/container/spec DefaultMaskedPaths,
// DefaultReadonlyPaths); the masked list gets the host's
// /sys/devices/system/cpu/cpuN/thermal_throttle directories appended, as
// berthd's generator does.
var (
	stagedMaskedDefault = []string{
		"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
		"/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
	}
	stagedReadonly = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// stager builds the staged trees on a goroutine of its own while the init
// waits for its config; finish stops it: a config that comes while it
// runs waits only for the step under way (one mount), and the trees not
// finished by then are dropped (a pre-forked init claimed soon after its
// start, not a warm spare's: its mounts take the ordinary path).
type stager struct {
	done chan struct{}
	// abort: the config has come (finish); wait: finish waits for the
	// whole staging instead (EnvStageWait, tests).
	abort atomic.Bool
	wait  bool
	// Set by run only (read after done is closed):
	fd       [nTrees]int // detached trees, -1 when not staged
	procSys  int         // O_PATH handle of /proc/sys below its read-only bind (sysctls)
	masked   []string    // the masked path list staged for
	handled  map[string]bool
	cgroups  string // /proc/self/cgroup when the cgroup tree was staged
	complete bool
}

// startStaging starts staging; the caller must call finish.
func startStaging(wait bool) *stager {
	s := &stager{wait: wait, done: make(chan struct{}), fd: [nTrees]int{-1, -1, -1}, procSys: -1, handled: map[string]bool{}}
	go func() {
		defer close(s.done)
		if err := s.run(); err != nil && !errors.Is(err, errStageAborted) {
			Tracef("init: staging failed: %v", err)
		}
	}()
	return s
}

var errStageAborted = errors.New("staging stopped: the config has come")

// step says whether to go on (finish has not stopped the staging).
func (s *stager) step() error {
	if s.abort.Load() {
		return errStageAborted
	}
	return nil
}

// run stages the trees in order dev, proc (its masks bind dev's null), sys.
// A tree that fails is not staged (its descriptor closed); the others stay.
func (s *stager) run() error {
	var errs []error
	if err := s.stageDev(); err != nil {
		s.drop(treeDev)
		errs = append(errs, err)
	}
	s.masked = append(slices.Clone(stagedMaskedDefault), thermalThrottlePaths()...)
	if err := s.stageProc(); err != nil {
		s.drop(treeProc)
		errs = append(errs, err)
	}
	if err := s.stageSys(); err != nil {
		s.drop(treeSys)
		errs = append(errs, err)
	}
	s.complete = len(errs) == 0
	Tracef("init: mounts staged")
	return errors.Join(errs...)
}

// drop closes a staged tree (and with it its detached mounts).
func (s *stager) drop(t int) {
	if s.fd[t] >= 0 {
		unix.Close(s.fd[t])
		s.fd[t] = -1
	}
	if t == treeProc && s.procSys >= 0 {
		unix.Close(s.procSys)
		s.procSys = -1
	}
}

// close drops every tree.
func (s *stager) close() {
	for t := range nTrees {
		s.drop(t)
	}
}

// entry returns the staged entry for dest.
func entry(dest string) specs.Mount {
	for _, e := range stagedEntries {
		if e.m.Destination == dest {
			return e.m
		}
	}
	panic("no staged entry " + dest)
}

// newMount makes a detached mount of m (not a bind) as mount(2) would with
// m's options: MS_RDONLY makes the superblock and the mount read-only,
// other flags become mount attributes, the rest goes to fsconfig.
func newMount(m specs.Mount) (int, error) {
	opts, err := parseMountOptions(m.Options)
	if err != nil {
		return -1, err
	}
	const known = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_STRICTATIME
	if opts.bind || len(opts.propagate) > 0 || opts.recAttrSet != 0 || opts.recAttrClr != 0 || opts.flags&^known != 0 {
		return -1, fmt.Errorf("stage %s: options not stageable", m.Destination)
	}
	var attr int
	for _, f := range []struct {
		flag uintptr
		attr int
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
	} {
		if opts.flags&f.flag != 0 {
			attr |= f.attr
		}
	}
	var params []string
	if opts.flags&unix.MS_RDONLY != 0 {
		params = append(params, "ro")
	}
	return fsMount(m.Type, m.Source, append(params, opts.data...), attr)
}

// fsMount creates a filesystem of type typ with source and parameters
// ("key=value", or "flag" as mount(2)'s data would have them) and returns
// a detached mount of it with the mount attributes attr.
func fsMount(typ, source string, params []string, attr int) (int, error) {
	fc, err := unix.Fsopen(typ, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", typ, err)
	}
	defer unix.Close(fc)
	if err := unix.FsconfigSetString(fc, "source", source); err != nil {
		return -1, fmt.Errorf("fsconfig %s source: %w", typ, err)
	}
	for _, p := range params {
		if k, v, ok := strings.Cut(p, "="); ok {
			err = unix.FsconfigSetString(fc, k, v)
		} else {
			err = unix.FsconfigSetFlag(fc, p)
		}
		if err != nil {
			return -1, fmt.Errorf("fsconfig %s %s: %w", typ, p, err)
		}
	}
	if err := unix.FsconfigCreate(fc); err != nil {
		return -1, fmt.Errorf("fsconfig %s create: %w", typ, err)
	}
	fd, err := unix.Fsmount(fc, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return -1, fmt.Errorf("fsmount %s: %w", typ, err)
	}
	return fd, nil
}

// beneath opens rel inside the detached tree at dirfd, O_PATH, following
// no symlink and never leaving the tree.
func beneath(dirfd int, rel string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(dirfd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// attachAt moves the detached mount src onto rel inside the tree at dirfd
// and closes src.
func attachAt(src, dirfd int, rel string) error {
	defer unix.Close(src)
	t, err := beneath(dirfd, rel)
	if err != nil {
		return fmt.Errorf("stage: open %s: %w", rel, err)
	}
	defer unix.Close(t)
	if err := moveOnto(src, t); err != nil {
		return fmt.Errorf("stage: attach on %s: %w", rel, err)
	}
	return nil
}

// moveOnto moves the mount (or detached tree) at descriptor src onto the
// mount point at descriptor dst.
func moveOnto(src, dst int) error {
	return unix.MoveMount(src, "", dst, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
}

// stageRoot starts tree t with a new mount of its root entry dest.
func (s *stager) stageRoot(t int, dest string) (int, error) {
	if err := s.step(); err != nil {
		return -1, err
	}
	m, err := newMount(entry(dest))
	if err != nil {
		return -1, err
	}
	s.fd[t] = m
	return m, nil
}

// stageDev builds /dev: the tmpfs, devpts, mqueue and shm on it, the
// default device nodes and the /dev symlinks (as prepare's createDevices
// and devSymlinks make them).
func (s *stager) stageDev() error {
	dev, err := s.stageRoot(treeDev, "/dev")
	if err != nil {
		return err
	}
	for _, d := range []string{"pts", "mqueue", "shm"} {
		if err := unix.Mkdirat(dev, d, 0o755); err != nil {
			return fmt.Errorf("stage: mkdir %s: %w", d, err)
		}
	}
	for _, sub := range []string{"/dev/pts", "/dev/mqueue", "/dev/shm"} {
		if err := s.step(); err != nil {
			return err
		}
		m, err := newMount(entry(sub))
		if err != nil {
			return err
		}
		if err := attachAt(m, dev, strings.TrimPrefix(sub, "/dev/")); err != nil {
			return err
		}
	}
	for _, d := range defaultDevices {
		base := filepath.Base(d.Path)
		mode := uint32(0o666)
		// (The umask is the whole process's: the mode is set again
		// explicitly rather than by changing it.)
		if err := unix.Mknodat(dev, base, mode|unix.S_IFCHR, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
			return fmt.Errorf("stage: mknod %s: %w", d.Path, err)
		}
		if err := unix.Fchmodat(dev, base, mode, 0); err != nil {
			return fmt.Errorf("stage: chmod %s: %w", d.Path, err)
		}
		if err := unix.Fchownat(dev, base, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stage: chown %s: %w", d.Path, err)
		}
	}
	for _, l := range devLinks() {
		if err := unix.Symlinkat(l[0], dev, filepath.Base(l[1])); err != nil {
			return fmt.Errorf("stage: symlink %s: %w", l[1], err)
		}
	}
	return nil
}

// stageProc builds /proc with the read-only paths (bound on themselves,
// read-only) and then the masked ones (the staged /dev/null bound over a
// file, an empty read-only tmpfs over a directory) that lie under /proc.
func (s *stager) stageProc() error {
	if s.fd[treeDev] < 0 {
		return errors.New("stage: /proc masks need the staged /dev")
	}
	proc, err := s.stageRoot(treeProc, "/proc")
	if err != nil {
		return err
	}
	// /proc/sys before its read-only bind: sysctls are written through it.
	if s.procSys, err = beneath(proc, "sys"); err != nil {
		return fmt.Errorf("stage: open /proc/sys: %w", err)
	}
	return s.paths(treeProc, "/proc/")
}

// paths applies the read-only and masked paths under prefix to tree t.
func (s *stager) paths(t int, prefix string) error {
	root := s.fd[t]
	if err := s.under(root, prefix, stagedReadonly, "readonly", func(h int) error {
		b, err := unix.OpenTree(h, "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH)
		if err != nil {
			return err
		}
		defer unix.Close(b)
		if err := unix.MountSetattr(b, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
			return err
		}
		return moveOnto(b, h)
	}); err != nil {
		return err
	}
	return s.under(root, prefix, s.masked, "mask", func(h int) error {
		var st unix.Stat_t
		if err := unix.Fstat(h, &st); err != nil {
			return err
		}
		var m int
		var err error
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			m, err = fsMount("tmpfs", "tmpfs", []string{"ro"}, unix.MOUNT_ATTR_RDONLY)
		} else {
			m, err = unix.OpenTree(s.fd[treeDev], "null", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
		}
		if err != nil {
			return err
		}
		defer unix.Close(m)
		return moveOnto(m, h)
	})
}

// under calls apply with a handle (O_PATH, resolved beneath root) of each
// of paths that lies under prefix, and marks it handled; a path the tree
// lacks is handled as it is (as the ordinary path skips it).
func (s *stager) under(root int, prefix string, paths []string, what string, apply func(h int) error) error {
	for _, p := range paths {
		if !strings.HasPrefix(p, prefix) {
			continue
		}
		if err := s.step(); err != nil {
			return err
		}
		h, err := beneath(root, strings.TrimPrefix(p, prefix))
		if errors.Is(err, unix.ENOENT) {
			s.handled[p] = true
			continue
		}
		if err == nil {
			err = apply(h)
			unix.Close(h)
		}
		if err != nil {
			return fmt.Errorf("stage: %s %s: %w", what, p, err)
		}
		s.handled[p] = true
	}
	return nil
}

// stageSys builds /sys: sysfs of the init's network namespace, the cgroup
// tree on fs/cgroup and the masked /sys paths.
func (s *stager) stageSys() error {
	sys, err := s.stageRoot(treeSys, "/sys")
	if err != nil {
		return err
	}
	cg, err := s.stageCgroup()
	if err != nil {
		return err
	}
	if err := attachAt(cg, sys, "fs/cgroup"); err != nil {
		return err
	}
	return s.paths(treeSys, "/sys/")
}

// stageCgroup builds what mountCgroup makes for the default cgroup entry
// (read-only, no cgroup namespace) on a cgroup v1 or hybrid host: a tmpfs
// with the container's own directory of each hierarchy bound on it,
// everything read-only, nosuid, nodev, noexec.
func (s *stager) stageCgroup() (int, error) {
	m := entry("/sys/fs/cgroup")
	opts, err := parseMountOptions(m.Options)
	if err != nil {
		return -1, err
	}
	hier, err := hostCgroupMounts()
	if err != nil {
		return -1, err
	}
	if len(hier.v1) == 0 {
		return -1, errors.New("stage: cgroup tree staged on v1 or hybrid hosts only")
	}
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return -1, err
	}
	own, err := ownCgroupPaths()
	if err != nil {
		return -1, err
	}
	flags := opts.flags &^ unix.MS_RDONLY
	tmp, err := fsMount("tmpfs", "tmpfs", []string{"mode=755"}, int(cgroupAttrs(flags)))
	if err != nil {
		return -1, err
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(tmp)
		}
	}()
	bind := func(hm cgroupMount, controller, dir string) error {
		p, found := own[controller]
		if !found {
			return fmt.Errorf("no cgroup for controller %q", controller)
		}
		src := filepath.Join(hm.mountpoint, strings.TrimPrefix(p, hm.root))
		if err := unix.Mkdirat(tmp, dir, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		b, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
		if err != nil {
			return err
		}
		return attachAt(b, tmp, dir)
	}
	for _, hm := range hier.v1 {
		if err := s.step(); err != nil {
			return -1, err
		}
		if err := bind(hm, hm.controller, hm.dir); err != nil {
			return -1, fmt.Errorf("stage: cgroup %s: %w", hm.options, err)
		}
		if strings.Contains(hm.dir, ",") {
			for _, c := range strings.Split(hm.dir, ",") {
				_ = unix.Symlinkat(hm.dir, tmp, c)
			}
		}
	}
	if hier.unified.mountpoint != "" {
		if err := bind(hier.unified, "", "unified"); err != nil {
			return -1, fmt.Errorf("stage: cgroup2: %w", err)
		}
	}
	attr := &unix.MountAttr{Attr_set: cgroupAttrs(opts.flags)}
	if err := unix.MountSetattr(tmp, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return -1, fmt.Errorf("stage: cgroup mount attributes: %w", err)
	}
	if opts.flags&unix.MS_RDONLY != 0 {
		// The tmpfs's superblock read-only too, as mountCgroup's remount.
		pk, err := unix.Fspick(tmp, "", unix.FSPICK_EMPTY_PATH|unix.FSPICK_CLOEXEC)
		if err != nil {
			return -1, fmt.Errorf("stage: fspick: %w", err)
		}
		err = unix.FsconfigSetFlag(pk, "ro")
		if err == nil {
			err = unix.FsconfigReconfigure(pk)
		}
		unix.Close(pk)
		if err != nil {
			return -1, fmt.Errorf("stage: cgroup tmpfs read-only: %w", err)
		}
	}
	s.cgroups = string(raw)
	ok = true
	return tmp, nil
}

// thermalThrottlePaths lists the host's
// /sys/devices/system/cpu/cpuN/thermal_throttle directories for the
// possible CPUs, in CPU order (as berthd's spec generator lists them).
func thermalThrottlePaths() []string {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range strings.Split(strings.TrimSpace(string(b)), ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err1 := strconv.Atoi(lo)
		z := a
		var err2 error
		if isRange {
			z, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil {
			return nil
		}
		for cpu := a; cpu <= z; cpu++ {
			p := fmt.Sprintf("/sys/devices/system/cpu/cpu%d/thermal_throttle", cpu)
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// stagedUse is what initContainer takes of the staged trees for one
// config: the trees to attach (by the index of the mount entry of their
// root), the entries they serve, and the paths they masked or made
// read-only.
type stagedUse struct {
	fd      [nTrees]int
	attach  map[int]int  // spec mount index -> tree attached there
	skip    map[int]bool // spec mount indexes served by an attached tree
	handled map[string]bool
	procSys int
	names   []string
}

// finish stops the staging (or waits for its end: stager.wait) and
// returns the finished trees the config can use; the others are dropped.
// Nil when none.
func (s *stager) finish(cfg *Config) *stagedUse {
	if s == nil {
		return nil
	}
	if !s.wait {
		s.abort.Store(true)
	}
	<-s.done
	u := s.match(cfg)
	if u == nil {
		s.close()
	}
	return u
}

// match decides which trees cfg can use (see the top of this file) and
// drops the others.
func (s *stager) match(cfg *Config) *stagedUse {
	spec := cfg.Spec
	if spec == nil || spec.Linux == nil || !cfg.NewMountNS || cfg.UserNS || cfg.NoPivot {
		return nil
	}
	l := spec.Linux
	switch l.RootfsPropagation {
	case "", "slave", "rslave", "private", "rprivate":
	default:
		return nil
	}
	if spec.Hooks != nil && len(spec.Hooks.CreateContainer) > 0 {
		return nil
	}
	usable := [nTrees]bool{true, true, true}
	if len(l.Devices) != 0 {
		usable[treeDev] = false
	}
	if !slices.Equal(l.MaskedPaths, s.masked) || !slices.Equal(l.ReadonlyPaths, stagedReadonly) {
		usable[treeProc], usable[treeSys] = false, false
	}
	if cfg.JoinNetNS != "" || cfg.NewCgroupNS {
		usable[treeSys] = false
	}
	if usable[treeSys] {
		if b, err := os.ReadFile("/proc/self/cgroup"); err != nil || string(b) != s.cgroups {
			usable[treeSys] = false
		}
	}
	// Where each staged entry is in the spec.
	idx := map[string]int{}
	for i, m := range spec.Mounts {
		d := filepath.Clean(m.Destination)
		if _, dup := idx[d]; dup {
			idx[d] = -1 // twice: not served
			continue
		}
		idx[d] = i
	}
	first := [nTrees]int{-1, -1, -1}
	served := map[int]int{}
	for _, e := range stagedEntries {
		i, ok := idx[e.m.Destination]
		if !ok || i < 0 || !sameMount(spec.Mounts[i], e.m) {
			usable[e.tree] = false
			continue
		}
		served[i] = e.tree
		if e.m.Destination == treeRoots[e.tree] {
			first[e.tree] = i
		}
	}
	for t := range nTrees {
		if first[t] < 0 {
			usable[t] = false
			continue
		}
		// The root is mounted before what is on it, and no other mount
		// is under the tree: the ordinary path would make it in between,
		// or before the device nodes or the masked and read-only paths.
		for i, m := range spec.Mounts {
			if tr, ok := served[i]; ok && tr == t {
				if i < first[t] {
					usable[t] = false
				}
				continue
			}
			d := filepath.Clean(m.Destination)
			if d == treeRoots[t] || strings.HasPrefix(d, treeRoots[t]+"/") {
				usable[t] = false
			}
		}
	}
	// The /proc masks bind the staged /dev/null.
	if !usable[treeDev] {
		usable[treeProc] = false
	}
	u := &stagedUse{attach: map[int]int{}, skip: map[int]bool{}, handled: map[string]bool{}, procSys: -1, fd: [nTrees]int{-1, -1, -1}}
	for t := range nTrees {
		if !usable[t] || s.fd[t] < 0 {
			s.drop(t)
			continue
		}
		u.fd[t], s.fd[t] = s.fd[t], -1
		u.attach[first[t]] = t
		for i, tr := range served {
			if tr == t {
				u.skip[i] = true
			}
		}
		prefix := treeRoots[t] + "/"
		for p := range s.handled {
			if strings.HasPrefix(p, prefix) {
				u.handled[p] = true
			}
		}
		if t == treeProc {
			u.procSys, s.procSys = s.procSys, -1
		}
		u.names = append(u.names, treeNames[t])
	}
	if len(u.names) == 0 {
		return nil
	}
	return u
}

func sameMount(a, b specs.Mount) bool {
	return filepath.Clean(a.Destination) == b.Destination && a.Type == b.Type && a.Source == b.Source &&
		slices.Equal(a.Options, b.Options) && len(a.UIDMappings) == 0 && len(a.GIDMappings) == 0
}

// close drops what is left (the trees are closed once attached).
func (u *stagedUse) close() {
	if u == nil {
		return
	}
	for t := range nTrees {
		if u.fd[t] >= 0 {
			unix.Close(u.fd[t])
			u.fd[t] = -1
		}
	}
	if u.procSys >= 0 {
		unix.Close(u.procSys)
		u.procSys = -1
	}
}

// attachTree moves tree t onto the mount point h (resolved inside the
// rootfs by the caller) and closes its descriptor.
func (u *stagedUse) attachTree(t int, h *os.File) error {
	fd := u.fd[t]
	u.fd[t] = -1
	defer unix.Close(fd)
	if err := moveOnto(fd, int(h.Fd())); err != nil {
		return fmt.Errorf("attach staged %s: %w", treeNames[t], err)
	}
	return nil
}

// unhandled returns the paths of list no attached tree took care of.
func (u *stagedUse) unhandled(list []string) []string {
	if u == nil || len(u.handled) == 0 {
		return list
	}
	var out []string
	for _, p := range list {
		if !u.handled[p] {
			out = append(out, p)
		}
	}
	return out
}

// writeSysctls writes sysctls through the staged /proc/sys handle (taken
// below its read-only bind), or the ordinary way without one.
func (u *stagedUse) writeSysctls(sysctls map[string]string) error {
	if u == nil || u.procSys < 0 {
		return writeSysctls(sysctls)
	}
	defer func() {
		unix.Close(u.procSys)
		u.procSys = -1
	}()
	for k, v := range sysctls {
		rel := strings.ReplaceAll(k, ".", "/")
		if strings.Contains(k, "/") || strings.Contains(rel, "..") {
			return fmt.Errorf("invalid sysctl name %q", k)
		}
		how := unix.OpenHow{
			Flags:   unix.O_WRONLY | unix.O_TRUNC | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		}
		fd, err := unix.Openat2(u.procSys, rel, &how)
		if err == nil {
			_, err = unix.Write(fd, []byte(v))
			unix.Close(fd)
		}
		if err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// summary is what MsgReady reports of the staged trees used.
func (u *stagedUse) summary() string {
	if u == nil {
		return ""
	}
	return "staged: " + strings.Join(u.names, " ")
}
