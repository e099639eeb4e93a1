package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mountFlags maps mount(8) flag options to MS_* bits; clear means the
// option removes the bit.
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "sync": {false, unix.MS_SYNCHRONOUS},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
}

func parseOptions(opts []string) (uintptr, []string) {
	var flags uintptr
	var data []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		data = append(data, o)
	}
	return flags, data
}

// MountAll performs mounts on target, in order (later ones stack on
// earlier ones). Overlay mounts whose options exceed what mount(2) takes
// (one page: images with many layers) are made with the new mount API,
// adding lower directories one at a time (Linux 6.8+), or on older kernels
// with paths relative to their common parent directory.
func MountAll(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := mountOne(m, target); err != nil {
			// Leave nothing half-done behind.
			for range i {
				unix.Unmount(target, unix.MNT_DETACH)
			}
			return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
		}
	}
	return nil
}

func mountOne(m Mount, target string) error {
	flags, data := parseOptions(m.Options)
	if flags&unix.MS_BIND != 0 || m.Type == "bind" {
		flags |= unix.MS_BIND
		if err := unix.Mount(m.Source, target, "", flags&^unix.MS_RDONLY, ""); err != nil {
			return err
		}
		// Bind mounts take their flags only on a remount.
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); rest != 0 {
			if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|rest, ""); err != nil {
				unix.Unmount(target, unix.MNT_DETACH)
				return err
			}
		}
		return nil
	}
	if m.Type == "overlay" {
		return mountOverlay(m.Source, target, flags, data)
	}
	return unix.Mount(m.Source, target, m.Type, flags, strings.Join(data, ","))
}

// errNoLowerdirAppend means the kernel's overlay lacks "lowerdir+".
var errNoLowerdirAppend = errors.New("overlay does not support lowerdir+")

func mountOverlay(source, target string, flags uintptr, data []string) error {
	joined := strings.Join(data, ",")
	if len(joined) < os.Getpagesize() {
		return unix.Mount(source, target, "overlay", flags, joined)
	}
	err := mountOverlayFsconfig(source, target, flags, data)
	if errors.Is(err, errNoLowerdirAppend) {
		return mountOverlayRelative(source, target, flags, data)
	}
	return err
}

// mountOverlayFsconfig mounts with fsopen/fsconfig/fsmount/move_mount,
// passing each lower directory as its own "lowerdir+" parameter.
func mountOverlayFsconfig(source, target string, flags uintptr, data []string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if err == unix.ENOSYS || err == unix.EPERM {
			return errNoLowerdirAppend
		}
		return fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.FsconfigSetString(fd, "source", source); err != nil {
		return fsError(fd, "source", err)
	}
	first := true
	for _, o := range data {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case k == "lowerdir":
			for _, l := range strings.Split(v, ":") {
				if err := unix.FsconfigSetString(fd, "lowerdir+", l); err != nil {
					if first && err == unix.EINVAL {
						return errNoLowerdirAppend
					}
					return fsError(fd, "lowerdir+="+l, err)
				}
				first = false
			}
		case hasValue:
			if err := unix.FsconfigSetString(fd, k, v); err != nil {
				return fsError(fd, o, err)
			}
		default:
			if err := unix.FsconfigSetFlag(fd, k); err != nil {
				return fsError(fd, o, err)
			}
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fsError(fd, "create", err)
	}
	var attrs int
	for _, f := range []struct {
		ms   uintptr
		attr int
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV}, {unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME}, {unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
	} {
		if flags&f.ms != 0 {
			attrs |= f.attr
		}
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fsError(fd, "fsmount", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// fsError adds the kernel's messages from the filesystem context log.
func fsError(fd int, what string, err error) error {
	var msgs []string
	buf := make([]byte, 1024)
	for range 16 {
		n, rerr := unix.Read(fd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, string(buf[:n]))
	}
	if len(msgs) > 0 {
		return fmt.Errorf("fsconfig %s: %w (%s)", what, err, strings.Join(msgs, "; "))
	}
	return fmt.Errorf("fsconfig %s: %w", what, err)
}

// mountOverlayRelative is the fallback for kernels without "lowerdir+":
// it shortens every directory option to a path relative to their common
// parent (short here: snapshot ids are small numbers) and mounts from a
// thread whose working directory is that parent. The thread unshares its
// filesystem context first, so the rest of the process keeps its working
// directory, and is discarded afterwards.
func mountOverlayRelative(source, target string, flags uintptr, data []string) error {
	target, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	var dirs []string
	for _, o := range data {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			dirs = append(dirs, strings.Split(v, ":")...)
		case "upperdir", "workdir":
			dirs = append(dirs, v)
		}
	}
	base := commonDir(dirs)
	if base == "" || base == "/" {
		return fmt.Errorf("overlay options too long (%d layers) and no common parent directory", len(dirs))
	}
	rel := func(p string) string {
		r, err := filepath.Rel(base, p)
		if err != nil {
			return p
		}
		return r
	}
	short := make([]string, len(data))
	for i, o := range data {
		k, v, _ := strings.Cut(o, "=")
		switch k {
		case "lowerdir":
			parts := strings.Split(v, ":")
			for j := range parts {
				parts[j] = rel(parts[j])
			}
			short[i] = k + "=" + strings.Join(parts, ":")
		case "upperdir", "workdir":
			short[i] = k + "=" + rel(v)
		default:
			short[i] = o
		}
	}
	joined := strings.Join(short, ",")
	if len(joined) >= os.Getpagesize() {
		return fmt.Errorf("overlay options too long even relative to %s (%d bytes)", base, len(joined))
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread exits with this goroutine, taking its
		// private working directory with it.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_FS): %w", err)
			return
		}
		if err := unix.Chdir(base); err != nil {
			errc <- err
			return
		}
		errc <- unix.Mount(source, target, "overlay", flags, joined)
	}()
	return <-errc
}

// commonDir is the deepest directory containing every path.
func commonDir(paths []string) string {
	if len(paths) == 0 {
		return ""
	}
	common := filepath.Dir(filepath.Clean(paths[0]))
	for _, p := range paths[1:] {
		p = filepath.Clean(p)
		for common != "/" && !strings.HasPrefix(p, common+"/") {
			common = filepath.Dir(common)
		}
	}
	return common
}

// Unmount unmounts everything stacked on target. A target that is not a
// mount point (or does not exist) is not an error. Busy mounts are retried
// for a short while.
func Unmount(target string) error {
	deadline := time.Now().Add(time.Second)
	for {
		err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		switch {
		case err == nil:
			continue // something may be stacked below
		case err == unix.EINVAL || err == unix.ENOENT:
			return nil
		case err == unix.EBUSY && time.Now().Before(deadline):
			time.Sleep(10 * time.Millisecond)
			continue
		}
		return fmt.Errorf("unmount %s: %w", target, err)
	}
}
