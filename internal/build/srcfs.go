package build

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
)

// srcFS is where COPY and ADD read from: the build context, or a stage's
// or image's root filesystem. Paths are slash-separated and relative to
// its root; none of the methods follows a symlink except Resolve, which
// follows them all without leaving the root.
type srcFS interface {
	Resolve(p string) (string, error)
	Lstat(p string) (fs.FileInfo, error)
	// ReadDir lists a directory's entries sorted by name.
	ReadDir(p string) ([]fs.FileInfo, error)
	Open(p string) (io.ReadCloser, error)
	Readlink(p string) (string, error)
}

// summer is a srcFS that knows its files' content digests.
type summer interface {
	Sum(p string) ([]byte, bool)
}

// hostFS is a directory on the host (a mounted stage or image).
type hostFS struct{ root string }

func (h hostFS) Resolve(p string) (string, error) {
	j, err := securejoin.SecureJoin(h.root, p)
	if err != nil {
		return "", errdefs.With(errdefs.InvalidArgument, err)
	}
	rel, err := filepath.Rel(h.root, j)
	if err != nil || strings.HasPrefix(rel, "..") {
		return "", errdefs.Newf(errdefs.InvalidArgument, "%s is outside the source", p)
	}
	if rel == "." {
		rel = ""
	}
	return filepath.ToSlash(rel), nil
}

func (h hostFS) path(p string) string { return filepath.Join(h.root, filepath.FromSlash(p)) }

func (h hostFS) Lstat(p string) (fs.FileInfo, error) { return os.Lstat(h.path(p)) }

func (h hostFS) ReadDir(p string) ([]fs.FileInfo, error) {
	ents, err := os.ReadDir(h.path(p))
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, 0, len(ents))
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, fi)
	}
	return out, nil
}

func (h hostFS) Open(p string) (io.ReadCloser, error) {
	return os.OpenFile(h.path(p), os.O_RDONLY|syscallNoFollow, 0)
}

func (h hostFS) Readlink(p string) (string, error) { return os.Readlink(h.path(p)) }

// tarFS is the build context as the client sent it, never unpacked: file
// contents are spooled, one after the other, into a single file (one
// create, sequential writes: creating thousands of small files costs
// more than the rest of a cached rebuild) and hashed as they arrive.
// Files are materialised only where a COPY that misses the cache writes
// them.
type tarFS struct {
	spool   *os.File
	entries map[string]*tfEntry
	dirs    map[string][]string // directory → child names, sorted
}

type tfEntry struct {
	name  string
	mode  fs.FileMode
	size  int64
	mtime time.Time
	link  string // symlink target
	off   int64  // content offset in the spool
	sum   []byte
}

func (e *tfEntry) Name() string       { return path.Base(e.name) }
func (e *tfEntry) Size() int64        { return e.size }
func (e *tfEntry) Mode() fs.FileMode  { return e.mode }
func (e *tfEntry) ModTime() time.Time { return e.mtime }
func (e *tfEntry) IsDir() bool        { return e.mode.IsDir() }
func (e *tfEntry) Sys() any           { return nil }

// readContext reads the build context r into a tarFS whose spool lives in
// dir. A body that is not a (plain, gzip, bzip2, xz or zstd) tar is
// returned as the Dockerfile (errNotArchive), with an empty context. An
// entry whose name leaves the context is refused with InvalidArgument.
func readContext(r io.Reader, dir string) (*tarFS, []byte, error) {
	t := &tarFS{entries: map[string]*tfEntry{}, dirs: map[string][]string{}}
	t.entries[""] = &tfEntry{name: "", mode: fs.ModeDir | 0o755}
	spool, err := os.CreateTemp(dir, "context-")
	if err != nil {
		return nil, nil, err
	}
	t.spool = spool
	fail := func(err error) (*tarFS, []byte, error) {
		t.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	var src io.Reader = br
	if archive.Detect(head) != archive.Uncompressed {
		dr, _, err := archive.DecompressStream(br)
		if err != nil {
			return fail(errdefs.With(errdefs.InvalidArgument, fmt.Errorf("build context: %w", err)))
		}
		defer dr.Close()
		bdr := bufio.NewReaderSize(dr, 64<<10)
		head, _ = bdr.Peek(512)
		src = bdr
	}
	if !isTar(head) {
		if len(head) == 0 {
			t.index()
			return t, nil, nil
		}
		b, err := io.ReadAll(io.LimitReader(src, 16<<20))
		if err != nil {
			return fail(err)
		}
		t.index()
		return t, b, errNotArchive
	}
	w := bufio.NewWriterSize(spool, 256<<10)
	var off int64
	buf := make([]byte, 32<<10)
	h := sha256.New()
	tr := tar.NewReader(src)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(errdefs.With(errdefs.InvalidArgument, fmt.Errorf("build context: %w", err)))
		}
		name, err := contextName(hdr.Name)
		if err != nil {
			return fail(err)
		}
		if name == "" {
			continue
		}
		e := &tfEntry{name: name, mode: fs.FileMode(hdr.Mode) & fs.ModePerm, size: hdr.Size, mtime: hdr.ModTime}
		switch hdr.Typeflag {
		case tar.TypeDir:
			e.mode |= fs.ModeDir
			e.size = 0
		case tar.TypeReg, tar.TypeRegA:
			h.Reset()
			n, err := io.CopyBuffer(io.MultiWriter(w, h), tr, buf)
			if err != nil {
				return fail(errdefs.With(errdefs.InvalidArgument, fmt.Errorf("build context: %q: %w", hdr.Name, err)))
			}
			e.off, e.size, e.sum = off, n, h.Sum(nil)
			off += n
		case tar.TypeSymlink:
			e.mode |= fs.ModeSymlink
			e.link, e.size = hdr.Linkname, 0
		case tar.TypeLink:
			ln, err := contextName(hdr.Linkname)
			if err != nil {
				return fail(err)
			}
			target, ok := t.entries[ln]
			if !ok || !target.mode.IsRegular() {
				return fail(errdefs.Newf(errdefs.InvalidArgument, "build context: hardlink %q to %q, which is not a file before it", hdr.Name, hdr.Linkname))
			}
			e.off, e.size, e.sum = target.off, target.size, target.sum
		default:
			continue // devices, fifos: not meaningful in a context
		}
		if hdr.Mode&0o4000 != 0 {
			e.mode |= fs.ModeSetuid
		}
		if hdr.Mode&0o2000 != 0 {
			e.mode |= fs.ModeSetgid
		}
		if hdr.Mode&0o1000 != 0 {
			e.mode |= fs.ModeSticky
		}
		t.entries[name] = e
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	t.index()
	return t, nil, nil
}

// index adds the implicit parent directories and lists children.
func (t *tarFS) index() {
	for name := range t.entries {
		for d := path.Dir(name); name != ""; d = path.Dir(d) {
			if d == "." {
				d = ""
			}
			if _, ok := t.entries[d]; !ok {
				t.entries[d] = &tfEntry{name: d, mode: fs.ModeDir | 0o755}
			}
			if d == "" {
				break
			}
		}
	}
	for name := range t.entries {
		if name == "" {
			continue
		}
		d := path.Dir(name)
		if d == "." {
			d = ""
		}
		t.dirs[d] = append(t.dirs[d], path.Base(name))
	}
	for _, c := range t.dirs {
		sort.Strings(c)
	}
}

// Close removes the spool.
func (t *tarFS) Close() {
	if t.spool != nil {
		t.spool.Close()
		os.Remove(t.spool.Name())
		t.spool = nil
	}
}

// Resolve follows symlinks as a root filesystem at the context would:
// ".." and absolute targets never leave the context.
func (t *tarFS) Resolve(p string) (string, error) {
	parts := strings.Split(strings.Trim(path.Clean("/"+p), "/"), "/")
	cur := ""
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			cur = strings.TrimPrefix(path.Dir("/"+cur), "/")
			continue
		}
		next := path.Join(cur, part)
		e, ok := t.entries[next]
		if ok && e.mode&fs.ModeSymlink != 0 {
			hops++
			if hops > 255 {
				return "", errdefs.Newf(errdefs.InvalidArgument, "too many levels of symbolic links resolving %s", p)
			}
			target := e.link
			if path.IsAbs(target) {
				cur = ""
			}
			parts = append(strings.Split(target, "/"), parts...)
			continue
		}
		cur = next
	}
	return cur, nil
}

func (t *tarFS) get(p string) (*tfEntry, error) {
	e, ok := t.entries[strings.Trim(p, "/")]
	if !ok {
		return nil, &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
	}
	return e, nil
}

func (t *tarFS) Lstat(p string) (fs.FileInfo, error) { return t.get(p) }

func (t *tarFS) ReadDir(p string) ([]fs.FileInfo, error) {
	p = strings.Trim(p, "/")
	e, err := t.get(p)
	if err != nil {
		return nil, err
	}
	if !e.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: errors.New("not a directory")}
	}
	var out []fs.FileInfo
	for _, c := range t.dirs[p] {
		out = append(out, t.entries[path.Join(p, c)])
	}
	return out, nil
}

func (t *tarFS) Open(p string) (io.ReadCloser, error) {
	e, err := t.get(p)
	if err != nil {
		return nil, err
	}
	if !e.mode.IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: p, Err: errors.New("not a regular file")}
	}
	return io.NopCloser(io.NewSectionReader(t.spool, e.off, e.size)), nil
}

func (t *tarFS) Readlink(p string) (string, error) {
	e, err := t.get(p)
	if err != nil {
		return "", err
	}
	return e.link, nil
}

func (t *tarFS) Sum(p string) ([]byte, bool) {
	e, err := t.get(p)
	if err != nil || e.sum == nil {
		return nil, false
	}
	return e.sum, true
}

// readFile reads a whole file of fsys, following symlinks.
func readFile(fsys srcFS, p string) ([]byte, error) {
	r, err := fsys.Resolve(p)
	if err != nil {
		return nil, err
	}
	f, err := fsys.Open(r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
