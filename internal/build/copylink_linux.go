package build

import (
	"bytes"
	"errors"
	"io"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A COPY from the context that misses the cache usually follows an
// earlier result of the same step (same parent, same instruction, other
// content: one source file edited). Creating every file again costs an
// inode each, which on an ext4 that recently freed many inodes is most of
// the step (docs/benchmarks.md). linker reuses, by hard link, each file
// of that earlier layer that is exactly what the copy would write: same
// content (compared byte for byte), size, mode, owner and mtime. Layers
// are immutable and overlay copies a file up before any change, so a
// shared inode is never written through; the layer's tar is the same
// bytes either way (the diff walk only turns into tar links the paths of
// one walk that share an inode).
//
// Links go into the step's upper directory while the overlay is mounted,
// for names the overlay has never looked up (they exist neither in the
// upper nor in a lower layer) in directories already in the upper (the
// copy made or copied them up through the mount): the overlay holds no
// state about them, and the unmount's syncfs makes them durable with the
// rest. Every path is resolved beneath its root without following
// symlinks (openat2); anything unexpected falls back to writing the file.
type linker struct {
	rootfs string // the overlay mount point
	prev   int    // the earlier layer's directory
	upper  int    // this step's upper directory
	lowers []int  // the layers below this step
	dirs   map[string]int
	linked int
}

const resolveBeneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// maxSharedLinks bounds how many layers may share one inode (ext4 allows
// 65,000 links).
const maxSharedLinks = 1000

func openat2(dirfd int, p string, flags uint64) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, p, &unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolveBeneath})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

// maxLinkLowers bounds the layers below the step: each is looked at for
// every file, which beyond that costs more than writing the file.
const maxLinkLowers = 16

// openLinker opens the directories; nil (no linking) on any error.
func openLinker(rootfs, prev, upper string, lowers []string) *linker {
	if len(lowers) > maxLinkLowers {
		return nil
	}
	l := &linker{rootfs: rootfs, prev: -1, upper: -1, dirs: map[string]int{}}
	var err error
	if l.prev, err = unix.Open(prev, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		l.prev = -1
		l.close()
		return nil
	}
	if l.upper, err = unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		l.upper = -1
		l.close()
		return nil
	}
	for _, lo := range lowers {
		fd, err := unix.Open(lo, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			l.close()
			return nil
		}
		l.lowers = append(l.lowers, fd)
	}
	return l
}

func (l *linker) close() {
	for _, fd := range append(append([]int{l.prev, l.upper}, l.lowers...), mapValues(l.dirs)...) {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	l.dirs = nil
}

func mapValues(m map[string]int) []int {
	out := make([]int, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// absent reports whether rel exists in none of fds' trees (a path that
// cannot be resolved plainly counts as present).
func absent(fds []int, rel string) bool {
	for _, fd := range fds {
		f, err := openat2(fd, rel, unix.O_PATH|unix.O_NOFOLLOW)
		if err == nil {
			unix.Close(f)
			return false
		}
		if err != unix.ENOENT && err != unix.ENOTDIR {
			return false
		}
	}
	return true
}

// try links the file f would be copied to (host path h in the mount,
// with mode, owner and f's mtime) from the earlier layer, and reports
// whether it did.
func (l *linker) try(fsys srcFS, f source, h string, mode uint32, uid, gid int) bool {
	rel, ok := strings.CutPrefix(h, l.rootfs+"/")
	if !ok || rel == "" {
		return false
	}
	if !absent(append([]int{l.upper}, l.lowers...), rel) {
		return false
	}
	pfd, err := openat2(l.prev, rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return false
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if unix.Fstat(pfd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink >= maxSharedLinks ||
		st.Size != f.info.Size() || st.Mode&0o7777 != mode || int(st.Uid) != uid || int(st.Gid) != gid ||
		st.Mtim.Nano() != copiedMtime(f.info.ModTime()) {
		return false
	}
	if !l.sameContent(fsys, f.path, pfd, st.Size) {
		return false
	}
	dir := path.Dir(rel)
	dfd, ok := l.dirs[dir]
	if !ok {
		if dfd, err = openat2(l.upper, dir, unix.O_PATH|unix.O_DIRECTORY); err != nil {
			return false
		}
		l.dirs[dir] = dfd
	}
	if unix.Linkat(pfd, "", dfd, path.Base(rel), unix.AT_EMPTY_PATH) != nil {
		return false
	}
	l.linked++
	return true
}

// copiedMtime is the mtime copyTo gives a copy of a file with mtime t
// (futimes: microseconds, rounded up).
func copiedMtime(t time.Time) int64 {
	tv := unix.NsecToTimeval(t.UnixNano())
	return unix.TimevalToNsec(tv)
}

// sameContent compares the source file with the open earlier file.
func (l *linker) sameContent(fsys srcFS, p string, pfd int, size int64) bool {
	in, err := fsys.Open(p)
	if err != nil {
		return false
	}
	defer in.Close()
	const chunk = 64 << 10
	a := make([]byte, min(size, chunk)+1)
	b := make([]byte, len(a))
	var off int64
	for {
		n, errA := io.ReadFull(in, a)
		m, errB := unix.Pread(pfd, b[:len(a)], off)
		if errB != nil && !errors.Is(errB, io.EOF) {
			return false
		}
		if n != m || !bytes.Equal(a[:n], b[:m]) {
			return false
		}
		off += int64(m)
		if errA == io.EOF || errA == io.ErrUnexpectedEOF {
			return off == size
		}
		if errA != nil {
			return false
		}
	}
}
