package build

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/patternmatcher"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/image/archive"
	"github.com/berth-dev/berth/internal/image/snapshot"
)

func secureJoin(root, p string) (string, error) {
	j, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return "", errdefs.With(errdefs.InvalidArgument, err)
	}
	return j, nil
}

// withRootfs mounts a writable snapshot on parent's layers, lets fn
// change it, and makes the changes a layer: the new state (with a
// history entry "/bin/sh -c #(nop) desc") and the layer's size.
func (s *session) withRootfs(ctx context.Context, parent *image.State, desc string, fn func(root string) error) (*image.State, int64, error) {
	return s.withRootfsKey(ctx, parent, desc, func(root, _ string) error { return fn(root) })
}

// withRootfsKey is withRootfs whose fn also gets the writable snapshot's
// key.
func (s *session) withRootfsKey(ctx context.Context, parent *image.State, desc string, fn func(root, key string) error) (*image.State, int64, error) {
	snaps := s.b.cfg.Images.Snapshots()
	key := fmt.Sprintf("build-%d", time.Now().UnixNano())
	mounts, err := snaps.Prepare(ctx, key, parent.ChainID(), map[string]string{"berth.build": "1"})
	if err != nil {
		return nil, 0, err
	}
	// Removed unless CommitLayer made it the layer (then this fails
	// harmlessly: the key is gone).
	defer snaps.Remove(context.WithoutCancel(ctx), key)
	dir, err := os.MkdirTemp(s.b.cfg.Root, "mnt-")
	if err != nil {
		return nil, 0, err
	}
	defer os.Remove(dir)
	t0 := time.Now()
	if err := snapshot.MountAll(mounts, dir); err != nil {
		return nil, 0, err
	}
	ferr := fn(dir, key)
	t1 := time.Now()
	uerr := snapshot.Unmount(dir)
	if ferr != nil {
		return nil, 0, ferr
	}
	if uerr != nil {
		return nil, 0, uerr
	}
	t2 := time.Now()
	layer, err := s.b.cfg.Images.CommitLayer(ctx, key, parent.ChainID())
	if err != nil {
		return nil, 0, err
	}
	s.b.cfg.Log.Debug("build layer", "step", desc, "write", t1.Sub(t0), "unmount", t2.Sub(t1), "commit", time.Since(t2))
	st, size := withLayer(parent, layer, "/bin/sh -c #(nop) "+desc)
	return st, size, nil
}

// mountState mounts st's filesystem read-only (a view), for COPY --from
// and RUN --mount=from.
func (s *session) mountState(ctx context.Context, st *image.State) (string, func(), error) {
	dir, err := os.MkdirTemp(s.b.cfg.Root, "mnt-")
	if err != nil {
		return "", nil, err
	}
	chain := st.ChainID()
	if chain == "" {
		return dir, func() { os.Remove(dir) }, nil
	}
	snaps := s.b.cfg.Images.Snapshots()
	key := fmt.Sprintf("build-view-%d", time.Now().UnixNano())
	mounts, err := snaps.View(ctx, key, chain)
	if err != nil {
		os.Remove(dir)
		return "", nil, err
	}
	if err := snapshot.MountAll(mounts, dir); err != nil {
		snaps.Remove(context.WithoutCancel(ctx), key)
		os.Remove(dir)
		return "", nil, err
	}
	return dir, func() {
		_ = snapshot.Unmount(dir)
		_ = snaps.Remove(context.WithoutCancel(ctx), key)
		os.Remove(dir)
	}, nil
}

// copySpec is a COPY or ADD after expansion.
type copySpec struct {
	name     string
	srcs     []string
	contents []instructions.SourceContent
	dest     string
	from     string
	chown    string
	chmod    string
	excludes []string
	parents  bool
	link     bool
	checksum string
	unpack   bool
	add      bool
	keepGit  *bool // ADD --keep-git-dir
}

// copy runs COPY/ADD. From the context, the sources are selected
// (without what .dockerignore or --exclude leave out) and checksummed for
// the cache key; from a stage or an image, that source's own key or ID
// stands for its content, so a cache hit mounts nothing. On a miss the
// sources are copied into a writable snapshot of the current state, whose
// upper becomes the layer.
func (d *dispatcher) copy(ctx context.Context, c copySpec) error {
	s := d.s
	fromKey := "context"
	var fromState *image.State
	if c.from != "" {
		if j, ok := s.df.stageIndex(c.from, d.sr.idx); ok {
			if !d.sr.dependsOn(j) {
				return errdefs.Newf(errdefs.InvalidArgument, "COPY --from=%s: the stage is not known before the build starts (--from may use only global ARGs)", c.from)
			}
			fromState, fromKey = s.stages[j].state, "stage:"+s.stages[j].key
		} else {
			st, id, err := s.b.cfg.Images.StateOf(ctx, c.from)
			if errdefs.Is(err, errdefs.NotFound) && s.b.cfg.Pull != nil {
				if perr := s.b.cfg.Pull(ctx, c.from, s.opts.AuthConfigs); perr == nil {
					st, id, err = s.b.cfg.Images.StateOf(ctx, c.from)
				}
			}
			if err != nil {
				return err
			}
			fromState, fromKey = st, "image:"+id.String()
		}
	}
	var urls []string
	var gits []*gitSource
	remote := map[string]bool{} // sources that are not context paths
	if c.from == "" {
		for _, src := range c.srcs {
			g, isGit, err := parseGitSource(src)
			if isGit && !c.add {
				return errdefs.Newf(errdefs.InvalidArgument, "source can't be a git ref for COPY")
			}
			if err != nil {
				return err
			}
			switch {
			case isGit:
				gits = append(gits, g)
				remote[src] = true
			case c.add && isURL(src):
				urls = append(urls, src)
				remote[src] = true
			}
		}
	}
	if c.checksum != "" {
		if len(c.srcs) != 1 {
			return errdefs.Newf(errdefs.InvalidArgument, "checksum can't be specified for multiple sources")
		}
		if !remote[c.srcs[0]] {
			return errdefs.Newf(errdefs.InvalidArgument, "checksum requires HTTP(S) or Git sources")
		}
	}
	withExcludes := func(skip func(string) bool, exceptions bool) (func(string) bool, bool, error) {
		if len(c.excludes) > 0 {
			pm, err := patternmatcher.New(c.excludes)
			if err != nil {
				return nil, false, errdefs.With(errdefs.InvalidArgument, err)
			}
			prev := skip
			skip = func(rel string) bool {
				if prev != nil && prev(rel) {
					return true
				}
				// Patterns are relative to the copied directory, which
				// may be anywhere in the source: try every suffix.
				for p := rel; p != ""; {
					if m, _ := pm.MatchesOrParentMatches(p); m {
						return true
					}
					_, rest, ok := strings.Cut(p, "/")
					if !ok {
						break
					}
					p = rest
				}
				return false
			}
			exceptions = exceptions || pm.Exclusions()
		}
		return skip, exceptions, nil
	}
	gather := func(fsys srcFS, skip func(string) bool, exceptions bool) ([]selection, error) {
		skip, exceptions, err := withExcludes(skip, exceptions)
		if err != nil {
			return nil, err
		}
		var sels []selection
		for _, src := range c.srcs {
			if remote[src] {
				continue
			}
			sel, err := selectSources(fsys, src, skip, exceptions)
			if err != nil {
				if errdefs.Is(err, errdefs.NotFound) {
					return nil, errdefs.Newf(errdefs.InvalidArgument, "%s failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", c.name, src)
				}
				return nil, err
			}
			sels = append(sels, sel...)
		}
		return sels, nil
	}
	var sels []selection
	sum := ""
	if fromState == nil {
		var err error
		if sels, err = gather(s.ctx.fsys, s.ctx.ignored, s.ctx.exceptions()); err != nil {
			return err
		}
		if sum, err = checksum(sels); err != nil {
			return err
		}
	}
	gitJobs, gitKeys, gitWhat, cleanupGit, err := s.resolveGit(ctx, gits, c.keepGit, c.checksum)
	if err != nil {
		return err
	}
	defer cleanupGit()
	var inline []string
	for _, sc := range c.contents {
		inline = append(inline, sc.Path, sc.Data)
	}
	dest := c.dest
	if !path.IsAbs(dest) {
		wd := d.st.Config.Config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		keepSlash := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
		dest = path.Join(wd, dest)
		if keepSlash && !strings.HasSuffix(dest, "/") {
			dest += "/"
		}
	}
	if len(c.srcs)+len(c.contents) > 1 && !strings.HasSuffix(dest, "/") {
		return errdefs.Newf(errdefs.InvalidArgument, "When using %s with more than one source file, the destination must be a directory and end with a /", c.name)
	}
	kind := "multi"
	switch {
	case fromState != nil:
		kind = "from"
	case len(sels) == 1 && len(urls)+len(gits)+len(c.contents) == 0 && sels[0].dir:
		kind = "dir"
	case len(gits) > 0 && len(sels)+len(urls)+len(c.contents) == 0:
		kind = "git"
	case len(sels)+len(urls)+len(gits)+len(c.contents) == 1:
		kind = "file"
	}
	what := sum
	if kind == "git" {
		what = gitWhat
	}
	if fromState != nil {
		what = strings.Join(c.srcs, " ")
		if c.from != "" {
			what = c.from + ":" + what
		}
	}
	desc := fmt.Sprintf("%s %s:%s in %s ", c.name, kind, what, dest)
	parts := []any{c.name, fromKey, sum, c.srcs, inline, urls, c.checksum, dest, c.chown, c.chmod, c.excludes, c.parents, c.unpack}
	if len(gits) > 0 {
		// The commits the refs resolved to: a branch that moved is
		// another key.
		parts = append(parts, "git", gitKeys)
	}
	key := cacheKey(d.key, parts...)
	parent := d.st.Clone()
	if fromState != nil {
		// COPY --from: the source's key is a fast alias; the step's own
		// key is the content of what it copies, so a source stage that
		// was rebuilt into the same files leaves this step (and what
		// follows) cached, as BuildKit does.
		if !s.opts.NoCache {
			if e := s.b.cache.get(key); e != nil && e.Canonical != "" {
				s.mu.Lock()
				s.hits = append(s.hits, key, e.Canonical)
				s.mu.Unlock()
				d.st, d.key = e.State, e.Canonical
				d.printf(" ---> Using cache\n ---> %s\n", shortID(d.st.ID().String()))
				return nil
			}
		}
		alias := key
		dir, release, err := s.mountState(ctx, fromState)
		if err != nil {
			return err
		}
		defer release()
		if sels, err = gather(hostFS{root: dir}, nil, false); err != nil {
			return err
		}
		if sum, err = checksum(sels); err != nil {
			return err
		}
		key = cacheKey(d.key, c.name, "content", sum, c.srcs, dest, c.chown, c.chmod, c.excludes, c.parents)
		prev := d.key
		defer func() {
			if d.key == key {
				_ = s.b.cache.put(alias, &cacheEntry{State: d.st, Parent: prev, Canonical: key, Description: desc})
			}
		}()
	}
	// The step's lineage: its key without the content, so that an earlier
	// result of this COPY (another content) can lend it the files that
	// did not change (copylink_linux.go). Not for ADD: extracting an
	// archive changes attributes of paths in place, which must never
	// reach an inode another layer shares.
	lineage := ""
	if !c.add && fromState == nil && len(sels) > 0 {
		// Per kind of context too: a tar's mtimes are not a directory's
		// (whole seconds), so the other kind's files would never match.
		lineage = cacheKey(d.key, "lineage", fmt.Sprintf("%T", s.ctx.fsys), c.name, c.srcs, dest, c.chown, c.chmod, c.excludes, c.parents, c.unpack)
	}
	return d.stepWith(key, desc, func() (*image.State, int64, error) {
		st, size, err := s.withRootfsKey(ctx, parent, desc, func(rootfs, snapKey string) error {
			uid, gid, err := resolveOwner(rootfs, c.chown)
			if err != nil {
				return err
			}
			var mode *fs.FileMode
			if c.chmod != "" {
				m, err := strconv.ParseUint(c.chmod, 8, 32)
				if err != nil || m > 0o7777 {
					return errdefs.Newf(errdefs.InvalidArgument, "invalid chmod parameter %q", c.chmod)
				}
				fm := fs.FileMode(m)
				mode = &fm
			}
			cp := &copier{rootfs: rootfs, uid: uid, gid: gid, mode: mode}
			if lineage != "" {
				if cp.link = s.linkerFor(ctx, lineage, rootfs, snapKey); cp.link != nil {
					defer func() {
						s.b.cfg.Log.Debug("build copy linked", "step", desc, "files", cp.link.linked)
						cp.link.close()
					}()
				}
			}
			for _, sel := range sels {
				to := dest
				if c.parents {
					// --parents keeps the source's directories:
					// COPY --parents a/b/f /d/ writes /d/a/b/f.
					to = path.Join(dest, path.Dir(sel.match)) + "/"
					if sel.dir {
						to = path.Join(dest, sel.match) + "/"
					}
				}
				if err := cp.copySelection(sel, to, c.add && c.unpack); err != nil {
					return err
				}
			}
			for _, j := range gitJobs {
				root, err := j.checkout(ctx)
				if err != nil {
					return err
				}
				skip, exceptions, err := withExcludes(nil, false)
				if err != nil {
					return err
				}
				gsels, err := selectSources(hostFS{root: root}, "", skip, exceptions)
				if err != nil {
					return err
				}
				for _, sel := range gsels {
					if err := cp.copySelection(sel, dest, false); err != nil {
						return err
					}
				}
			}
			for _, sc := range c.contents {
				target := dest
				if strings.HasSuffix(dest, "/") {
					target = path.Join(dest, sc.Path)
				}
				if err := cp.writeFile(target, []byte(sc.Data), 0o644, time.Now()); err != nil {
					return err
				}
			}
			for _, u := range urls {
				if err := cp.fetch(ctx, u, dest, c.checksum); err != nil {
					return err
				}
			}
			return nil
		})
		// Only a result written here from this kind of context: a cache
		// hit may be another kind's (the keys are the same).
		if err == nil && lineage != "" && st.ChainID() != parent.ChainID() {
			s.b.lineage.Store(lineage, st.ChainID())
		}
		return st, size, err
	}, true)
}

// linkerFor opens a linker from the layer of the lineage's last result
// into the writable snapshot snapKey mounted at rootfs; nil when there is
// none or it cannot be used.
func (s *session) linkerFor(ctx context.Context, lineage, rootfs, snapKey string) *linker {
	v, ok := s.b.lineage.Load(lineage)
	if !ok {
		return nil
	}
	snaps := s.b.cfg.Images.Snapshots()
	prev, _, err := snaps.Upper(ctx, v.(string))
	if err != nil {
		return nil
	}
	upper, lowers, err := snaps.Upper(ctx, snapKey)
	if err != nil {
		return nil
	}
	return openLinker(rootfs, prev, upper, lowers)
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// copier writes files into a mounted root filesystem, resolving every
// destination inside it.
type copier struct {
	rootfs   string
	uid, gid int
	mode     *fs.FileMode
	link     *linker // files of an earlier result of the step to reuse (copylink_linux.go); nil: none
	// linkRoot is the destination directory of the directory being
	// copied until it is known to be in the upper.
	linkRoot string
}

// copySelection copies one source: a directory's content into dest, a
// file to dest (or dest/<name> when dest is a directory), a local tar
// archive extracted into dest for ADD.
func (cp *copier) copySelection(sel selection, dest string, unpack bool) error {
	if sel.dir {
		if err := cp.mkdir(dest); err != nil {
			return err
		}
		root, err := secureJoin(cp.rootfs, dest)
		if err != nil {
			return err
		}
		if cp.link != nil {
			cp.linkRoot = root
			defer func() { cp.linkRoot = "" }()
		}
		// Directories this loop made or checked are real directories:
		// their children are joined to them without resolving the path
		// again (the walk lists a directory before what it holds).
		verified := map[string]string{"": root}
		for _, f := range sel.files {
			dir := path.Dir(f.rel)
			if dir == "." {
				dir = ""
			}
			parent, ok := verified[dir]
			if !ok {
				if parent, err = secureJoin(cp.rootfs, path.Join(dest, dir)); err != nil {
					return err
				}
			}
			h := filepath.Join(parent, path.Base(f.rel))
			if err := cp.copyTo(sel.fsys, f, h, path.Join(dest, f.rel)); err != nil {
				return err
			}
			if f.info.IsDir() {
				verified[f.rel] = h
			}
		}
		return nil
	}
	f := sel.files[0]
	if unpack && f.info.Mode().IsRegular() {
		if ok, err := cp.tryUnpack(sel.fsys, f.path, dest); ok || err != nil {
			return err
		}
	}
	target := dest
	if strings.HasSuffix(dest, "/") || cp.isDir(dest) {
		target = path.Join(dest, sel.base)
	}
	if err := cp.mkdir(path.Dir(target)); err != nil {
		return err
	}
	return cp.copyOne(sel.fsys, f, target)
}

func (cp *copier) isDir(p string) bool {
	h, err := secureJoin(cp.rootfs, p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(h)
	return err == nil && fi.IsDir()
}

// mkdir creates p (inside the rootfs) and its missing parents, owned by
// the copy's owner.
func (cp *copier) mkdir(p string) error {
	h, err := secureJoin(cp.rootfs, p)
	if err != nil {
		return err
	}
	return mkdirAllOwned(h, cp.uid, cp.gid)
}

func mkdirAllOwned(p string, uid, gid int) error {
	if fi, err := os.Stat(p); err == nil {
		if fi.IsDir() {
			return nil
		}
		return errdefs.Newf(errdefs.InvalidArgument, "%s exists and is not a directory", p)
	}
	if err := mkdirAllOwned(filepath.Dir(p), uid, gid); err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	return os.Lchown(p, uid, gid)
}

func (cp *copier) perm(m fs.FileMode) fs.FileMode {
	if cp.mode != nil {
		return *cp.mode
	}
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

func unixMode(m fs.FileMode) uint32 {
	u := uint32(m & fs.ModePerm)
	if m&fs.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

// copyOne copies one context entry to target (a path in the rootfs).
func (cp *copier) copyOne(fsys srcFS, f source, target string) error {
	parent, err := secureJoin(cp.rootfs, path.Dir(target))
	if err != nil {
		return err
	}
	return cp.copyTo(fsys, f, filepath.Join(parent, path.Base(target)), target)
}

// copyTo copies f to the host path h (target is its name in the rootfs,
// for messages). The last element of h is never followed.
func (cp *copier) copyTo(fsys srcFS, f source, h, target string) error {
	m := f.info.Mode()
	switch {
	case m.IsDir():
		if fi, err := os.Lstat(h); err == nil && !fi.IsDir() {
			os.RemoveAll(h)
		}
		if err := os.Mkdir(h, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
		if err := unix.Chmod(h, unixMode(cp.perm(m))); err != nil {
			return err
		}
		return os.Lchown(h, cp.uid, cp.gid)
	case m&fs.ModeSymlink != 0:
		t, err := fsys.Readlink(f.path)
		if err != nil {
			return err
		}
		os.RemoveAll(h)
		if err := os.Symlink(t, h); err != nil {
			return err
		}
		return os.Lchown(h, cp.uid, cp.gid)
	case m.IsRegular():
		if cp.link != nil {
			if cp.linkRoot != "" {
				// Links go into the upper: the destination directory must
				// be there, as creating a file in it would have put it
				// (overlay copies a directory up on any attribute change).
				var st unix.Stat_t
				if err := unix.Lstat(cp.linkRoot, &st); err != nil {
					return err
				}
				if err := unix.Lchown(cp.linkRoot, int(st.Uid), int(st.Gid)); err != nil {
					return err
				}
				cp.linkRoot = ""
			}
			if cp.link.try(fsys, f, h, unixMode(cp.perm(m)), cp.uid, cp.gid) {
				return nil
			}
		}
		in, err := fsys.Open(f.path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(h, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
		if os.IsExist(err) {
			if fi, err := os.Lstat(h); err == nil && fi.IsDir() {
				return errdefs.Newf(errdefs.InvalidArgument, "cannot copy to %s: is a directory", target)
			}
			os.Remove(h)
			out, err = os.OpenFile(h, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o600)
		}
		if err != nil {
			return err
		}
		// Owner, mode and times through the descriptor: no more path
		// lookups through the overlay.
		err = copySmall(out, in, f.info.Size())
		if err == nil {
			err = out.Chown(cp.uid, cp.gid)
		}
		if err == nil {
			err = unix.Fchmod(int(out.Fd()), unixMode(cp.perm(m)))
		}
		if err == nil {
			mt := f.info.ModTime()
			tv := unix.NsecToTimeval(mt.UnixNano())
			err = unix.Futimes(int(out.Fd()), []unix.Timeval{tv, tv})
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return nil
}

// writeFile writes data at target (a rootfs path).
func (cp *copier) writeFile(target string, data []byte, perm fs.FileMode, mtime time.Time) error {
	if err := cp.mkdir(path.Dir(target)); err != nil {
		return err
	}
	parent, err := secureJoin(cp.rootfs, path.Dir(target))
	if err != nil {
		return err
	}
	h := filepath.Join(parent, path.Base(target))
	os.Remove(h)
	if err := os.WriteFile(h, data, 0o600); err != nil {
		return err
	}
	if err := os.Lchown(h, cp.uid, cp.gid); err != nil {
		return err
	}
	if err := unix.Chmod(h, unixMode(cp.perm(perm))); err != nil {
		return err
	}
	return os.Chtimes(h, mtime, mtime)
}

// tryUnpack extracts a local tar archive (plain, gzip, bzip2, xz, zstd)
// into dest for ADD; it reports false for other files.
func (cp *copier) tryUnpack(fsys srcFS, file, dest string) (bool, error) {
	f, err := fsys.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	head, _ := br.Peek(512)
	var r io.Reader = br
	if archive.Detect(head) != archive.Uncompressed {
		dr, _, err := archive.DecompressStream(br)
		if err != nil {
			return false, nil
		}
		defer dr.Close()
		bdr := bufio.NewReader(dr)
		head, _ = bdr.Peek(512)
		r = bdr
	}
	if !isTar(head) {
		return false, nil
	}
	if err := cp.mkdir(dest); err != nil {
		return true, err
	}
	destHost, err := secureJoin(cp.rootfs, dest)
	if err != nil {
		return true, err
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return true, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("ADD: %s: %w", path.Base(file), err))
		}
		name, err := contextName(hdr.Name)
		if err != nil {
			return true, err
		}
		if name == "" {
			continue
		}
		parent, err := secureJoin(destHost, path.Dir(name))
		if err != nil {
			return true, err
		}
		if err := mkdirAllOwned(parent, 0, 0); err != nil {
			return true, err
		}
		h := filepath.Join(parent, path.Base(name))
		mode := fs.FileMode(hdr.Mode) & fs.ModePerm
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.Mkdir(h, mode); err != nil && !os.IsExist(err) {
				return true, err
			}
		case tar.TypeReg, tar.TypeRegA:
			os.Remove(h)
			out, err := os.OpenFile(h, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, mode)
			if err != nil {
				return true, err
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return true, err
			}
		case tar.TypeSymlink:
			os.RemoveAll(h)
			if err := os.Symlink(hdr.Linkname, h); err != nil {
				return true, err
			}
		case tar.TypeLink:
			ln, err := contextName(hdr.Linkname)
			if err != nil {
				return true, err
			}
			src, err := secureJoin(destHost, ln)
			if err != nil {
				return true, err
			}
			os.Remove(h)
			if err := os.Link(src, h); err != nil {
				return true, err
			}
		default:
			continue
		}
		_ = os.Lchown(h, hdr.Uid, hdr.Gid)
		if hdr.Typeflag != tar.TypeSymlink {
			_ = unix.Chmod(h, uint32(hdr.Mode&0o7777))
			_ = os.Chtimes(h, hdr.ModTime, hdr.ModTime)
		}
	}
}

// fetch downloads an ADD URL to dest (dest/<name> when dest is a
// directory), verifying --checksum when given.
func (cp *copier) fetch(ctx context.Context, u, dest, sum string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return errdefs.With(errdefs.InvalidArgument, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return errdefs.With(errdefs.Unavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return errdefs.Newf(errdefs.Unavailable, "ADD %s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<30))
	if err != nil {
		return err
	}
	if sum != "" {
		want, err := digest.Parse(sum)
		if err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("invalid checksum %q: %w", sum, err))
		}
		got := sha256.Sum256(data)
		if want.Algorithm() != digest.SHA256 || want.Encoded() != hex.EncodeToString(got[:]) {
			return errdefs.Newf(errdefs.InvalidArgument, "digest mismatch for %s: expected %s, got sha256:%x", u, sum, got)
		}
	}
	target := dest
	if strings.HasSuffix(dest, "/") || cp.isDir(dest) {
		name := "index.html"
		if pu, err := url.Parse(u); err == nil && path.Base(pu.Path) != "/" && path.Base(pu.Path) != "." {
			name = path.Base(pu.Path)
		}
		target = path.Join(dest, name)
	}
	mtime := time.Now()
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mtime = lm
	}
	return cp.writeFile(target, data, 0o600, mtime)
}

// resolveOwner parses --chown (user[:group], names looked up in the
// image's /etc/passwd and /etc/group); empty means root.
func resolveOwner(rootfs, chown string) (int, int, error) {
	if chown == "" {
		return 0, 0, nil
	}
	user, group, hasGroup := strings.Cut(chown, ":")
	uid, gid := -1, -1
	if n, err := strconv.Atoi(user); err == nil {
		uid = n
	} else {
		e, ok := lookupDB(rootfs, "/etc/passwd", user)
		if !ok {
			return 0, 0, errdefs.Newf(errdefs.InvalidArgument, "unable to convert uid/gid chown string to host mapping: can't find uid for user %s: no such user: %s", user, user)
		}
		uid, _ = strconv.Atoi(e[2])
		if !hasGroup {
			gid, _ = strconv.Atoi(e[3])
		}
	}
	if hasGroup {
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		} else {
			e, ok := lookupDB(rootfs, "/etc/group", group)
			if !ok {
				return 0, 0, errdefs.Newf(errdefs.InvalidArgument, "unable to convert uid/gid chown string to host mapping: can't find gid for group %s: no such group: %s", group, group)
			}
			gid, _ = strconv.Atoi(e[2])
		}
	} else if gid < 0 {
		gid = uid
	}
	return uid, gid, nil
}

func lookupDB(rootfs, file, name string) ([]string, bool) {
	p, err := secureJoin(rootfs, file)
	if err != nil {
		return nil, false
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[0] == name {
			for len(f) < 4 {
				f = append(f, "")
			}
			return f, true
		}
	}
	return nil, false
}
