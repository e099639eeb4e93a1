package volume

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// CopyStats says what a copy-up copied.
type CopyStats struct {
	Files int64 // entries created (files, directories, links, nodes)
	Bytes int64 // bytes of regular file content
}

// CopyUp copies the content of the directory at containerPath inside the
// container root rootfs into the volume data directory dataDir, if dataDir
// is empty (Docker's copy-up on the first mount of an empty volume).
// Ownership, permissions, timestamps, extended attributes, symlinks, hard
// links, device nodes and fifos are preserved; sockets are skipped. The
// mount point's own owner, mode and attributes are given to dataDir.
//
// containerPath is resolved inside rootfs (openat2 RESOLVE_IN_ROOT), so a
// symlink in the image resolves to a path in the container, never on the
// host; everything is created relative to directory descriptors with
// O_NOFOLLOW, so a symlink planted in the volume cannot redirect a write.
// A missing or non-directory containerPath copies nothing.
func CopyUp(rootfs, containerPath, dataDir string) (CopyStats, error) {
	var st CopyStats
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, &os.PathError{Op: "open", Path: rootfs, Err: err}
	}
	defer unix.Close(root)
	src, err := openat2(root, containerPath, unix.O_RDONLY|unix.O_DIRECTORY, unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return st, nil
		}
		return st, fmt.Errorf("copy-up: open %s in the container: %w", containerPath, err)
	}
	defer unix.Close(src)
	dst, err := unix.Open(dataDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return st, &os.PathError{Op: "open", Path: dataDir, Err: err}
	}
	defer unix.Close(dst)
	empty, err := isEmptyDir(dst)
	if err != nil || !empty {
		return st, err
	}
	c := &copier{links: map[devIno]string{}, stats: &st, sem: make(chan struct{}, copyWorkers)}
	if err := c.dir(src, dst, "."); err != nil {
		return st, fmt.Errorf("copy-up of %s: %w", containerPath, err)
	}
	var sst unix.Stat_t
	if err := unix.Fstat(src, &sst); err != nil {
		return st, err
	}
	if err := c.attrsFd(src, dst, &sst); err != nil {
		return st, fmt.Errorf("copy-up of %s: %w", containerPath, err)
	}
	return st, unix.UtimesNanoAt(dst, ".", times(&sst), 0)
}

func openat2(dirfd int, p string, flags int, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve}
	for {
		fd, err := unix.Openat2(dirfd, p, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

func isEmptyDir(fd int) (bool, error) {
	buf := make([]byte, 4096)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return false, err
		}
		if n == 0 {
			return true, nil
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			if name != "." && name != ".." {
				return false, nil
			}
		}
	}
}

func readNames(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

type devIno struct{ dev, ino uint64 }

// copyWorkers bounds the regular files of one directory copied at once:
// on a busy disk each file's create and close wait on the journal, and
// several in flight overlap those waits.
const copyWorkers = 8

type copier struct {
	links map[devIno]string // first copy of a hard-linked inode, relative to the volume root
	stats *CopyStats        // updated atomically
	sem   chan struct{}
	root  int // the volume root, for hard links
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

func (c *copier) addFiles(n int64) { atomic.AddInt64(&c.stats.Files, n) }
func (c *copier) addBytes(n int64) { atomic.AddInt64(&c.stats.Bytes, n) }

func times(st *unix.Stat_t) []unix.Timespec {
	return []unix.Timespec{st.Atim, st.Mtim}
}

// dir copies the entries of directory src into directory dst; rel is
// dst's path relative to the volume root.
func (c *copier) dir(src, dst int, rel string) error {
	if rel == "." {
		c.root = dst
	}
	names, err := readNames(src)
	if err != nil {
		return err
	}
	// Regular files without other links are copied concurrently; the
	// directory's descriptors stay open until they are all done.
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(src, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			fail(err)
			break
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 1 {
			c.sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-c.sem; wg.Done() }()
				if err := c.file(src, dst, name, &st); err != nil {
					fail(fmt.Errorf("%s: %w", path.Join(rel, name), err))
				}
			}()
			continue
		}
		if err := c.entry(src, dst, name, path.Join(rel, name), &st); err != nil {
			fail(fmt.Errorf("%s: %w", path.Join(rel, name), err))
			break
		}
	}
	wg.Wait()
	return firstErr
}

// file copies one regular file.
func (c *copier) file(src, dst int, name string, st *unix.Stat_t) error {
	s, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(s)
	d, err := unix.Openat(dst, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer unix.Close(d)
	c.addFiles(1)
	if st.Size > 0 {
		if err := c.data(s, d, st.Size); err != nil {
			return err
		}
	}
	if err := c.attrsFd(s, d, st); err != nil {
		return err
	}
	return unix.UtimesNanoAt(dst, name, times(st), unix.AT_SYMLINK_NOFOLLOW)
}

func (c *copier) entry(src, dst int, name, rel string, st *unix.Stat_t) error {
	mode := st.Mode & unix.S_IFMT
	if mode != unix.S_IFDIR && st.Nlink > 1 {
		k := devIno{st.Dev, st.Ino}
		if first, ok := c.links[k]; ok {
			return c.link(first, dst, name)
		}
		c.links[k] = rel
	}
	switch mode {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dst, name, 0o700); err != nil {
			return err
		}
		c.addFiles(1)
		s, err := unix.Openat(src, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(s)
		d, err := unix.Openat(dst, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(d)
		if err := c.dir(s, d, rel); err != nil {
			return err
		}
		if err := c.attrsFd(s, d, st); err != nil {
			return err
		}
		return unix.UtimesNanoAt(dst, name, times(st), unix.AT_SYMLINK_NOFOLLOW)
	case unix.S_IFREG:
		return c.file(src, dst, name, st)
	case unix.S_IFLNK:
		target, err := readlinkat(src, name)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dst, name); err != nil {
			return err
		}
		c.addFiles(1)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(dst, name, st.Mode&^0o7777|0o600, int(st.Rdev)); err != nil {
			return err
		}
		c.addFiles(1)
	default: // sockets: meaningless outside their process
		return nil
	}
	// Symlinks and nodes: attributes by path, never following.
	if err := unix.Fchownat(dst, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if mode != unix.S_IFLNK {
		if err := unix.Fchmodat(dst, name, st.Mode&0o7777, 0); err != nil {
			return err
		}
	}
	if err := copyXattrsPath(procPath(src, name), procPath(dst, name)); err != nil {
		return err
	}
	return unix.UtimesNanoAt(dst, name, times(st), unix.AT_SYMLINK_NOFOLLOW)
}

func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

func (c *copier) link(first string, dst int, name string) error {
	dir, base := path.Split(first)
	parent := c.root
	if dir != "" {
		fd, err := openat2(c.root, dir, unix.O_PATH|unix.O_DIRECTORY, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		parent = fd
	}
	if err := unix.Linkat(parent, base, dst, name, 0); err != nil {
		return err
	}
	c.addFiles(1)
	return nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, b)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// data copies n bytes from s to d in the kernel (copy_file_range), falling
// back to read/write across filesystems that cannot.
func (c *copier) data(s, d int, n int64) error {
	var done int64
	for done < n {
		w, err := unix.CopyFileRange(s, nil, d, nil, int(min(n-done, 1<<30)), 0)
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EOPNOTSUPP) {
				return c.readWrite(s, d)
			}
			return err
		}
		if w == 0 {
			break
		}
		done += int64(w)
	}
	c.addBytes(done)
	return nil
}

func (c *copier) readWrite(s, d int) error {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	for {
		n, err := unix.Read(s, buf)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return err
		}
		if n == 0 {
			return nil
		}
		for off := 0; off < n; {
			w, err := unix.Write(d, buf[off:n])
			if err != nil {
				return err
			}
			off += w
		}
		c.addBytes(int64(n))
	}
}

// attrsFd gives d (an open file or directory) s's owner, mode and
// extended attributes: chown first, since it clears set-id bits and file
// capabilities.
func (c *copier) attrsFd(s, d int, st *unix.Stat_t) error {
	if err := unix.Fchown(d, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Fchmod(d, st.Mode&0o7777); err != nil {
		return err
	}
	names, err := listXattrs(func(b []byte) (int, error) { return unix.Flistxattr(s, b) })
	if err != nil || len(names) == 0 {
		return err
	}
	for _, n := range names {
		v, err := getXattr(func(b []byte) (int, error) { return unix.Fgetxattr(s, n, b) })
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return err
		}
		if err := unix.Fsetxattr(d, n, v, 0); err != nil && !ignorableXattrErr(n, err) {
			return fmt.Errorf("set xattr %s: %w", n, err)
		}
	}
	return nil
}

func copyXattrsPath(src, dst string) error {
	names, err := listXattrs(func(b []byte) (int, error) { return unix.Llistxattr(src, b) })
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			return nil
		}
		return err
	}
	for _, n := range names {
		v, err := getXattr(func(b []byte) (int, error) { return unix.Lgetxattr(src, n, b) })
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, n, v, 0); err != nil && !ignorableXattrErr(n, err) {
			return fmt.Errorf("set xattr %s: %w", n, err)
		}
	}
	return nil
}

// ignorableXattrErr: attributes the destination filesystem cannot hold
// (overlay's own trusted.overlay.*, user.* on symlinks) are skipped.
func ignorableXattrErr(name string, err error) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || errors.Is(err, unix.ENOTSUP) || (strings.HasPrefix(name, "user.") && errors.Is(err, unix.EPERM))
}

func listXattrs(list func([]byte) (int, error)) ([]string, error) {
	n, err := list(nil)
	if err != nil || n == 0 {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	b := make([]byte, n)
	n, err = list(b)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range strings.Split(string(b[:n]), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func getXattr(get func([]byte) (int, error)) ([]byte, error) {
	n, err := get(nil)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	n, err = get(b)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

// ValidateSubpath applies Docker's rule to a volume subpath: relative,
// and never leaving the volume.
func ValidateSubpath(sub string) error {
	if sub == "" {
		return nil
	}
	if filepath.IsAbs(sub) {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid mount config for type \"volume\": subpath must be a relative path within the volume")
	}
	for _, p := range strings.Split(filepath.ToSlash(sub), "/") {
		if p == ".." {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid mount config for type \"volume\": subpath must be a relative path within the volume")
		}
	}
	return nil
}

// BindSubpath bind-mounts the path sub inside the volume directory
// dataDir onto stage (created as a file or directory to match), with no
// window for a container to swap a component for a symlink: sub is
// opened beneath dataDir with every symlink refused and the mount is made
// from the open descriptor. The caller unmounts stage when done.
func BindSubpath(dataDir, sub, stage string) error {
	if err := ValidateSubpath(sub); err != nil {
		return err
	}
	root, err := unix.Open(dataDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: dataDir, Err: err}
	}
	defer unix.Close(root)
	fd, err := openat2(root, sub, unix.O_PATH, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS|unix.RESOLVE_NO_XDEV)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT):
			return errdefs.Newf(errdefs.InvalidArgument, "cannot access path %s: volume subpath does not exist", sub)
		case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
			return errdefs.Newf(errdefs.InvalidArgument, "volume subpath %s: symlinks and other mounts are not allowed in a subpath", sub)
		}
		return fmt.Errorf("volume subpath %s: %w", sub, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(stage), 0o700); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = os.Mkdir(stage, 0o700)
	} else {
		var f *os.File
		f, err = os.OpenFile(stage, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
		}
	}
	if err != nil && !os.IsExist(err) {
		return err
	}
	if err := unix.Mount("/proc/self/fd/"+strconv.Itoa(fd), stage, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("volume subpath %s: bind: %w", sub, err)
	}
	return nil
}
