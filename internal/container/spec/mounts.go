//go:build linux

package spec

import (
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultMounts are dockerd's default mounts, in its order. /dev/shm gets
// its size option from HostConfig.ShmSize.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777"}},
	}
}

// rroMinKernel is the first kernel with mount_setattr(2), which
// recursively read-only binds need.
var rroMinKernel = [2]int{5, 12}

func invalidMount(format string, args ...any) error {
	return errdefs.Newf(errdefs.InvalidArgument, format, args...)
}

// mounts builds the mount list as dockerd does: the defaults, minus those
// a user mount replaces (and everything under /dev when /dev is
// user-mounted, and /dev/shm for --ipc none), then the user mounts
// sorted by destination depth.
func (g *generator) mounts() error {
	user, err := g.userMounts()
	if err != nil {
		return err
	}
	userDest := map[string]bool{}
	for _, m := range user {
		userDest[m.Destination] = true
	}

	shmSize := g.hc.ShmSize
	if shmSize < 0 {
		return invalidMount("SHM size can not be less than 0")
	}
	if shmSize == 0 {
		shmSize = defaultShmSize
	}

	var out []specs.Mount
	for _, m := range defaultMounts() {
		if userDest[m.Destination] {
			continue
		}
		if userDest["/dev"] && strings.HasPrefix(m.Destination, "/dev/") {
			continue
		}
		if m.Destination == "/dev/shm" {
			if g.hc.IpcMode.IsNone() {
				continue
			}
			m.Options = append(m.Options, "size="+strconv.FormatInt(shmSize, 10))
		}
		if g.hc.ReadonlyRootfs {
			switch m.Destination {
			case "/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev":
			default:
				if !slices.Contains(m.Options, "ro") {
					m.Options = append(m.Options, "ro")
				}
			}
		}
		if (m.Destination == "/sys" && g.hc.Privileged) ||
			(m.Type == "cgroup" && (g.hc.Privileged || g.sec.writableCgroups)) {
			m.Options = slices.DeleteFunc(m.Options, func(o string) bool { return o == "ro" })
		}
		out = append(out, m)
	}
	g.s.Mounts = append(out, user...)
	return nil
}

// userMounts collects, checks and sorts the mounts the user asked for,
// the network files and the daemon's resolved mounts.
func (g *generator) userMounts() ([]specs.Mount, error) {
	var ms []specs.Mount
	seen := map[string]bool{}
	fromDaemon := map[string]bool{}
	for _, m := range g.in.Mounts {
		fromDaemon[path.Clean(m.Destination)] = true
	}
	add := func(m specs.Mount) error {
		m.Destination = path.Clean(m.Destination)
		if seen[m.Destination] {
			return invalidMount("Duplicate mount point: %s", m.Destination)
		}
		seen[m.Destination] = true
		ms = append(ms, m)
		return nil
	}

	for _, raw := range g.hc.Binds {
		m, volume, err := g.parseBind(raw)
		if err != nil {
			return nil, err
		}
		if volume {
			if !fromDaemon[m.Destination] {
				return nil, invalidMount("volume %q for %s is not resolved: named and anonymous volumes must be passed by the daemon", m.Source, m.Destination)
			}
			continue
		}
		if fromDaemon[m.Destination] {
			continue
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	// dockerd's order before the depth sort: volumes and binds, the
	// network files, the IPC mount, then tmpfs mounts.
	var tmpfsMounts []specs.Mount
	for _, mm := range g.hc.Mounts {
		m, ok, err := g.convertMount(mm)
		if err != nil {
			return nil, err
		}
		if !ok || fromDaemon[m.Destination] {
			continue
		}
		if m.Type == "tmpfs" {
			tmpfsMounts = append(tmpfsMounts, m)
			continue
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	for _, m := range g.in.Mounts {
		if err := add(m); err != nil {
			return nil, err
		}
	}

	// The tmpfs destinations are reserved now so that a network file or
	// the IPC mount gives way to a user's tmpfs at the same place.
	tmpfsDests := make([]string, 0, len(g.hc.Tmpfs))
	for d := range g.hc.Tmpfs {
		tmpfsDests = append(tmpfsDests, d)
	}
	sort.Strings(tmpfsDests)
	var tmpfsAll []specs.Mount
	for _, d := range tmpfsDests {
		if err := checkDestination(d, "tmpfs"); err != nil {
			return nil, err
		}
		opts, err := tmpfsOptions(g.hc.Tmpfs[d])
		if err != nil {
			return nil, err
		}
		tmpfsAll = append(tmpfsAll, specs.Mount{Destination: path.Clean(d), Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	tmpfsAll = append(tmpfsAll, tmpfsMounts...)
	tmpfsDest := map[string]bool{}
	for _, m := range tmpfsAll {
		if seen[m.Destination] || tmpfsDest[m.Destination] {
			return nil, invalidMount("Duplicate mount point: %s", m.Destination)
		}
		tmpfsDest[m.Destination] = true
	}

	// The network files, unless the user mounts something there.
	netFiles := []struct{ src, dst string }{
		{g.in.ResolvConfPath, "/etc/resolv.conf"},
		{g.in.HostnamePath, "/etc/hostname"},
		{g.in.HostsPath, "/etc/hosts"},
	}
	for _, f := range netFiles {
		if f.src == "" || seen[f.dst] || tmpfsDest[f.dst] {
			continue
		}
		opts := []string{"rbind"}
		if g.hc.ReadonlyRootfs {
			opts = append(opts, "ro")
		}
		opts = append(opts, "rprivate")
		_ = add(specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: opts})
	}
	if g.hc.IpcMode.IsHost() && !seen["/dev/shm"] && !tmpfsDest["/dev/shm"] {
		_ = add(specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}})
	}
	for _, m := range tmpfsAll {
		if err := add(m); err != nil {
			return nil, err
		}
	}

	sort.SliceStable(ms, func(i, j int) bool { return depth(ms[i].Destination) < depth(ms[j].Destination) })
	return ms, nil
}

// depth is the number of components of a clean absolute path, the key
// dockerd sorts mounts by so that a parent is mounted before its children.
func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

func checkDestination(dst, typ string) error {
	if !path.IsAbs(dst) {
		return invalidMount("invalid mount config for type %q: invalid mount path: '%s' mount path must be absolute", typ, dst)
	}
	if path.Clean(dst) == "/" {
		return invalidMount("invalid specification: destination can't be '/'")
	}
	return nil
}

var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// parseBind parses one -v/--volume entry ("src:dst[:mode]" or "dst").
// volume reports a named or anonymous volume, which the daemon resolves.
func (g *generator) parseBind(raw string) (m specs.Mount, volume bool, err error) {
	parts := strings.Split(raw, ":")
	bad := func() error { return invalidMount("invalid volume specification: '%s'", raw) }
	var src, dst, mode string
	switch len(parts) {
	case 1:
		dst = parts[0]
	case 2:
		src, dst = parts[0], parts[1]
	case 3:
		src, dst, mode = parts[0], parts[1], parts[2]
	default:
		return m, false, bad()
	}
	if dst == "" || (len(parts) > 1 && src == "") {
		return m, false, bad()
	}
	if err := checkDestination(dst, "bind"); err != nil {
		return m, false, fmt.Errorf("invalid volume specification: '%s': %w", raw, err)
	}
	rw, propagation, err := parseBindMode(mode)
	if err != nil {
		return m, false, err
	}
	m = specs.Mount{Destination: path.Clean(dst), Type: "bind", Source: src}
	if src == "" || !path.IsAbs(src) {
		return m, true, nil
	}
	m.Source = path.Clean(src)
	m.Options = g.bindOptions(true, !rw, false, false, propagation)
	if propagation != "" {
		if err := checkSourcePropagation(m.Source, propagation); err != nil {
			return m, false, err
		}
		g.rootPropagation(propagation)
	}
	return m, false, nil
}

// parseBindMode checks a -v mode list ("ro,z,rshared", ...).
func parseBindMode(mode string) (rw bool, propagation string, err error) {
	rw = true
	if mode == "" {
		return rw, "", nil
	}
	seenRW, seenLabel, seenProp, seenCopy := false, false, false, false
	for _, o := range strings.Split(mode, ",") {
		var dup bool
		switch {
		case o == "rw" || o == "ro":
			dup, seenRW, rw = seenRW, true, o == "rw"
		case o == "z" || o == "Z":
			dup, seenLabel = seenLabel, true
		case o == "nocopy":
			dup, seenCopy = seenCopy, true
		case slices.Contains(propagations, o):
			dup, seenProp, propagation = seenProp, true, o
		default:
			return false, "", invalidMount("invalid mode: %s", mode)
		}
		if dup {
			return false, "", invalidMount("invalid mode: %s", mode)
		}
	}
	return rw, propagation, nil
}

// bindOptions are a bind mount's options in dockerd's order: rbind (bind
// when non-recursive), ro (plus rro, recursively read-only, where the
// kernel can and the user did not ask otherwise), propagation (rprivate
// by default).
func (g *generator) bindOptions(recursive, readonly, roNonRecursive, roForceRecursive bool, propagation string) []string {
	opts := []string{"rbind"}
	if !recursive {
		opts[0] = "bind"
	}
	if readonly {
		opts = append(opts, "ro")
		k := g.host.kernel
		rroOK := k[0] > rroMinKernel[0] || (k[0] == rroMinKernel[0] && k[1] >= rroMinKernel[1])
		if recursive && !roNonRecursive && (rroOK || roForceRecursive) {
			opts = append(opts, "rro")
		}
	}
	if propagation == "" {
		propagation = "rprivate"
	}
	return append(opts, propagation)
}

// checkSourcePropagation refuses a shared (or slave) bind whose source is
// not on a shared (or shared or slave) mount of the host, as dockerd does:
// the propagation asked for could not happen.
func checkSourcePropagation(src, p string) error {
	var want []string
	switch p {
	case "shared", "rshared":
		want = []string{"shared:"}
	case "slave", "rslave":
		want = []string{"shared:", "master:"}
	default:
		return nil
	}
	mp, optional, err := sourceMount(src)
	if err != nil {
		return invalidMount("bind source path %s: %v", src, err)
	}
	for _, field := range strings.Fields(optional) {
		for _, w := range want {
			if strings.HasPrefix(field, w) {
				return nil
			}
		}
	}
	if len(want) == 1 {
		return errdefs.Newf(errdefs.FailedPrecondition, "path %s is mounted on %s but it is not a shared mount", src, mp)
	}
	return errdefs.Newf(errdefs.FailedPrecondition, "path %s is mounted on %s but it is not a shared or slave mount", src, mp)
}

// rootPropagation makes the root mount shared (or a slave) when a bind
// asks for shared (or slave) propagation, as dockerd does; otherwise the
// propagation could not reach the host.
func (g *generator) rootPropagation(p string) {
	l := g.s.Linux
	switch p {
	case "shared", "rshared":
		if l.RootfsPropagation != "shared" && l.RootfsPropagation != "rshared" {
			l.RootfsPropagation = "shared"
		}
	case "slave", "rslave":
		switch l.RootfsPropagation {
		case "shared", "rshared", "slave", "rslave":
		default:
			l.RootfsPropagation = "rslave"
		}
	}
}

// convertMount turns a --mount of type bind or tmpfs into an OCI mount.
// Other types belong to the daemon: ok is false for them.
func (g *generator) convertMount(mm mount.Mount) (m specs.Mount, ok bool, err error) {
	switch mm.Type {
	case mount.TypeBind:
		if err := checkDestination(mm.Target, "bind"); err != nil {
			return m, false, err
		}
		if mm.Source == "" {
			return m, false, invalidMount("invalid mount config for type \"bind\": field Source must not be empty")
		}
		if !path.IsAbs(mm.Source) {
			return m, false, invalidMount("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute", mm.Source)
		}
		if _, err := os.Stat(mm.Source); err != nil {
			return m, false, invalidMount("invalid mount config for type \"bind\": bind source path does not exist: %s", mm.Source)
		}
		if mm.TmpfsOptions != nil || mm.VolumeOptions != nil {
			return m, false, invalidMount("invalid mount config for type \"bind\": only BindOptions may be set")
		}
		recursive, roNon, roForce, prop := true, false, false, ""
		if b := mm.BindOptions; b != nil {
			recursive = !b.NonRecursive
			roNon, roForce = b.ReadOnlyNonRecursive, b.ReadOnlyForceRecursive
			prop = string(b.Propagation)
			if prop != "" && !slices.Contains(propagations, prop) {
				return m, false, invalidMount("invalid mount config for type \"bind\": invalid propagation %q", prop)
			}
			if (roNon || roForce) && !mm.ReadOnly {
				return m, false, invalidMount("invalid mount config for type \"bind\": ReadOnlyNonRecursive and ReadOnlyForceRecursive need ReadOnly")
			}
			if roNon && roForce {
				return m, false, invalidMount("invalid mount config for type \"bind\": cannot set both ReadOnlyNonRecursive and ReadOnlyForceRecursive")
			}
			if roForce && !recursive {
				return m, false, invalidMount("invalid mount config for type \"bind\": cannot set ReadOnlyForceRecursive with NonRecursive")
			}
		}
		k := g.host.kernel
		if roForce && (k[0] < rroMinKernel[0] || (k[0] == rroMinKernel[0] && k[1] < rroMinKernel[1])) {
			return m, false, invalidMount("invalid mount config for type \"bind\": ReadOnlyForceRecursive needs Linux 5.12 or later")
		}
		if prop != "" {
			if err := checkSourcePropagation(mm.Source, prop); err != nil {
				return m, false, err
			}
			g.rootPropagation(prop)
		}
		return specs.Mount{
			Destination: path.Clean(mm.Target), Type: "bind", Source: path.Clean(mm.Source),
			Options: g.bindOptions(recursive, mm.ReadOnly, roNon, roForce, prop),
		}, true, nil
	case mount.TypeTmpfs:
		if err := checkDestination(mm.Target, "tmpfs"); err != nil {
			return m, false, err
		}
		if mm.Source != "" {
			return m, false, invalidMount("invalid mount config for type \"tmpfs\": field Source must not be specified")
		}
		if mm.BindOptions != nil || mm.VolumeOptions != nil {
			return m, false, invalidMount("invalid mount config for type \"tmpfs\": only TmpfsOptions may be set")
		}
		data, err := tmpfsData(mm.TmpfsOptions, mm.ReadOnly)
		if err != nil {
			return m, false, err
		}
		opts, err := tmpfsOptions(data)
		if err != nil {
			return m, false, err
		}
		return specs.Mount{Destination: path.Clean(mm.Target), Type: "tmpfs", Source: "tmpfs", Options: opts}, true, nil
	case "":
		return m, false, invalidMount("invalid mount config: mount type unknown")
	default:
		return m, false, nil
	}
}

// tmpfsData renders --mount type=tmpfs options as a --tmpfs option string,
// as dockerd does (size with the largest exact k/m/g suffix, octal mode).
func tmpfsData(o *mount.TmpfsOptions, readonly bool) (string, error) {
	var raw []string
	if readonly {
		raw = append(raw, "ro")
	}
	if o != nil && o.Mode != 0 {
		raw = append(raw, fmt.Sprintf("mode=%o", o.Mode))
	}
	if o != nil && o.SizeBytes != 0 {
		if o.SizeBytes < 0 {
			return "", invalidMount("invalid mount config for type \"tmpfs\": invalid tmpfs size %d", o.SizeBytes)
		}
		size, suffix := o.SizeBytes, ""
		for _, r := range []struct {
			suffix string
			div    int64
		}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
			if size%r.div == 0 {
				size, suffix = size/r.div, r.suffix
				break
			}
		}
		raw = append(raw, fmt.Sprintf("size=%d%s", size, suffix))
	}
	if o != nil {
		for _, kv := range o.Options {
			switch len(kv) {
			case 1:
				raw = append(raw, kv[0])
			case 2:
				raw = append(raw, kv[0]+"="+kv[1])
			default:
				return "", invalidMount("invalid mount config for type \"tmpfs\": invalid option %q", kv)
			}
		}
	}
	return strings.Join(raw, ","), nil
}

// tmpfsFlags are the flag options a tmpfs accepts; options sharing a key
// override each other (the last one wins). Propagation flags share one
// key.
var tmpfsFlags = map[string]string{
	"ro": "rdonly", "rw": "rdonly",
	"suid": "nosuid", "nosuid": "nosuid",
	"dev": "nodev", "nodev": "nodev",
	"exec": "noexec", "noexec": "noexec",
	"sync": "sync", "async": "sync",
	"dirsync": "dirsync",
	"remount": "remount",
	"mand":    "mand", "nomand": "mand",
	"atime": "noatime", "noatime": "noatime",
	"diratime": "nodiratime", "nodiratime": "nodiratime",
	"bind": "bind", "rbind": "bind",
	"relatime": "relatime", "norelatime": "relatime",
	"strictatime": "strictatime", "nostrictatime": "strictatime",
	"private": "propagation", "rprivate": "propagation", "shared": "propagation", "rshared": "propagation",
	"slave": "propagation", "rslave": "propagation", "unbindable": "propagation", "runbindable": "propagation",
}

// tmpfsDataKeys are the key=value options a tmpfs accepts.
var tmpfsDataKeys = map[string]bool{"size": true, "mode": true, "uid": true, "gid": true, "nr_inodes": true, "nr_blocks": true, "mpol": true}

// tmpfsOptions merges dockerd's tmpfs defaults (noexec, nosuid, nodev,
// rprivate) with the user's comma-separated options, later options
// replacing earlier ones that set the same thing.
func tmpfsOptions(data string) ([]string, error) {
	opts := []string{"noexec", "nosuid", "nodev", "rprivate"}
	if data != "" {
		opts = append(opts, strings.Split(data, ",")...)
	}
	seen := map[string]bool{}
	var out []string
	for i := len(opts) - 1; i >= 0; i-- {
		o := opts[i]
		if o == "defaults" || o == "" {
			continue
		}
		key, isFlag := tmpfsFlags[o]
		if !isFlag {
			k, _, ok := strings.Cut(o, "=")
			if !ok || !tmpfsDataKeys[k] {
				return nil, invalidMount("invalid tmpfs option %q", o)
			}
			key = "data:" + k
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append([]string{o}, out...)
	}
	return out, nil
}

// paths sets the masked and read-only paths: none for privileged
// containers and systempaths=unconfined, HostConfig's lists when given,
// else Docker's defaults.
func (g *generator) paths() error {
	l := g.s.Linux
	if g.hc.Privileged || g.sec.unconfinedPaths {
		return nil
	}
	if g.hc.MaskedPaths != nil {
		l.MaskedPaths = slices.Clone(g.hc.MaskedPaths)
	} else {
		l.MaskedPaths = append(slices.Clone(DefaultMaskedPaths), g.host.thermalThrottle...)
	}
	if g.hc.ReadonlyPaths != nil {
		l.ReadonlyPaths = slices.Clone(g.hc.ReadonlyPaths)
	} else {
		l.ReadonlyPaths = slices.Clone(DefaultReadonlyPaths)
	}
	return nil
}

// DefaultMaskedPaths are the kernel interfaces Docker hides (bind-mounting
// /dev/null or an empty read-only tmpfs over them). Generate also masks
// /sys/devices/system/cpu/cpuN/thermal_throttle where the host has it.
// Treat it as read-only.
var DefaultMaskedPaths = []string{
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

// DefaultReadonlyPaths are the kernel interfaces Docker makes read-only.
// Treat it as read-only.
var DefaultReadonlyPaths = []string{
	"/proc/bus",
	"/proc/fs",
	"/proc/irq",
	"/proc/sys",
	"/proc/sysrq-trigger",
}
