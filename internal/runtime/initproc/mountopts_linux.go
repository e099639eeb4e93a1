package initproc

import (
	"fmt"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOpts is a parsed OCI mount options list.
type mountOpts struct {
	flags                  uintptr   // flags for mount(2)
	clear                  uintptr   // flags explicitly cleared ("rw", "suid", ...)
	propagate              []uintptr // propagation changes, applied after the mount
	recAttrSet, recAttrClr uint64    // recursive attributes (mount_setattr with AT_RECURSIVE)
	data                   []string  // filesystem-specific options
	bind                   bool
	recursive              bool
}

var mountFlagTable = map[string]struct {
	clear bool
	flag  uintptr
}{
	"async":         {true, unix.MS_SYNCHRONOUS},
	"atime":         {true, unix.MS_NOATIME},
	"defaults":      {false, 0},
	"dev":           {true, unix.MS_NODEV},
	"diratime":      {true, unix.MS_NODIRATIME},
	"dirsync":       {false, unix.MS_DIRSYNC},
	"exec":          {true, unix.MS_NOEXEC},
	"iversion":      {false, unix.MS_I_VERSION},
	"lazytime":      {false, unix.MS_LAZYTIME},
	"loud":          {true, unix.MS_SILENT},
	"mand":          {false, unix.MS_MANDLOCK},
	"noatime":       {false, unix.MS_NOATIME},
	"nodev":         {false, unix.MS_NODEV},
	"nodiratime":    {false, unix.MS_NODIRATIME},
	"noexec":        {false, unix.MS_NOEXEC},
	"noiversion":    {true, unix.MS_I_VERSION},
	"nolazytime":    {true, unix.MS_LAZYTIME},
	"nomand":        {true, unix.MS_MANDLOCK},
	"norelatime":    {true, unix.MS_RELATIME},
	"nostrictatime": {true, unix.MS_STRICTATIME},
	"nosuid":        {false, unix.MS_NOSUID},
	"relatime":      {false, unix.MS_RELATIME},
	"remount":       {false, unix.MS_REMOUNT},
	"ro":            {false, unix.MS_RDONLY},
	"rw":            {true, unix.MS_RDONLY},
	"silent":        {false, unix.MS_SILENT},
	"strictatime":   {false, unix.MS_STRICTATIME},
	"suid":          {true, unix.MS_NOSUID},
	"sync":          {false, unix.MS_SYNCHRONOUS},
}

var propagationTable = map[string]uintptr{
	"private":     unix.MS_PRIVATE,
	"rprivate":    unix.MS_PRIVATE | unix.MS_REC,
	"shared":      unix.MS_SHARED,
	"rshared":     unix.MS_SHARED | unix.MS_REC,
	"slave":       unix.MS_SLAVE,
	"rslave":      unix.MS_SLAVE | unix.MS_REC,
	"unbindable":  unix.MS_UNBINDABLE,
	"runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

var recAttrTable = map[string]struct {
	clear bool
	attr  uint64
}{
	"rro":          {false, unix.MOUNT_ATTR_RDONLY},
	"rrw":          {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid":      {false, unix.MOUNT_ATTR_NOSUID},
	"rsuid":        {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev":       {false, unix.MOUNT_ATTR_NODEV},
	"rdev":         {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec":      {false, unix.MOUNT_ATTR_NOEXEC},
	"rexec":        {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime":  {false, unix.MOUNT_ATTR_NODIRATIME},
	"rdiratime":    {true, unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime":    {false, unix.MOUNT_ATTR_RELATIME},
	"rnoatime":     {false, unix.MOUNT_ATTR_NOATIME},
	"rstrictatime": {false, unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW},
	"rsymfollow":   {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

// parseMountOptions splits OCI mount options into flags, propagation and
// filesystem data. Unknown options are passed to the filesystem as data,
// as mount(8) does; "idmap"/"ridmap" are refused since id-mapped mounts are
// not implemented.
func parseMountOptions(options []string) (mountOpts, error) {
	var o mountOpts
	for _, opt := range options {
		switch opt {
		case "bind":
			o.bind = true
			continue
		case "rbind":
			o.bind, o.recursive = true, true
			continue
		case "idmap", "ridmap":
			return o, fmt.Errorf("mount option %q (id-mapped mounts) is not supported", opt)
		case "tmpcopyup":
			// Only meaningful with a tmpfs over existing content; berth copies
			// nothing up and says so rather than silently pretending.
			return o, fmt.Errorf("mount option %q is not supported", opt)
		}
		if f, ok := mountFlagTable[opt]; ok {
			if f.clear {
				o.flags &^= f.flag
				o.clear |= f.flag
			} else {
				o.flags |= f.flag
				o.clear &^= f.flag
			}
			continue
		}
		if p, ok := propagationTable[opt]; ok {
			o.propagate = append(o.propagate, p)
			continue
		}
		if a, ok := recAttrTable[opt]; ok {
			if a.clear {
				o.recAttrClr |= a.attr
			} else {
				o.recAttrSet |= a.attr
			}
			continue
		}
		o.data = append(o.data, opt)
	}
	return o, nil
}

func (o mountOpts) dataString() string { return strings.Join(o.data, ",") }

// parsePropagation maps linux.rootfsPropagation to mount flags.
func parsePropagation(s string) (uintptr, error) {
	if s == "" {
		return unix.MS_SLAVE | unix.MS_REC, nil
	}
	if p, ok := propagationTable[s]; ok {
		return p, nil
	}
	return 0, fmt.Errorf("invalid rootfsPropagation %q", s)
}

// statfsToMountFlags converts statfs f_flags into the mount flags that must
// be repeated on a bind remount (the kernel refuses to clear locked ones).
func statfsToMountFlags(f int64) uintptr {
	var flags uintptr
	for st, ms := range map[int64]uintptr{
		unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV,
		unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME,
		unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if f&st != 0 {
			flags |= ms
		}
	}
	return flags
}

// KnownMountOptions lists the mount options the runtime understands, for
// the features document.
func KnownMountOptions() []string {
	var out []string
	for k := range mountFlagTable {
		out = append(out, k)
	}
	for k := range propagationTable {
		out = append(out, k)
	}
	for k := range recAttrTable {
		out = append(out, k)
	}
	out = append(out, "bind", "rbind")
	sort.Strings(out)
	return out
}
