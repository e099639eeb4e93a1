package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Diff writes the layer tar of an overlay upper directory: what a container
// (or a build step) changed on top of lowers (lowers[0] is the topmost).
// Overlay whiteouts (character devices 0:0) become .wh.NAME entries and
// opaque directories get a DIR/.wh..wh..opq entry right after their own;
// everything else is written as it is, with owner, mode, mtime (whole
// seconds), xattrs (not trusted.overlay.*) and hardlinks within the upper
// as link entries. Entries are sorted by name within each directory, so
// the same upper always gives the same bytes: the returned diffID is
// reproducible. An upper that uses overlay features this format cannot
// express (redirect_dir, metacopy) is refused.
//
// The upper is read through file descriptors without following symlinks,
// so a running container cannot make Diff read host files; files changing
// during the walk may still give an inconsistent layer (pause first).
func Diff(ctx context.Context, lowers []string, upper string, w io.Writer) (digest.Digest, int64, error) {
	for _, l := range lowers {
		if fi, err := os.Stat(l); err != nil {
			return "", 0, fmt.Errorf("lower directory: %w", err)
		} else if !fi.IsDir() {
			return "", 0, errdefs.Newf(errdefs.InvalidArgument, "lower %s is not a directory", l)
		}
	}
	return writeTar(ctx, upper, w, true)
}

// Tar writes the whole tree at dir (an exported root filesystem, or a
// mounted container) as a tar stream, in the same deterministic form as
// Diff but without any whiteout conversion.
func Tar(ctx context.Context, dir string, w io.Writer) error {
	_, _, err := writeTar(ctx, dir, w, false)
	return err
}

func writeTar(ctx context.Context, dir string, w io.Writer, overlay bool) (digest.Digest, int64, error) {
	return writeTarSkipping(ctx, dir, w, overlay, nil)
}

func writeTarSkipping(ctx context.Context, dir string, w io.Writer, overlay bool, skip func(string, *unix.Stat_t) bool) (digest.Digest, int64, error) {
	return writeTarStats(ctx, dir, w, overlay, skip, nil)
}

// writeTarStats is writeTarSkipping that also fills stats (when not nil)
// from the stats the walk takes anyway.
func writeTarStats(ctx context.Context, dir string, w io.Writer, overlay bool, skip func(string, *unix.Stat_t) bool, stats *DiffStats) (digest.Digest, int64, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", 0, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	if stats != nil {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return "", 0, &os.PathError{Op: "stat", Path: dir, Err: err}
		}
		stats.seen = map[uint64]struct{}{}
		stats.count(&st)
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	hw := &hashWriter{w: bw, h: sha256.New()}
	wk := &walker{
		ctx:     ctx,
		tw:      tar.NewWriter(hw),
		overlay: overlay,
		links:   make(map[devIno]string),
		buf:     make([]byte, 256<<10),
		skip:    skip,
		stats:   stats,
	}
	if err := wk.walk(fd, ""); err != nil {
		return "", 0, err
	}
	if err := wk.tw.Close(); err != nil {
		return "", 0, err
	}
	if err := bw.Flush(); err != nil {
		return "", 0, err
	}
	return digest.NewDigest(digest.SHA256, hw.h), hw.n, nil
}

type hashWriter struct {
	w io.Writer
	h hash.Hash
	n int64
}

func (h *hashWriter) Write(p []byte) (int, error) {
	n, err := h.w.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

type devIno struct{ dev, ino uint64 }

type walker struct {
	ctx     context.Context
	tw      *tar.Writer
	overlay bool
	links   map[devIno]string
	buf     []byte
	// skipPseudo archives directories of kernel pseudo filesystems
	// (proc, sysfs, cgroup...) without their content.
	skipPseudo bool
	// skip, if set, leaves an entry (and what is below it) out.
	skip func(name string, st *unix.Stat_t) bool
	// stats, if set, gathers what DiffStats reports.
	stats *DiffStats
}

// walk writes the content of the directory open as dirfd (which it
// closes), whose name in the archive is rel ("" for the root).
func (wk *walker) walk(dirfd int, rel string) error {
	f := os.NewFile(uintptr(dirfd), rel)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("reading directory %q: %w", rel, err)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := wk.ctx.Err(); err != nil {
			return err
		}
		if err := wk.entry(dirfd, rel, name); err != nil {
			return err
		}
	}
	return nil
}

func (wk *walker) entry(dirfd int, rel, name string) error {
	full := name
	switch rel {
	case "":
	case "/":
		full = "/" + name // below a "/" top (TarAt of a container's root)
	default:
		// Not path.Join: a "." top (TarAt of "dir/.") keeps its "./"
		// prefix, which clients rebase on.
		full = rel + "/" + name
	}
	return wk.entryAs(dirfd, name, full)
}

// entryAs writes the entry name of dirfd (and its tree) as full.
func (wk *walker) entryAs(dirfd int, name, full string) error {
	st, err := lstatAt(dirfd, name)
	if err != nil {
		if err == unix.ENOENT {
			return nil // removed during the walk
		}
		return fmt.Errorf("stat %q: %w", full, err)
	}
	if wk.skip != nil && wk.skip(full, &st) {
		if wk.stats != nil {
			wk.stats.Skipped = true
		}
		return nil
	}
	if wk.stats != nil {
		wk.stats.count(&st)
	}
	hdr := &tar.Header{
		Name:    full,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
	}
	kind := st.Mode & unix.S_IFMT
	if wk.overlay && kind == unix.S_IFCHR && st.Rdev == 0 {
		hdr.Name = path.Join(path.Dir(full), whiteoutPrefix+name)
		hdr.Typeflag = tar.TypeReg
		hdr.Mode, hdr.Uid, hdr.Gid = 0, 0, 0
		return wk.write(hdr)
	}
	if kind != unix.S_IFDIR && st.Nlink > 1 {
		key := devIno{uint64(st.Dev), st.Ino}
		if first, ok := wk.links[key]; ok {
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeLink, first, 0
			return wk.write(hdr)
		}
		wk.links[key] = full
	}
	switch kind {
	case unix.S_IFDIR:
		return wk.dir(dirfd, name, hdr)
	case unix.S_IFREG:
		return wk.file(dirfd, name, hdr, &st)
	case unix.S_IFLNK:
		target, err := readlinkAt(dirfd, name)
		if err != nil {
			return fmt.Errorf("readlink %q: %w", full, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		hdr.Typeflag = map[uint32]byte{unix.S_IFCHR: tar.TypeChar, unix.S_IFBLK: tar.TypeBlock, unix.S_IFIFO: tar.TypeFifo}[kind]
		if kind != unix.S_IFIFO {
			hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		}
	default:
		return nil // sockets cannot be archived; Docker skips them too
	}
	if err := wk.xattrs(hdr, -1, procPath(dirfd, name)); err != nil {
		return err
	}
	return wk.write(hdr)
}

func (wk *walker) write(hdr *tar.Header) error {
	if err := wk.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing %q: %w", hdr.Name, err)
	}
	return nil
}

func (wk *walker) dir(dirfd int, name string, hdr *tar.Header) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", hdr.Name, err)
	}
	full := hdr.Name
	hdr.Typeflag = tar.TypeDir
	if !strings.HasSuffix(hdr.Name, "/") {
		hdr.Name += "/"
	}
	keys, err := listXattrs(fd, "")
	if err != nil {
		err = fmt.Errorf("listing xattrs of %q: %w", hdr.Name, err)
	}
	var opaque bool
	if err == nil {
		opaque, err = wk.overlayAttrs(keys, fd, full, true)
	}
	if err == nil {
		err = wk.xattrsOf(hdr, keys, fd, "")
	}
	if err == nil {
		err = wk.write(hdr)
	}
	if err == nil && opaque {
		err = wk.write(&tar.Header{Name: path.Join(full, whiteoutOpaque), Typeflag: tar.TypeReg, ModTime: hdr.ModTime})
	}
	if err != nil {
		unix.Close(fd)
		return err
	}
	if wk.skipPseudo && IsPseudoFS(fd) {
		unix.Close(fd)
		return nil
	}
	return wk.walk(fd, full)
}

// overlayAttrs inspects the overlay xattrs of an upper entry (keys, as
// listed from fd): it reports an opaque directory and refuses features a
// layer tar cannot carry. One listing serves this and xattrsOf: no lookup
// of each overlay attribute by name.
func (wk *walker) overlayAttrs(keys []string, fd int, full string, isDir bool) (bool, error) {
	if !wk.overlay {
		return false, nil
	}
	for _, prefix := range []string{overlayXattrPrefix, userOverlayXattrPrefix} {
		for _, unsupported := range []string{"redirect", "metacopy"} {
			if slices.Contains(keys, prefix+unsupported) {
				return false, errdefs.Newf(errdefs.NotImplemented,
					"%q uses overlay %s, which a layer cannot express; mount without redirect_dir/metacopy", full, unsupported)
			}
		}
		if isDir && slices.Contains(keys, prefix+opaqueSuffix) {
			if v, err := getXattr(fd, "", prefix+opaqueSuffix); err == nil && string(v) == "y" {
				return true, nil
			}
		}
	}
	return false, nil
}

func (wk *walker) file(dirfd int, name string, hdr *tar.Header, st *unix.Stat_t) error {
	// O_PATH first: only what is still the regular file lstat saw is
	// opened for reading (never a FIFO or device swapped in meanwhile,
	// whose open alone could block or act).
	pfd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q: %w", hdr.Name, err)
	}
	var fst unix.Stat_t
	err = unix.Fstat(pfd, &fst)
	if err == nil && (fst.Ino != st.Ino || fst.Dev != st.Dev || fst.Mode&unix.S_IFMT != unix.S_IFREG) {
		err = fmt.Errorf("%q was replaced during the walk", hdr.Name)
	}
	var fd int
	if err == nil {
		fd, err = unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	}
	unix.Close(pfd)
	if err != nil {
		return fmt.Errorf("open %q: %w", hdr.Name, err)
	}
	f := os.NewFile(uintptr(fd), hdr.Name)
	defer f.Close()
	keys, err := listXattrs(fd, "")
	if err != nil {
		return fmt.Errorf("listing xattrs of %q: %w", hdr.Name, err)
	}
	if _, err := wk.overlayAttrs(keys, fd, hdr.Name, false); err != nil {
		return err
	}
	hdr.Typeflag, hdr.Size = tar.TypeReg, fst.Size
	if err := wk.xattrsOf(hdr, keys, fd, ""); err != nil {
		return err
	}
	if err := wk.write(hdr); err != nil {
		return err
	}
	n, err := io.CopyBuffer(wk.tw, io.LimitReader(f, hdr.Size), wk.buf)
	if err != nil {
		return fmt.Errorf("reading %q: %w", hdr.Name, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("%q shrank during the walk", hdr.Name)
	}
	return nil
}

// xattrs records the entry's xattrs (read from fd, or from p without
// following it) as PAX records, leaving out overlay's own.
func (wk *walker) xattrs(hdr *tar.Header, fd int, p string) error {
	keys, err := listXattrs(fd, p)
	if err != nil {
		return fmt.Errorf("listing xattrs of %q: %w", hdr.Name, err)
	}
	return wk.xattrsOf(hdr, keys, fd, p)
}

// xattrsOf is xattrs with the names already listed.
func (wk *walker) xattrsOf(hdr *tar.Header, keys []string, fd int, p string) error {
	for _, k := range keys {
		if strings.HasPrefix(k, overlayXattrPrefix) || strings.HasPrefix(k, userOverlayXattrPrefix) {
			continue
		}
		v, err := getXattr(fd, p, k)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue
			}
			return fmt.Errorf("reading xattr %s of %q: %w", k, hdr.Name, err)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = make(map[string]string)
		}
		hdr.PAXRecords[paxXattrPrefix+k] = string(v)
	}
	return nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// TarAt writes the entry base of the directory dirfd as a tar stream in
// which it is named name ("." for "dir/." copies, whose entries are then
// "./..."; "/" for a whole root, whose entries are then "/bin"..., as
// dockerd names them): a file alone, a directory with its whole tree. base is not
// followed if it is a symlink (the symlink is the entry); base "." is
// dirfd itself. Everything is read through descriptors opened with
// O_NOFOLLOW below dirfd, so a concurrent change of the tree (a directory
// swapped for a symlink) can never make TarAt read outside it: the walk
// fails or skips the entry instead. Used for GET /containers/{id}/archive.
func TarAt(ctx context.Context, dirfd int, base, name string, w io.Writer, opts TarOptions) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	wk := &walker{
		ctx:        ctx,
		tw:         tar.NewWriter(bw),
		links:      make(map[devIno]string),
		buf:        make([]byte, 256<<10),
		skipPseudo: opts.SkipPseudoFS,
	}
	if err := wk.entryAs(dirfd, base, name); err != nil {
		return err
	}
	if err := wk.tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// pseudoFS are the magic numbers of kernel filesystems whose files are
// interfaces, not data.
var pseudoFS = map[int64]bool{
	unix.PROC_SUPER_MAGIC: true, unix.SYSFS_MAGIC: true, unix.CGROUP_SUPER_MAGIC: true,
	unix.CGROUP2_SUPER_MAGIC: true, unix.DEBUGFS_MAGIC: true, unix.TRACEFS_MAGIC: true,
	unix.SECURITYFS_MAGIC: true, unix.BPF_FS_MAGIC: true, unix.PSTOREFS_MAGIC: true,
	unix.EFIVARFS_MAGIC: true, unix.SELINUX_MAGIC: true, unix.SMACK_MAGIC: true,
	unix.BINFMTFS_MAGIC: true, 0x62656570 /* configfs */ : true, 0x65735543 /* fusectl */ : true,
}

// IsPseudoFS reports whether the open file fd lives on a kernel pseudo
// filesystem (proc, sysfs, cgroup...).
func IsPseudoFS(fd int) bool {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return false
	}
	return pseudoFS[int64(st.Type)]
}
