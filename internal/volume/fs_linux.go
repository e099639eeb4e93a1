package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The local driver's options, as Docker's: type, device and o are passed
// to mount(2) (o parsed into flags and data); size needs project quotas,
// which berth does not implement.
var validOpts = map[string]bool{"type": true, "device": true, "o": true, "size": true}

// mandatoryOpts: an option and the others it needs (Docker's table).
var mandatoryOpts = map[string][]string{"device": {"type"}, "type": {"device"}, "o": {"device", "type"}}

func validateOptions(opts map[string]string) error {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !validOpts[k] {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid option: %q", k)
		}
	}
	if _, ok := opts["size"]; ok {
		return errdefs.Newf(errdefs.InvalidArgument, "quota size requested but no quota support")
	}
	for _, k := range keys {
		for _, req := range mandatoryOpts[k] {
			if _, ok := opts[req]; !ok {
				return errdefs.Newf(errdefs.InvalidArgument, "missing required option: %q", req)
			}
		}
	}
	if len(opts) > 0 {
		flags, _ := parseMountOpts(opts["o"])
		if flags&unix.MS_BIND != 0 && !filepath.IsAbs(opts["device"]) {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid option: bind device %q must be an absolute path", opts["device"])
		}
	}
	return nil
}

// needsMount reports whether the volume is a mount of its own (type and
// device given) rather than a plain directory.
func needsMount(opts map[string]string) bool { return opts["type"] != "" || opts["device"] != "" }

var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"defaults": {false, 0},
}

// parseMountOpts splits an "o" option into mount flags and the data
// string the filesystem gets.
func parseMountOpts(o string) (uintptr, string) {
	var flags uintptr
	var data []string
	for _, opt := range strings.Split(o, ",") {
		if opt == "" {
			continue
		}
		if f, ok := mountFlags[opt]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, opt)
	}
	return flags, strings.Join(data, ",")
}

func mountDevice(opts map[string]string, target string) error {
	flags, data := parseMountOpts(opts["o"])
	typ := opts["type"]
	if flags&unix.MS_BIND != 0 {
		typ = ""
	}
	if err := unix.Mount(opts["device"], target, typ, flags, data); err != nil {
		return fmt.Errorf("failed to mount local volume: mount %s:%s, flags: %#x, data: %s: %w", opts["device"], target, flags, data, err)
	}
	// A bind with ro needs a remount to take effect.
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
			_ = unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("failed to mount local volume: remount read-only: %w", err)
		}
	}
	return nil
}

func unmount(target string) error {
	if err := unix.Unmount(target, 0); err != nil {
		if err == unix.EINVAL || err == unix.ENOENT {
			return nil
		}
		if err2 := unix.Unmount(target, unix.MNT_DETACH); err2 != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return nil
}

func isMountPoint(p string) bool {
	ok, err := mountinfo.Mounted(p)
	return err == nil && ok
}

// mountsUnder lists the mount points at or under dir, deepest last.
func mountsUnder(dir string) []string {
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(infos))
	for _, m := range infos {
		out = append(out, m.Mountpoint)
	}
	sort.Strings(out)
	return out
}

// removeDir deletes a volume directory, never through a mount: whatever is
// mounted under it is unmounted first, and if something stays mounted
// nothing is deleted.
func removeDir(dir string) error {
	return removeDirs([]string{dir})
}

// removeDirs is removeDir for several directories with one read of the
// mount table (two when something had to be unmounted).
func removeDirs(dirs []string) error {
	under := func(ms []string, dir string) []string {
		var out []string
		for _, m := range ms {
			if m == dir || strings.HasPrefix(m, dir+"/") {
				out = append(out, m)
			}
		}
		return out
	}
	all := mountsUnder(commonParent(dirs))
	errs := make([]error, len(dirs))
	var wg sync.WaitGroup
	for i, dir := range dirs {
		if ms := under(all, dir); len(ms) > 0 {
			for i := len(ms) - 1; i >= 0; i-- {
				_ = unix.Unmount(ms[i], unix.MNT_DETACH)
			}
			if left := mountsUnder(dir); len(left) > 0 {
				errs[i] = fmt.Errorf("%s still has mounts under it (%s): not removing it", dir, strings.Join(left, ", "))
				continue
			}
		}
		// Concurrently: unlink latency dominates on a busy disk.
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = os.RemoveAll(dir)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func commonParent(dirs []string) string {
	p := dirs[0]
	for _, d := range dirs[1:] {
		for p != "/" && d != p && !strings.HasPrefix(d, p+"/") {
			p = filepath.Dir(p)
		}
	}
	return p
}

// dirSize is the size of the files under dir (hard links once), without
// following symlinks or crossing into other mounts.
func dirSize(dir string) (int64, error) {
	var root unix.Stat_t
	if err := unix.Lstat(dir, &root); err != nil {
		return 0, err
	}
	seen := map[uint64]bool{}
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if uint64(st.Dev) != root.Dev {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		size += info.Size()
		return nil
	})
	return size, err
}
