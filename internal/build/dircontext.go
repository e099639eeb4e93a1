package build

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// contextFS is a build context: the client's tar (tarFS) or a directory
// the daemon reads itself (dirFS: a local client's context passed by
// reference, or a git checkout).
type contextFS interface {
	srcFS
	Close()
}

// dirFS is a context directory read in place. File digests come from the
// builder's stat-keyed checksum cache, so an unchanged context is not
// read again by the next build.
type dirFS struct {
	hostFS
	sums *sumCache
}

func (d dirFS) Close() {}

// Sum is the digest of a regular file's content, from the cache when the
// file's identity and stat (device, inode, size, mtime, ctime) are those
// it had when it was hashed.
func (d dirFS) Sum(p string) ([]byte, bool) { return d.SumInfo(p, nil) }

// infoSummer is a summer that can use the stat of the file a walk has
// already made.
type infoSummer interface {
	SumInfo(p string, fi fs.FileInfo) ([]byte, bool)
}

// SumInfo is Sum with the file's Lstat (nil: made here).
func (d dirFS) SumInfo(p string, fi fs.FileInfo) ([]byte, bool) {
	full := d.path(p)
	var st syscall.Stat_t
	var sys *syscall.Stat_t
	if fi != nil {
		sys, _ = fi.Sys().(*syscall.Stat_t)
	}
	if sys != nil {
		st = *sys
	} else if err := syscall.Lstat(full, &st); err != nil {
		return nil, false
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, false
	}
	k := sumKey{path: full, dev: st.Dev, ino: st.Ino, size: st.Size,
		mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
	if s, ok := d.sums.get(k); ok {
		return s, true
	}
	f, err := os.OpenFile(full, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	var st2 syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st2) != nil || st2.Ino != st.Ino || st2.Dev != st.Dev {
		return nil, false
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, false
	}
	sum := h.Sum(nil)
	// A file changed within the clock's granularity after it was hashed
	// could keep its ctime (git's "racy" entries): only files whose
	// last change is well in the past are remembered.
	if time.Since(time.Unix(0, k.ctime)) > racyWindow && time.Since(time.Unix(0, k.mtime)) > racyWindow {
		d.sums.put(k, sum)
	}
	return sum, true
}

// racyWindow: a file changed more recently than this is hashed again by
// every build until it is older.
var racyWindow = time.Second

type sumKey struct {
	path         string
	dev, ino     uint64
	size         int64
	mtime, ctime int64
}

// sumCache maps a file's stat to its content digest (in memory: it is
// rebuilt by the first build after a restart).
type sumCache struct {
	mu sync.Mutex
	m  map[sumKey][]byte
}

// maxSums bounds the cache; beyond it the cache starts over.
const maxSums = 1 << 18

func (c *sumCache) get(k sumKey) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[k]
	return s, ok
}

func (c *sumCache) put(k sumKey, s []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxSums {
		c.m = map[sumKey][]byte{}
	}
	c.m[k] = s
}

// ContextRef names a context directory on the daemon's host (a local
// client's context passed by reference): the directory and its device
// and inode as the client saw them, so a client in another mount
// namespace is told to send a tar instead of building something else.
type ContextRef struct {
	Dir string `json:"dir"`
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// ErrContextNotVisible is the error text for a ContextRef that does not
// name the same directory on the daemon's side (the client then sends
// the context as a tar).
const ErrContextNotVisible = "build context directory is not visible to the daemon"

// openContextRef checks ref and returns the directory as a context.
func (b *Builder) openContextRef(ref *ContextRef) (contextFS, error) {
	if !filepath.IsAbs(ref.Dir) {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "build context directory %q is not absolute", ref.Dir)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(ref.Dir, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR || st.Dev != ref.Dev || st.Ino != ref.Ino {
		return nil, errdefs.Newf(errdefs.FailedPrecondition, "%s: %s", ErrContextNotVisible, ref.Dir)
	}
	return b.dirContext(ref.Dir), nil
}

func (b *Builder) dirContext(dir string) contextFS {
	return dirFS{hostFS: hostFS{root: dir}, sums: &b.sums}
}

// isGitRemote reports whether a remote context is a git repository, with
// dockerd's rules: an http(s) URL whose path ends in .git (optionally
// with a #fragment), or one starting git://, git@ or github.com/.
func isGitRemote(s string) bool {
	if (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")) && gitURLSuffix.MatchString(s) {
		return true
	}
	for _, p := range []string{"git://", "git@", "github.com/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

var gitURLSuffix = regexp.MustCompile(`\.git(?:#.+)?$`)

// gitContext clones remote (URL#ref:subdir) into dir/git with the git
// binary, at ref (the default branch when empty), with submodules, and
// returns the subdirectory as the context.
func (b *Builder) gitContext(ctx context.Context, remote, dir string) (contextFS, error) {
	u, frag, _ := strings.Cut(remote, "#")
	ref, sub, _ := strings.Cut(frag, ":")
	if strings.HasPrefix(u, "github.com/") {
		u = "https://" + u
	}
	if strings.HasPrefix(u, "-") || strings.HasPrefix(ref, "-") {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid git URL %q", remote)
	}
	// ext:: and other helpers never: only the transports a URL names.
	if !strings.HasPrefix(u, "git@") && !strings.Contains(u, "://") {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid git URL %q", remote)
	}
	r, err := newGitRunner()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "git")
	git := func(args ...string) error {
		_, err := r.run(ctx, root, args...)
		return err
	}
	if err := os.Mkdir(root, 0o700); err != nil {
		return nil, err
	}
	if err := git("init", "-q"); err != nil {
		return nil, err
	}
	if err := git("remote", "add", "origin", u); err != nil {
		return nil, err
	}
	want := ref
	if want == "" {
		want = "HEAD"
	}
	if err := git("fetch", "-q", "--depth", "1", "origin", want); err != nil {
		// A commit the server will not give by name: all of it.
		if err2 := git("fetch", "-q", "origin"); err2 != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("unable to fetch %s: %w", remote, err))
		}
		if err := git("checkout", "-q", ref, "--"); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("unable to check out %s of %s: %w", ref, u, err))
		}
	} else if err := git("checkout", "-q", "FETCH_HEAD", "--"); err != nil {
		return nil, err
	}
	if err := git("submodule", "update", "-q", "--init", "--recursive", "--depth", "1"); err != nil {
		return nil, err
	}
	_ = os.RemoveAll(filepath.Join(root, ".git"))
	ctxDir := root
	if sub != "" {
		p, err := secureJoin(root, sub)
		if err != nil {
			return nil, err
		}
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "subdirectory %s of %s: not a directory", sub, u)
		}
		ctxDir = p
	}
	return b.dirContext(ctxDir), nil
}

// unpackDir copies a directory context's tree (what .dockerignore keeps)
// into dst, for RUN --mount=type=bind: the client's files are never
// mounted where a RUN could change them.
func unpackDir(src, dst string, ignored func(string) bool, exceptions bool) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return os.MkdirAll(dst, 0o755)
		}
		if ignored(filepath.ToSlash(rel)) {
			if !d.IsDir() {
				return nil
			}
			if !exceptions {
				return filepath.SkipDir
			}
			// A "!" pattern may re-include something below: the
			// directory is walked (and made) all the same.
		}
		t := filepath.Join(dst, rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			return os.Mkdir(t, fi.Mode().Perm()|0o700)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, t)
		case fi.Mode().IsRegular():
			in, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
			if err != nil {
				return err
			}
			defer in.Close()
			out, err := os.OpenFile(t, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, fi.Mode().Perm())
			if err != nil {
				return err
			}
			_, err = io.Copy(out, in)
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			return err
		}
		return nil
	})
}

// openContext is the build's context: a directory passed by reference, a
// git checkout, or the body (a tar, or a bare Dockerfile: errNotArchive
// with its text).
func (b *Builder) openContext(ctx context.Context, o Options, body io.Reader, dir string) (contextFS, []byte, error) {
	switch {
	case o.Remote != "":
		if !isGitRemote(o.Remote) {
			return nil, nil, errdefs.Newf(errdefs.NotImplemented, "remote build context %q: only git repositories are supported", o.Remote)
		}
		c, err := b.gitContext(ctx, o.Remote, dir)
		return c, nil, err
	case o.ContextRef != nil:
		c, err := b.openContextRef(o.ContextRef)
		return c, nil, err
	}
	t, bare, err := readContext(body, dir)
	if t == nil {
		// No nil *tarFS in a non-nil interface.
		return nil, bare, err
	}
	return t, bare, err
}

// copySmall copies a file of (listed) size n: a small one with one read
// and one write (no copy_file_range attempt across filesystems), a larger
// one with io.Copy.
func copySmall(out io.Writer, in io.Reader, n int64) error {
	if n > 0 && n <= 64<<10 {
		buf := make([]byte, n+1)
		m, err := io.ReadFull(in, buf)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = nil
		}
		if err != nil {
			return err
		}
		if _, err := out.Write(buf[:m]); err != nil {
			return err
		}
		if m <= int(n) {
			return nil
		}
		// Grown since it was listed: the rest as it comes.
	}
	_, err := io.Copy(out, in)
	return err
}

// removeScratch removes the scratch directory unpack made.
func (c *buildContext) removeScratch() {
	if c.scratchMade {
		os.RemoveAll(c.dir)
	}
}
