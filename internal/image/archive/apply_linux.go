package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
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

// Apply unpacks one image layer, an uncompressed tar stream, into dir,
// which is meant to become an overlay lower (or upper) directory: OCI
// whiteouts become overlay whiteouts (.wh.NAME → character device 0:0
// NAME; .wh..wh..opq → the opaque xattr on its directory).
//
// Safety: nothing outside dir is created or modified, whatever the layer
// holds. Names are cleaned and made relative; a name climbing out with
// ".." is refused. Every parent directory is resolved by the kernel with
// dir as its root (openat2 RESOLVE_IN_ROOT), so a symlink in the layer,
// absolute or relative, is followed the way the container will see it:
// "etc -> /tmp" then "etc/passwd" writes dir/tmp/passwd, never the host's
// /tmp. The last element of a name is never followed. Hardlinks may only
// point at existing entries inside dir (a symlink is linked as itself);
// device nodes are created only below real directories, never through a
// symlink. A refused entry stops Apply with an error of class
// InvalidArgument wrapping ErrUnsafeEntry and naming the entry; what was
// unpacked before it stays, and the caller discards dir.
//
// Whiteouts follow the OCI rule that they apply to lower layers only: an
// entry of this layer that a later whiteout in the same layer names stays
// (a directory becomes opaque instead), and a directory that replaces a
// whiteout of this layer becomes opaque.
//
// Apply hashes the stream as it reads it: the result carries the diffID
// and size, and, when r is the reader returned by DecompressStream, the
// compressed digest and size too. It must run as root unless
// opts.NoSameOwner is set.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (ApplyResult, error) {
	rootfd, err := openRoot(dir)
	if err != nil {
		return ApplyResult{}, err
	}
	return apply(ctx, rootfd, ".", r, opts)
}

// ApplyIn unpacks the tar stream r into the directory dir (clean, relative
// to root, "." for root itself) with root as the resolution root: names
// are placed below dir, and every path, including symlinks met on the
// way, is resolved by the kernel inside root (openat2 RESOLVE_IN_ROOT), as
// Docker's extraction chrooted into a container does. root is an open
// directory descriptor (O_PATH is enough) that ApplyIn does not close. It
// is Apply with the same safety rules; with opts.Plain it unpacks the
// tar as plain files (docker cp) rather than as a layer.
func ApplyIn(ctx context.Context, root int, dir string, r io.Reader, opts ApplyOptions) (ApplyResult, error) {
	clean, err := cleanName(dir)
	if err != nil || clean != dir {
		return ApplyResult{}, errdefs.Newf(errdefs.InvalidArgument, "apply: %q is not a clean relative path", dir)
	}
	rootfd, err := unix.FcntlInt(uintptr(root), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return ApplyResult{}, err
	}
	res, err := apply(ctx, rootfd, dir, r, opts)
	if err != nil && opts.Plain {
		err = plainError{err}
	}
	return res, err
}

// plainError words the unpacker's errors for a plain archive ("archive
// entry", not "layer entry"); class and ErrUnsafeEntry are kept.
type plainError struct{ err error }

var plainWords = strings.NewReplacer("layer entry", "archive entry", "reading layer", "reading archive",
	"the layer root", "the archive root", "in the layer", "in the archive")

func (e plainError) Error() string { return plainWords.Replace(e.err.Error()) }
func (e plainError) Unwrap() error { return e.err }

// apply unpacks r below prefix in rootfd, which it closes.
func apply(ctx context.Context, rootfd int, prefix string, r io.Reader, opts ApplyOptions) (ApplyResult, error) {
	var res ApplyResult
	a := &applier{
		ctx:           ctx,
		opts:          opts,
		rootfd:        rootfd,
		prefix:        prefix,
		resolveIn:     resolveInRoot,
		resolveStrict: resolveNoSymlinks,
		cacheFd:       -1,
		created:       make(map[string]createdKind),
		buf:           make([]byte, 256<<10),
		res:           &res,
	}
	if opts.CrossMounts {
		a.resolveIn &^= unix.RESOLVE_NO_XDEV
		a.resolveStrict &^= unix.RESOLVE_NO_XDEV
	}
	defer a.close()
	if uid, err := mapID(opts.UIDMap, 0); err == nil {
		a.rootUID = uid
	}
	if gid, err := mapID(opts.GIDMap, 0); err == nil {
		a.rootGID = gid
	}

	hr := &hashReader{r: bufio.NewReaderSize(r, 256<<10), h: sha256.New()}
	tr := tar.NewReader(hr)
	for {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, readError(err)
		}
		res.Entries++
		if err := a.entry(hdr, tr); err != nil {
			return res, err
		}
	}
	// The diffID covers the whole stream, padding after the end blocks too.
	if _, err := io.CopyBuffer(io.Discard, hr, a.buf); err != nil {
		return res, readError(err)
	}
	if err := a.finish(); err != nil {
		return res, err
	}
	res.DiffID = digest.NewDigest(digest.SHA256, hr.h)
	res.Size = hr.n
	if cd, ok := r.(CompressedDigester); ok {
		res.Compression = cd.Compression()
		var err error
		if res.CompressedDigest, res.CompressedSize, err = cd.CompressedDigest(); err != nil {
			return res, readError(err)
		}
	}
	return res, nil
}

func readError(err error) error {
	if errdefs.ClassOf(err) != errdefs.Internal {
		return fmt.Errorf("reading layer: %w", err)
	}
	return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("reading layer: %w", err))
}

type createdKind uint8

const (
	createdEntry createdKind = iota + 1
	createdWhiteout
)

type deferredDir struct {
	name string
	ts   []unix.Timespec
	mode uint32 // applied at the end when chmodLate
	late bool
}

type applier struct {
	ctx    context.Context
	opts   ApplyOptions
	rootfd int
	// prefix is where names go below the root ("." for the root).
	prefix string
	// resolveIn and resolveStrict are the openat2 resolve flags for
	// parents (resolveInRoot, resolveNoSymlinks, less RESOLVE_NO_XDEV
	// with CrossMounts).
	resolveIn, resolveStrict uint64

	// cacheRel/cacheFd keep the last parent directory opened: tar entries
	// of one directory come together. Any removal drops it.
	cacheRel string
	cacheFd  int

	// created records what this layer made, for the same-layer whiteout
	// rules.
	created map[string]createdKind
	dirs    []deferredDir
	buf     []byte
	res     *ApplyResult
	// rootUID/rootGID own the directories Apply creates on its own: the
	// container's root, mapped.
	rootUID, rootGID int
}

func (a *applier) close() {
	a.invalidate()
	unix.Close(a.rootfd)
}

func (a *applier) invalidate() {
	if a.cacheFd >= 0 {
		unix.Close(a.cacheFd)
		a.cacheFd = -1
	}
}

// withParent runs fn with an O_PATH descriptor of the directory rel,
// creating missing directories (0755, root-owned) on the way. strict
// refuses any symlink on the way.
func (a *applier) withParent(entry, rel string, strict bool, fn func(pfd int) error) error {
	if !strict && a.cacheFd >= 0 && a.cacheRel == rel {
		return fn(a.cacheFd)
	}
	resolve := a.resolveIn
	if strict {
		resolve = a.resolveStrict
	}
	fd, err := openDirIn(a.rootfd, rel, resolve)
	if err == unix.ENOENT {
		if err = a.mkdirAll(entry, rel); err != nil {
			return err
		}
		fd, err = openDirIn(a.rootfd, rel, resolve)
	}
	if err != nil {
		return parentError(entry, rel, err, strict)
	}
	if a.opts.CrossMounts && IsPseudoFS(fd) {
		// Crossing mounts reaches a running container's /proc and /sys:
		// kernel interfaces, never written by a copy.
		unix.Close(fd)
		return unsafeEntry(entry, "parent %q is on a kernel pseudo filesystem", rel)
	}
	if strict {
		defer unix.Close(fd)
		return fn(fd)
	}
	a.invalidate()
	a.cacheRel, a.cacheFd = rel, fd
	return fn(fd)
}

func parentError(entry, rel string, err error, strict bool) error {
	switch {
	case strict && (err == unix.ELOOP || err == unix.EXDEV):
		return unsafeEntry(entry, "parent %q is reached through a symlink", rel)
	case err == unix.EXDEV:
		return unsafeEntry(entry, "parent %q crosses a mount point or escapes the root", rel)
	case err == unix.ELOOP:
		return unsafeEntry(entry, "parent %q: too many symlinks or a magic link", rel)
	case err == unix.ENOTDIR:
		return errdefs.With(errdefs.InvalidArgument, entryError(entry, fmt.Errorf("parent %q is not a directory", rel)))
	}
	return entryError(entry, fmt.Errorf("opening parent %q: %w", rel, err))
}

// mkdirAll creates the missing directories of rel, resolving in the root.
func (a *applier) mkdirAll(entry, rel string) error {
	parts := strings.Split(rel, "/")
	for i := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		fd, err := openDirIn(a.rootfd, prefix, a.resolveIn)
		if err == nil {
			unix.Close(fd)
			continue
		}
		if err != unix.ENOENT {
			return parentError(entry, prefix, err, false)
		}
		parent := "."
		if i > 0 {
			parent = strings.Join(parts[:i], "/")
		}
		pfd, err := openDirIn(a.rootfd, parent, a.resolveIn)
		if err != nil {
			return parentError(entry, parent, err, false)
		}
		err = unix.Mkdirat(pfd, parts[i], 0o755)
		if err == nil {
			a.created[prefix] = createdEntry
			err = chmodAt(pfd, parts[i], 0o755)
			if err == nil && !a.opts.NoSameOwner && (a.rootUID != 0 || a.rootGID != 0) {
				err = unix.Fchownat(pfd, parts[i], a.rootUID, a.rootGID, unix.AT_SYMLINK_NOFOLLOW)
			}
		} else if err == unix.EEXIST {
			// Something that is not a directory we can enter: most
			// likely a dangling symlink.
			err = fmt.Errorf("%q exists and does not lead to a directory", prefix)
		}
		unix.Close(pfd)
		if err != nil {
			return errdefs.With(errdefs.InvalidArgument, entryError(entry, fmt.Errorf("creating parent: %w", err)))
		}
	}
	return nil
}

// clear removes whatever is at base (the directory tree too) so that a new
// entry can take its place. It reports whether that was a whiteout made by
// this layer.
func (a *applier) clear(pfd int, name, base string) (bool, error) {
	st, err := lstatAt(pfd, base)
	if err == unix.ENOENT {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	wasWhiteout := isWhiteoutDev(&st) && a.created[name] == createdWhiteout
	// The cached directory may lie below what is removed. pfd may be the
	// cached descriptor and stays open for the caller; the cache is only
	// made to miss, and the next withParent closes it.
	a.cacheRel = "\x00"
	return wasWhiteout, removeAllAt(pfd, base)
}

// chmodAt changes the mode of base in pfd without ever following a
// symlink. The node is opened O_PATH|O_NOFOLLOW and changed through its
// descriptor (/proc/self/fd): a path-based fchmodat would follow a
// symlink that replaced the node in between (the kernel refuses
// AT_SYMLINK_NOFOLLOW on symlinks with EOPNOTSUPP, and retrying without
// it follows the link from the host's root), which a running container
// racing a copy could aim at any host file. A symlink found there is an
// error.
func chmodAt(pfd int, base string, mode uint32) error {
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("%q was replaced by a symlink: %w", base, ErrUnsafeEntry)
	}
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

func isWhiteoutDev(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func (a *applier) entry(hdr *tar.Header, tr *tar.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	name, err := cleanName(hdr.Name)
	if err != nil {
		return unsafeEntry(hdr.Name, "%v", err)
	}
	if a.opts.Plain && name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return unsafeEntry(hdr.Name, "the archive root can only be a directory")
		}
		return nil // the target directory stays as it is
	}
	name = a.under(name)
	dirRel, base := splitName(name)
	if !a.opts.Plain && strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(name, dirRel, base)
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return unsafeEntry(hdr.Name, "the layer root can only be a directory")
		}
		return a.rootDir(hdr)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return a.dir(hdr, name, dirRel, base)
	case tar.TypeReg, tar.TypeGNUSparse, '\x00':
		return a.file(hdr, tr, name, dirRel, base)
	case tar.TypeSymlink:
		return a.symlink(hdr, name, dirRel, base)
	case tar.TypeLink:
		return a.hardlink(hdr, name, dirRel, base)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return a.node(hdr, name, dirRel, base)
	}
	return errdefs.With(errdefs.InvalidArgument, entryError(hdr.Name, fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)))
}

// under places a clean archive name below the prefix.
func (a *applier) under(name string) string {
	if a.prefix == "." {
		return name
	}
	if name == "." {
		return a.prefix
	}
	return a.prefix + "/" + name
}

// mayReplace applies NoOverwriteDirNonDir to what is at base in pfd
// before an entry (a directory when isDir) takes its place.
func (a *applier) mayReplace(hdr *tar.Header, pfd int, base string, isDir bool) error {
	if !a.opts.NoOverwriteDirNonDir {
		return nil
	}
	st, err := lstatAt(pfd, base)
	if err != nil {
		return nil
	}
	exDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case exDir && !isDir:
		return errdefs.With(errdefs.InvalidArgument, entryError(hdr.Name, errors.New("cannot overwrite a directory with a non-directory")))
	case !exDir && isDir:
		return errdefs.With(errdefs.InvalidArgument, entryError(hdr.Name, errors.New("cannot overwrite a non-directory with a directory")))
	}
	return nil
}

func (a *applier) ids(hdr *tar.Header) (int, int, error) {
	if o := a.opts.Owner; o != nil {
		return o.UID, o.GID, nil
	}
	uid, err := mapID(a.opts.UIDMap, hdr.Uid)
	if err != nil {
		return 0, 0, errdefs.With(errdefs.InvalidArgument, entryError(hdr.Name, fmt.Errorf("uid: %w", err)))
	}
	gid, err := mapID(a.opts.GIDMap, hdr.Gid)
	if err != nil {
		return 0, 0, errdefs.With(errdefs.InvalidArgument, entryError(hdr.Name, fmt.Errorf("gid: %w", err)))
	}
	return uid, gid, nil
}

func perm(hdr *tar.Header) uint32 { return uint32(hdr.Mode) & 0o7777 }

func timespecs(hdr *tar.Header) []unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return []unix.Timespec{toTimespec(at), toTimespec(hdr.ModTime)}
}

func toTimespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// setXattrs applies the SCHILY.xattr.* records of hdr with set, skipping
// (and reporting) reserved keys and those the filesystem refuses.
func (a *applier) setXattrs(hdr *tar.Header, name string, set func(key string, val []byte) error) error {
	var keys []string
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, paxXattrPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		key := strings.TrimPrefix(k, paxXattrPrefix)
		if strings.HasPrefix(key, overlayXattrPrefix) || strings.HasPrefix(key, userOverlayXattrPrefix) {
			a.res.SkippedXattrs = append(a.res.SkippedXattrs, SkippedXattr{Path: name, Key: key, Reason: "reserved for overlayfs"})
			continue
		}
		if err := set(key, []byte(hdr.PAXRecords[k])); err != nil {
			if !xattrRefused(err) {
				return entryError(hdr.Name, fmt.Errorf("setting xattr %s: %w", key, err))
			}
			a.res.SkippedXattrs = append(a.res.SkippedXattrs, SkippedXattr{Path: name, Key: key, Reason: err.Error()})
		}
	}
	return nil
}

// metaFd sets owner, mode and xattrs on an open file or directory. The
// order matters: chown clears setuid bits and file capabilities.
func (a *applier) metaFd(hdr *tar.Header, name string, fd int, mode uint32) error {
	if !a.opts.NoSameOwner {
		uid, gid, err := a.ids(hdr)
		if err != nil {
			return err
		}
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return entryError(hdr.Name, fmt.Errorf("chown: %w", err))
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return entryError(hdr.Name, fmt.Errorf("chmod: %w", err))
	}
	return a.setXattrs(hdr, name, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) })
}

// metaAt sets owner, mode (unless it is a symlink) and xattrs on base in
// pfd without following it, for entries that cannot be opened.
func (a *applier) metaAt(hdr *tar.Header, name string, pfd int, base string, isLink bool) error {
	if !a.opts.NoSameOwner {
		uid, gid, err := a.ids(hdr)
		if err != nil {
			return err
		}
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return entryError(hdr.Name, fmt.Errorf("chown: %w", err))
		}
	}
	if !isLink {
		if err := chmodAt(pfd, base, perm(hdr)); err != nil {
			return entryError(hdr.Name, fmt.Errorf("chmod: %w", err))
		}
	}
	p := procPath(pfd, base)
	if err := a.setXattrs(hdr, name, func(k string, v []byte) error { return unix.Lsetxattr(p, k, v, 0) }); err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(pfd, base, timespecs(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryError(hdr.Name, fmt.Errorf("setting times: %w", err))
	}
	return nil
}

func (a *applier) rootDir(hdr *tar.Header) error {
	fd, err := openat2(a.rootfd, ".", unix.O_RDONLY|unix.O_DIRECTORY, a.resolveIn)
	if err != nil {
		return entryError(hdr.Name, err)
	}
	defer unix.Close(fd)
	return a.dirMeta(hdr, ".", fd)
}

func (a *applier) dirMeta(hdr *tar.Header, name string, fd int) error {
	mode := perm(hdr)
	late := a.opts.NoSameOwner && mode&0o700 != 0o700
	if late {
		mode |= 0o700 // keep the directory writable until the end
	}
	if err := a.metaFd(hdr, name, fd, mode); err != nil {
		return err
	}
	a.dirs = append(a.dirs, deferredDir{name: name, ts: timespecs(hdr), mode: perm(hdr), late: late})
	return nil
}

func (a *applier) dir(hdr *tar.Header, name, dirRel, base string) error {
	return a.withParent(hdr.Name, dirRel, false, func(pfd int) error {
		opaque := false
		st, err := lstatAt(pfd, base)
		switch {
		case err == unix.ENOENT:
		case err != nil:
			return entryError(hdr.Name, err)
		case st.Mode&unix.S_IFMT != unix.S_IFDIR:
			if err := a.mayReplace(hdr, pfd, base, true); err != nil {
				return err
			}
			if opaque, err = a.clear(pfd, name, base); err != nil {
				return entryError(hdr.Name, fmt.Errorf("replacing: %w", err))
			}
			err = unix.ENOENT
		}
		if err == unix.ENOENT {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return entryError(hdr.Name, fmt.Errorf("mkdir: %w", err))
			}
		}
		a.created[name] = createdEntry
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return entryError(hdr.Name, err)
		}
		defer unix.Close(fd)
		if opaque && !a.opts.Plain {
			if err := a.setOpaque(fd); err != nil {
				return entryError(hdr.Name, err)
			}
		}
		return a.dirMeta(hdr, name, fd)
	})
}

func (a *applier) setOpaque(dirfd int) error {
	prefix := overlayXattrPrefix
	if a.opts.UserXattr {
		prefix = userOverlayXattrPrefix
	}
	if err := unix.Fsetxattr(dirfd, prefix+opaqueSuffix, []byte("y"), 0); err != nil {
		return fmt.Errorf("marking directory opaque: %w", err)
	}
	return nil
}

// onlyWriter hides os.File's ReadFrom so that copies use Apply's buffer.
type onlyWriter struct{ io.Writer }

// ctxReader stops a long copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func (a *applier) file(hdr *tar.Header, tr *tar.Reader, name, dirRel, base string) error {
	return a.withParent(hdr.Name, dirRel, false, func(pfd int) error {
		if err := a.mayReplace(hdr, pfd, base, false); err != nil {
			return err
		}
		if _, err := a.clear(pfd, name, base); err != nil {
			return entryError(hdr.Name, fmt.Errorf("replacing: %w", err))
		}
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return entryError(hdr.Name, fmt.Errorf("create: %w", err))
		}
		a.created[name] = createdEntry
		f := os.NewFile(uintptr(fd), name)
		defer f.Close()
		if _, err := io.CopyBuffer(onlyWriter{f}, ctxReader{a.ctx, tr}, a.buf); err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			if errors.Is(err, io.ErrUnexpectedEOF) || errdefs.ClassOf(err) == errdefs.InvalidArgument {
				return readError(entryError(hdr.Name, err))
			}
			return entryError(hdr.Name, fmt.Errorf("writing: %w", err))
		}
		if err := a.metaFd(hdr, name, fd, perm(hdr)); err != nil {
			return err
		}
		if err := unix.UtimesNanoAt(pfd, base, timespecs(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return entryError(hdr.Name, fmt.Errorf("setting times: %w", err))
		}
		return nil
	})
}

func (a *applier) symlink(hdr *tar.Header, name, dirRel, base string) error {
	if strings.IndexByte(hdr.Linkname, 0) >= 0 || len(hdr.Linkname) >= maxPath || hdr.Linkname == "" {
		return unsafeEntry(hdr.Name, "invalid symlink target")
	}
	return a.withParent(hdr.Name, dirRel, false, func(pfd int) error {
		if err := a.mayReplace(hdr, pfd, base, false); err != nil {
			return err
		}
		if _, err := a.clear(pfd, name, base); err != nil {
			return entryError(hdr.Name, fmt.Errorf("replacing: %w", err))
		}
		// The target is data: it is resolved later, inside the container
		// or by this package with the layer as root.
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return entryError(hdr.Name, fmt.Errorf("symlink: %w", err))
		}
		a.created[name] = createdEntry
		return a.metaAt(hdr, name, pfd, base, true)
	})
}

func (a *applier) hardlink(hdr *tar.Header, name, dirRel, base string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return unsafeEntry(hdr.Name, "hardlink target %q: %v", shorten(hdr.Linkname), err)
	}
	if target == "." {
		return unsafeEntry(hdr.Name, "hardlink to the layer root")
	}
	target = a.under(target)
	if target == name {
		return unsafeEntry(hdr.Name, "hardlink to itself")
	}
	tdir, tbase := splitName(target)
	if !a.opts.Plain && strings.HasPrefix(tbase, whiteoutPrefix) {
		return unsafeEntry(hdr.Name, "hardlink to a whiteout")
	}
	tfd, err := openDirIn(a.rootfd, tdir, a.resolveIn)
	if err != nil {
		if err == unix.ENOENT {
			return errdefs.With(errdefs.InvalidArgument, entryError(hdr.Name, fmt.Errorf("hardlink target %q does not exist in the layer", hdr.Linkname)))
		}
		return parentError(hdr.Name, tdir, err, false)
	}
	defer unix.Close(tfd)
	st, err := lstatAt(tfd, tbase)
	if err != nil {
		return errdefs.With(errdefs.InvalidArgument, entryError(hdr.Name, fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)))
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unsafeEntry(hdr.Name, "hardlink to a directory")
	}
	return a.withParent(hdr.Name, dirRel, false, func(pfd int) error {
		if err := a.mayReplace(hdr, pfd, base, false); err != nil {
			return err
		}
		if _, err := a.clear(pfd, name, base); err != nil {
			return entryError(hdr.Name, fmt.Errorf("replacing: %w", err))
		}
		// No AT_SYMLINK_FOLLOW: a symlink target is linked as itself.
		if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
			return entryError(hdr.Name, fmt.Errorf("link to %q: %w", hdr.Linkname, err))
		}
		a.created[name] = createdEntry
		return nil
	})
}

func (a *applier) node(hdr *tar.Header, name, dirRel, base string) error {
	if a.opts.NoDevices && hdr.Typeflag != tar.TypeFifo {
		return unsafeEntry(hdr.Name, "device nodes are not allowed here")
	}
	mode := perm(hdr)
	switch hdr.Typeflag {
	case tar.TypeChar:
		mode |= unix.S_IFCHR
	case tar.TypeBlock:
		mode |= unix.S_IFBLK
	default:
		mode |= unix.S_IFIFO
	}
	dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
	return a.withParent(hdr.Name, dirRel, true, func(pfd int) error {
		if err := a.mayReplace(hdr, pfd, base, false); err != nil {
			return err
		}
		if _, err := a.clear(pfd, name, base); err != nil {
			return entryError(hdr.Name, fmt.Errorf("replacing: %w", err))
		}
		if err := unix.Mknodat(pfd, base, mode, int(dev)); err != nil {
			if a.opts.NoSameOwner && errors.Is(err, unix.EPERM) && hdr.Typeflag != tar.TypeFifo {
				return nil // rootless: devices cannot be made; Docker skips them too
			}
			return entryError(hdr.Name, fmt.Errorf("mknod: %w", err))
		}
		a.created[name] = createdEntry
		return a.metaAt(hdr, name, pfd, base, false)
	})
}

func (a *applier) whiteout(name, dirRel, base string) error {
	if base == whiteoutOpaque {
		return a.withParent(name, dirRel, false, func(pfd int) error {
			fd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return entryError(name, err)
			}
			defer unix.Close(fd)
			if err := a.setOpaque(fd); err != nil {
				return entryError(name, err)
			}
			return nil
		})
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return nil // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not content
	}
	orig := strings.TrimPrefix(base, whiteoutPrefix)
	if orig == "" || orig == "." || orig == ".." {
		return unsafeEntry(name, "invalid whiteout")
	}
	target := path.Join(dirRel, orig)
	return a.withParent(name, dirRel, false, func(pfd int) error {
		st, err := lstatAt(pfd, orig)
		switch {
		case err == unix.ENOENT:
		case err != nil:
			return entryError(name, err)
		case a.created[target] != 0:
			// Made by this layer: the whiteout only hides lower layers,
			// which the entry already does, unless it is a directory.
			if a.created[target] == createdEntry && st.Mode&unix.S_IFMT == unix.S_IFDIR {
				fd, err := unix.Openat(pfd, orig, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return entryError(name, err)
				}
				defer unix.Close(fd)
				if err := a.setOpaque(fd); err != nil {
					return entryError(name, err)
				}
			}
			return nil
		default:
			if _, err := a.clear(pfd, target, orig); err != nil {
				return entryError(name, fmt.Errorf("removing %q: %w", target, err))
			}
		}
		if err := unix.Mknodat(pfd, orig, unix.S_IFCHR, 0); err != nil {
			return entryError(name, fmt.Errorf("creating whiteout: %w", err))
		}
		a.created[target] = createdWhiteout
		return nil
	})
}

// finish sets directory times (and late modes) once their content is in.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		dirRel, base := splitName(d.name)
		if d.name == "." {
			dirRel, base = ".", "."
		}
		pfd, err := openDirIn(a.rootfd, dirRel, a.resolveIn)
		if err != nil {
			continue // replaced by a later entry
		}
		st, err := lstatAt(pfd, base)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(pfd)
			continue
		}
		if d.late {
			err = chmodAt(pfd, base, d.mode)
		}
		if err == nil {
			err = unix.UtimesNanoAt(pfd, base, d.ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		unix.Close(pfd)
		if err != nil {
			return entryError(d.name, fmt.Errorf("setting directory times: %w", err))
		}
	}
	return nil
}
