package archive

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Every path of a layer is resolved by the kernel relative to the layer
// root: with RESOLVE_IN_ROOT, ".." and absolute symlinks stop at the root,
// exactly as they would inside the container (and as Docker's chrooted
// unpacker sees them), so no symlink in the layer can lead a write out of
// it. Magic links (/proc/self/root...) and mount crossings are refused.
const (
	resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV
	// resolveNoSymlinks is used for device nodes: their parents must be
	// real directories, not reached through any symlink.
	resolveNoSymlinks = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_XDEV
)

const (
	maxPath = 4096 // PATH_MAX
	maxName = 255  // NAME_MAX
)

// cleanName turns a tar entry name into a clean path relative to the layer
// root. Absolute names are made relative (as Docker does); a name that
// climbs out of the root with "..", contains NUL, or is too long is refused
// with the reason, which the caller wraps with the entry's name.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", errors.New("name contains a NUL byte")
	}
	if len(name) >= maxPath {
		return "", fmt.Errorf("name longer than %d bytes", maxPath-1)
	}
	p := path.Clean(name)
	if path.IsAbs(p) {
		p = strings.TrimLeft(p, "/")
		if p == "" {
			p = "."
		}
	}
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", errors.New("path escapes the layer root")
	}
	for c := range strings.SplitSeq(p, "/") {
		if len(c) > maxName {
			return "", fmt.Errorf("path component longer than %d bytes", maxName)
		}
	}
	return p, nil
}

// openRoot opens dir as the resolution root.
func openRoot(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// openat2 retries the EAGAIN that RESOLVE_IN_ROOT reports when a rename
// raced with the lookup.
func openat2(dirfd int, p string, flags uint64, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve}
	for range 64 {
		fd, err := unix.Openat2(dirfd, p, &how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// openDirIn opens the directory rel (clean, relative) under rootfd as an
// O_PATH descriptor.
func openDirIn(rootfd int, rel string, resolve uint64) (int, error) {
	return openat2(rootfd, rel, unix.O_PATH|unix.O_DIRECTORY, resolve)
}

// splitName splits a clean relative path into its parent and last element.
func splitName(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return ".", p
	}
	return p[:i], p[i+1:]
}

// procPath names an entry of an open directory through /proc, for the few
// calls (l*xattr on symlinks and devices) that have no *at form.
func procPath(dirfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + base
}

// lstatAt stats base in dirfd without following a symlink.
func lstatAt(dirfd int, base string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// removeAllAt removes base in dirfd and, for a directory, its content,
// never following symlinks.
func removeAllAt(dirfd int, base string) error {
	err := unix.Unlinkat(dirfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return err
	}
	fd, err := unix.Openat(dirfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	// Never descend into another mount (a running container's /proc,
	// /sys or volumes, reached by a copy): removing a mount point fails
	// anyway, and what is mounted there is not part of the tree.
	if other, err := otherMount(dirfd, fd); err != nil || other {
		unix.Close(fd)
		if err == nil {
			err = unix.EBUSY
		}
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	for {
		names, rerr := f.Readdirnames(1024)
		for _, n := range names {
			if err := removeAllAt(fd, n); err != nil {
				f.Close()
				return err
			}
		}
		if rerr != nil {
			break
		}
	}
	f.Close()
	err = unix.Unlinkat(dirfd, base, unix.AT_REMOVEDIR)
	if err == unix.ENOENT {
		return nil
	}
	return err
}

// listXattrs returns the names of the xattrs of an open file, or of
// path without following it when fd < 0.
func listXattrs(fd int, p string) ([]string, error) {
	size := 256
	for {
		buf := make([]byte, size)
		var n int
		var err error
		if fd >= 0 {
			n, err = unix.Flistxattr(fd, buf)
		} else {
			n, err = unix.Llistxattr(p, buf)
		}
		if err == unix.ERANGE {
			size *= 4
			continue
		}
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for s := range strings.SplitSeq(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

// getXattr reads one xattr of an open file (fd >= 0) or path (no follow).
func getXattr(fd int, p, key string) ([]byte, error) {
	size := 256
	for {
		buf := make([]byte, size)
		var n int
		var err error
		if fd >= 0 {
			n, err = unix.Fgetxattr(fd, key, buf)
		} else {
			n, err = unix.Lgetxattr(p, key, buf)
		}
		if err == unix.ERANGE {
			if size >= 1<<20 {
				return nil, fmt.Errorf("xattr %s too large", key)
			}
			size *= 4
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// xattrRefused reports errors meaning "this filesystem or context does not
// take this attribute", which Apply records and skips.
func xattrRefused(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOTSUP) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL)
}

// otherMount reports whether the open files a and b are on different
// mounts.
func otherMount(a, b int) (bool, error) {
	var sa, sb unix.Statx_t
	if err := unix.Statx(a, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &sa); err != nil {
		return false, err
	}
	if err := unix.Statx(b, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &sb); err != nil {
		return false, err
	}
	return sa.Mnt_id != sb.Mnt_id, nil
}
