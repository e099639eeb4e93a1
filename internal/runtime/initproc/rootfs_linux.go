package initproc

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/mountinfo"
)

// rootfsSetup performs, inside the container's new mount namespace, every
// mount the spec asks for, then creates /dev. It runs before pivot_root and
// resolves every destination inside the rootfs through an O_PATH handle, so
// a symlink in the image can never redirect a mount onto the host.
type rootfsSetup struct {
	rootfs  string
	root    *os.File // O_PATH handle of the rootfs
	spec    *specs.Spec
	userns  bool
	cgroupn bool // a new cgroup namespace was created
	bundle  string
	staged  *stagedUse // staged mount trees to attach (stage_linux.go), or nil
}

func (r *rootfsSetup) prepare() error {
	prop, err := parsePropagation(r.spec.Linux.RootfsPropagation)
	if err != nil {
		return err
	}
	// Stop mount events from reaching the host: everything below / becomes a
	// slave (or what rootfsPropagation asks) of the host's mounts.
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	Tracef("init: propagation set")
	// After a recursive slave or private (the default rslave), no mount
	// of the namespace is shared any more (nor can propagation bring a
	// shared one in): nothing to look up in mountinfo.
	if !(prop&unix.MS_REC != 0 && prop&(unix.MS_SLAVE|unix.MS_PRIVATE) != 0) {
		if err := makeParentPrivate(r.rootfs); err != nil {
			return err
		}
	}
	Tracef("init: parent private")
	// pivot_root needs the new root to be a mount point.
	if err := unix.Mount(r.rootfs, r.rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind rootfs %s: %w", r.rootfs, err)
	}
	root, err := os.OpenFile(r.rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	r.root = root
	Tracef("init: rootfs bound")
	setupDev := true
	for i := range r.spec.Mounts {
		m := r.spec.Mounts[i]
		if r.staged != nil {
			if t, ok := r.staged.attach[i]; ok {
				// A staged tree, with everything on it: its device
				// nodes and symlinks for /dev.
				h, err := r.target(m.Destination, true)
				if err != nil {
					return fmt.Errorf("mount %s to %s: %w", m.Source, m.Destination, err)
				}
				err = r.staged.attachTree(t, h)
				h.Close()
				if err != nil {
					return err
				}
				if t == treeDev {
					setupDev = false
				}
				Tracef("init: attached staged %s", m.Destination)
				continue
			}
			if r.staged.skip[i] {
				continue
			}
		}
		if filepath.Clean(m.Destination) == "/dev" && isBind(m) {
			setupDev = false
		}
		if err := r.mount(m); err != nil {
			return fmt.Errorf("mount %s to %s: %w", m.Source, m.Destination, err)
		}
		Tracef("init: mount %s", m.Destination)
	}
	if setupDev {
		if err := r.createDevices(); err != nil {
			return err
		}
		if err := r.devSymlinks(); err != nil {
			return err
		}
	}
	return nil
}

func isBind(m specs.Mount) bool {
	if m.Type == "bind" {
		return true
	}
	for _, o := range m.Options {
		if o == "bind" || o == "rbind" {
			return true
		}
	}
	return false
}

// makeParentPrivate makes the mount holding path private if it is shared:
// pivot_root refuses a new root whose parent mount is shared.
func makeParentPrivate(path string) error {
	mp, optional, err := mountPointOf(filepath.Dir(path))
	if err != nil {
		return err
	}
	if strings.Contains(optional, "shared:") {
		if err := unix.Mount("", mp, "", unix.MS_PRIVATE, ""); err != nil {
			return fmt.Errorf("make %s private: %w", mp, err)
		}
	}
	return nil
}

// mountPointOf returns the longest mount point in this namespace that is a
// prefix of path, with that mount's optional fields.
func mountPointOf(path string) (string, string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	best, bestOpt := "/", ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		mp := mountinfo.Unescape(fields[4])
		if (path == mp || strings.HasPrefix(path, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best) {
			opt := ""
			for _, f := range fields[6:] {
				if f == "-" {
					break
				}
				opt += f + " "
			}
			best, bestOpt = mp, opt
		}
	}
	return best, bestOpt, sc.Err()
}

// target creates the mount point for dest inside the rootfs (a directory, or
// an empty file when the source is not a directory) and returns an O_PATH
// handle to it. The caller mounts onto /proc/self/fd/N of that handle, so
// the path is resolved exactly once, inside the root.
func (r *rootfsSetup) target(dest string, dir bool) (*os.File, error) {
	if !filepath.IsAbs(dest) {
		dest = "/" + dest
	}
	if dir {
		return mkdirAllInRoot(r.root, r.rootfs, dest, 0o755)
	}
	if h, err := openInRoot(r.root, dest, unix.O_PATH); err == nil {
		return h, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	parent, err := r.target(filepath.Dir(dest), true)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), filepath.Base(dest), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("create mount point %s: %w", dest, err)
	}
	if fd >= 0 {
		unix.Close(fd)
	}
	return openInRoot(r.root, dest, unix.O_PATH)
}

// reopen replaces a handle taken before a mount with one to the mount's
// root, resolved again inside the rootfs.
func (r *rootfsSetup) reopen(old *os.File, dest string) (*os.File, error) {
	old.Close()
	if !filepath.IsAbs(dest) {
		dest = "/" + dest
	}
	return openInRoot(r.root, dest, unix.O_PATH)
}

func fdPath(f *os.File) string { return "/proc/self/fd/" + strconv.Itoa(int(f.Fd())) }

func (r *rootfsSetup) mount(m specs.Mount) error {
	opts, err := parseMountOptions(m.Options)
	if err != nil {
		return err
	}
	if m.Type == "cgroup" || m.Type == "cgroup2" && !opts.bind {
		return r.mountCgroup(m, opts)
	}
	bind := opts.bind || m.Type == "bind"
	src := m.Source
	dir := true
	if bind {
		if !filepath.IsAbs(src) {
			src = filepath.Join(r.bundle, src)
		}
		st, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		dir = st.IsDir()
	}
	h, err := r.target(m.Destination, dir)
	if err != nil {
		return err
	}
	defer func() { h.Close() }()
	tgt := fdPath(h)
	if bind {
		flags := uintptr(unix.MS_BIND)
		if opts.recursive {
			flags |= unix.MS_REC
		}
		if err := unix.Mount(src, tgt, "", flags, ""); err != nil {
			return err
		}
		if h, err = r.reopen(h, m.Destination); err != nil {
			return err
		}
		tgt = fdPath(h)
		if opts.flags&^unix.MS_REMOUNT != 0 {
			if err := remountBind(tgt, opts.flags&^unix.MS_REMOUNT, opts.clear); err != nil {
				return err
			}
		}
	} else {
		err := unix.Mount(m.Source, tgt, m.Type, opts.flags, opts.dataString())
		if err != nil && errors.Is(err, unix.EPERM) && r.userns && (m.Type == "sysfs" || m.Type == "mqueue") {
			// A user namespace without its own network (sysfs) or IPC
			// (mqueue) namespace may not mount a fresh instance: bind the
			// host's, read-only, as the spec permits.
			host := "/sys"
			if m.Type == "mqueue" {
				host = "/dev/mqueue"
			}
			if err = unix.Mount(host, tgt, "", unix.MS_BIND|unix.MS_REC, ""); err == nil {
				if h, err = r.reopen(h, m.Destination); err == nil {
					tgt = fdPath(h)
					err = remountBind(tgt, opts.flags|unix.MS_RDONLY, 0)
				}
			}
		}
		if err != nil {
			return err
		}
		if h, err = r.reopen(h, m.Destination); err != nil {
			return err
		}
		tgt = fdPath(h)
	}
	for _, p := range opts.propagate {
		if err := unix.Mount("", tgt, "", p, ""); err != nil {
			return fmt.Errorf("propagation: %w", err)
		}
	}
	if opts.recAttrSet != 0 || opts.recAttrClr != 0 {
		attr := &unix.MountAttr{Attr_set: opts.recAttrSet, Attr_clr: opts.recAttrClr}
		if err := unix.MountSetattr(int(h.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("recursive mount attributes: %w", err)
		}
	}
	return nil
}

// remountBind applies flags to an existing bind mount, keeping the flags the
// kernel has locked on it (nosuid, nodev, ... inherited in a user namespace).
func remountBind(tgt string, flags, clear uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(tgt, &st); err != nil {
		return err
	}
	keep := statfsToMountFlags(st.Flags) &^ clear &^ unix.MS_RDONLY
	return unix.Mount("", tgt, "", unix.MS_BIND|unix.MS_REMOUNT|flags|keep, "")
}

// mountCgroup mounts the cgroup hierarchies the host has. With a new cgroup
// namespace the kernel roots each one at the container's cgroup; without
// one, the container's own cgroup directories are bind-mounted from the host.
func (r *rootfsSetup) mountCgroup(m specs.Mount, opts mountOpts) error {
	hier, err := hostCgroupMounts()
	if err != nil {
		return err
	}
	h, err := r.target(m.Destination, true)
	if err != nil {
		return err
	}
	defer func() { h.Close() }()
	tgt := fdPath(h)
	unified, v1 := hier.unified, hier.v1
	flags := opts.flags &^ unix.MS_RDONLY
	if len(v1) == 0 {
		// Pure cgroup v2.
		if r.cgroupn {
			return unix.Mount("cgroup2", tgt, "cgroup2", opts.flags, "")
		}
		return r.bindOwnCgroup(unified, "", m.Destination, opts.flags)
	}
	// v1 or hybrid: a tmpfs with one directory per hierarchy.
	if err := unix.Mount("tmpfs", tgt, "tmpfs", flags, "mode=755"); err != nil {
		return err
	}
	if h, err = r.reopen(h, m.Destination); err != nil {
		return err
	}
	tgt = fdPath(h)
	// The bind mounts of the container's own cgroups get their flags
	// together at the end: one recursive mount_setattr over the tmpfs and
	// its binds instead of a statfs, reopen and remount per hierarchy
	// (ten on this kind of hybrid host). Only for the flags mount_setattr
	// can set, outside a user namespace (locked flags), and with the
	// directory table read once.
	batch := !r.cgroupn && !r.userns && cgroupAttrs(opts.flags) != 0 && opts.flags&^cgroupAttrFlags == 0
	var own map[string]string
	if batch {
		if own, err = ownCgroupPaths(); err != nil {
			return err
		}
	}
	bind := func(hm cgroupMount, controller, dest string) error {
		if !batch {
			return r.bindOwnCgroup(hm, controller, dest, opts.flags)
		}
		p, ok := own[controller]
		if !ok {
			return fmt.Errorf("no cgroup for controller %q", controller)
		}
		return r.bindCgroupDir(filepath.Join(hm.mountpoint, strings.TrimPrefix(p, hm.root)), dest)
	}
	for _, hm := range v1 {
		dest := filepath.Join(m.Destination, hm.dir)
		// cgroup v1 cannot be mounted afresh inside a user namespace.
		if r.cgroupn && !r.userns {
			var sub *os.File
			if sub, err = r.target(dest, true); err != nil {
				return err
			}
			err = unix.Mount("cgroup", fdPath(sub), "cgroup", opts.flags, hm.options)
			sub.Close()
		} else {
			err = bind(hm, hm.controller, dest)
		}
		if err != nil {
			return fmt.Errorf("cgroup %s: %w", hm.options, err)
		}
		// Controllers co-mounted under one directory ("cpu,cpuacct") get
		// the usual per-controller symlinks.
		if strings.Contains(hm.dir, ",") {
			for _, c := range strings.Split(hm.dir, ",") {
				_ = unix.Symlinkat(hm.dir, int(h.Fd()), c)
			}
		}
	}
	if unified.mountpoint != "" {
		dest := filepath.Join(m.Destination, "unified")
		if r.cgroupn {
			var sub *os.File
			if sub, err = r.target(dest, true); err != nil {
				return err
			}
			err = unix.Mount("cgroup2", fdPath(sub), "cgroup2", opts.flags, "")
			sub.Close()
		} else {
			err = bind(unified, "", dest)
		}
		if err != nil {
			return fmt.Errorf("cgroup2: %w", err)
		}
	}
	if batch {
		attr := &unix.MountAttr{Attr_set: cgroupAttrs(opts.flags)}
		if err := unix.MountSetattr(int(h.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
			return fmt.Errorf("cgroup mount attributes: %w", err)
		}
	}
	if opts.flags&unix.MS_RDONLY != 0 {
		return unix.Mount("", tgt, "", unix.MS_REMOUNT|unix.MS_RDONLY|flags, "mode=755")
	}
	return nil
}

// cgroupAttrFlags are the mount flags cgroupAttrs translates.
const cgroupAttrFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// cgroupAttrs returns mount_setattr's attributes for mount flags.
func cgroupAttrs(flags uintptr) uint64 {
	var a uint64
	for _, f := range []struct {
		flag uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
	} {
		if flags&f.flag != 0 {
			a |= f.attr
		}
	}
	return a
}

// bindCgroupDir bind-mounts a host cgroup directory onto dest inside the
// rootfs, flags left to the caller.
func (r *rootfsSetup) bindCgroupDir(src, dest string) error {
	h, err := r.target(dest, true)
	if err != nil {
		return err
	}
	defer h.Close()
	return unix.Mount(src, fdPath(h), "", unix.MS_BIND|unix.MS_REC, "")
}

// ownCgroupPaths returns this process's cgroup paths by /proc/self/cgroup
// controller list ("" for cgroup v2).
func ownCgroupPaths() (map[string]string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			out[""] = parts[2]
		} else if parts[1] != "" {
			out[parts[1]] = parts[2]
		}
	}
	return out, nil
}

// bindOwnCgroup bind-mounts this process's own cgroup directory of one
// hierarchy (the runtime already moved us into the container's cgroup)
// onto dest inside the rootfs.
func (r *rootfsSetup) bindOwnCgroup(hm cgroupMount, controller, dest string, flags uintptr) error {
	own, err := ownCgroupPath(controller)
	if err != nil {
		return err
	}
	src := filepath.Join(hm.mountpoint, strings.TrimPrefix(own, hm.root))
	h, err := r.target(dest, true)
	if err != nil {
		return err
	}
	if err := unix.Mount(src, fdPath(h), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		h.Close()
		return err
	}
	if h, err = r.reopen(h, dest); err != nil {
		return err
	}
	defer h.Close()
	return remountBind(fdPath(h), flags, 0)
}

type cgroupMount struct {
	mountpoint string
	root       string
	options    string // e.g. "memory" or "name=systemd"
	controller string // key in /proc/self/cgroup
	dir        string // directory name under /sys/fs/cgroup
}

type cgroupHierarchies struct {
	v1      []cgroupMount
	unified cgroupMount
}

func hostCgroupMounts() (cgroupHierarchies, error) {
	var out cgroupHierarchies
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return out, err
	}
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || len(fields) < sep+4 {
			continue
		}
		fstype, super := fields[sep+1], fields[sep+3]
		mp := mountinfo.Unescape(fields[4])
		root := mountinfo.Unescape(fields[3])
		switch fstype {
		case "cgroup2":
			if out.unified.mountpoint == "" {
				out.unified = cgroupMount{mountpoint: mp, root: root}
			}
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(super, ",") {
				switch o {
				case "rw", "ro", "nosuid", "nodev", "noexec", "relatime", "clone_children", "noprefix", "xattr":
					continue
				}
				if strings.HasPrefix(o, "release_agent=") {
					continue
				}
				ctrls = append(ctrls, o)
			}
			key := strings.Join(ctrls, ",")
			if key == "" || seen[key] {
				continue
			}
			seen[key] = true
			out.v1 = append(out.v1, cgroupMount{
				mountpoint: mp, root: root, options: key, controller: key,
				dir: filepath.Base(mp),
			})
		}
	}
	return out, sc.Err()
}

// ownCgroupPath returns this process's path in the hierarchy whose
// /proc/self/cgroup controller list is controller ("" for cgroup v2).
func ownCgroupPath(controller string) (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if controller == "" && parts[0] == "0" && parts[1] == "" {
			return parts[2], nil
		}
		if controller != "" && parts[1] == controller {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("no cgroup for controller %q", controller)
}

// defaultDevices are the device nodes every container gets (runtime spec,
// "Default Devices").
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

func (r *rootfsSetup) createDevices() error {
	old := unix.Umask(0)
	defer unix.Umask(old)
	devs := map[string]specs.LinuxDevice{}
	var order []string
	for _, d := range defaultDevices {
		devs[d.Path] = d
		order = append(order, d.Path)
	}
	for _, d := range r.spec.Linux.Devices {
		p := filepath.Clean(d.Path)
		if _, ok := devs[p]; !ok {
			order = append(order, p)
		}
		d.Path = p
		devs[p] = d
	}
	for _, p := range order {
		if err := r.createDevice(devs[p]); err != nil {
			return fmt.Errorf("device %s: %w", p, err)
		}
	}
	return nil
}

func (r *rootfsSetup) createDevice(d specs.LinuxDevice) error {
	if !strings.HasPrefix(d.Path, "/dev/") {
		return fmt.Errorf("device path must be under /dev")
	}
	parent, err := mkdirAllInRoot(r.root, r.rootfs, filepath.Dir(d.Path), 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	base := filepath.Base(d.Path)
	// Replace whatever the image had there (never following a symlink).
	_ = unix.Unlinkat(int(parent.Fd()), base, 0)
	if r.userns {
		// mknod is refused in a user namespace: bind the host's node.
		fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		unix.Close(fd)
		h, err := openInRoot(r.root, d.Path, unix.O_PATH)
		if err != nil {
			return err
		}
		defer h.Close()
		return unix.Mount(d.Path, fdPath(h), "", unix.MS_BIND, "")
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	switch d.Type {
	case "c", "u":
		mode |= unix.S_IFCHR
	case "b":
		mode |= unix.S_IFBLK
	case "p":
		mode |= unix.S_IFIFO
	default:
		return fmt.Errorf("unknown device type %q", d.Type)
	}
	if err := unix.Mknodat(int(parent.Fd()), base, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return unix.Fchownat(int(parent.Fd()), base, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// devLinks are the /dev symlinks (target, link).
func devLinks() [][2]string {
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	return links
}

func (r *rootfsSetup) devSymlinks() error {
	links := devLinks()
	dev, err := mkdirAllInRoot(r.root, r.rootfs, "/dev", 0o755)
	if err != nil {
		return err
	}
	defer dev.Close()
	for _, l := range links {
		name := filepath.Base(l[1])
		if name == "ptmx" {
			// The image or a device entry may have left a node there.
			_ = unix.Unlinkat(int(dev.Fd()), name, 0)
		}
		if err := unix.Symlinkat(l[0], int(dev.Fd()), name); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

// pivotRoot makes rootfs the root of the mount namespace and detaches the
// old root, so no host path stays reachable.
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	// pivot_root(".", ".") stacks the old root on top of the new one; it is
	// then unmounted from the cwd without needing a directory for it.
	if err := unix.PivotRoot(".", "."); err != nil {
		return &pivotError{err}
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	// Make sure the unmount below cannot propagate back to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	return unix.Chdir("/")
}

type pivotError struct{ err error }

func (e *pivotError) Error() string { return "pivot_root: " + e.err.Error() }
func (e *pivotError) Unwrap() error { return e.err }

// moveRoot is the fallback when the root cannot be pivoted (a rootfs on the
// initramfs, or --no-pivot): move the rootfs mount over / and chroot into it.
func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return err
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// maskPaths hides paths from the container: /dev/null over files, an empty
// read-only tmpfs over directories. Missing paths are skipped.
func maskPaths(paths []string) error {
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("mask %s: %w", p, err)
		}
		if st.IsDir() {
			err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
		} else {
			err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("mask %s: %w", p, err)
		}
	}
	return nil
}

func readonlyPaths(paths []string) error {
	for _, p := range paths {
		if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return fmt.Errorf("readonly %s: %w", p, err)
		}
		if err := remountBind(p, unix.MS_RDONLY, 0); err != nil {
			return fmt.Errorf("readonly %s: %w", p, err)
		}
	}
	return nil
}

func remountRootReadonly() error {
	return remountBind("/", unix.MS_RDONLY, 0)
}

// writeSysctls sets namespaced kernel parameters through /proc/sys.
func writeSysctls(sysctls map[string]string) error {
	for k, v := range sysctls {
		rel := strings.ReplaceAll(k, ".", "/")
		if strings.Contains(k, "/") || strings.Contains(rel, "..") {
			return fmt.Errorf("invalid sysctl name %q", k)
		}
		if err := os.WriteFile(filepath.Join("/proc/sys", rel), []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}
