package build

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/berth-dev/berth/internal/errdefs"
)

// buildContext is the build's context as the client sent it, with its
// .dockerignore patterns.
type buildContext struct {
	fsys contextFS
	// dir is the build's private directory (the spool, and the context
	// unpacked on demand for RUN --mount=type=bind).
	dir      string
	unpacked string
	// root is where dir is made when the build had none (scratchMade).
	root        string
	scratchMade bool
	unpackMu    sync.Mutex
	// ignore excludes paths (relative, slash-separated) from COPY/ADD.
	ignore *patternmatcher.PatternMatcher
}

// errNotArchive: the body was not a tar (possibly compressed): it is the
// Dockerfile itself (`docker build - < Dockerfile`).
var errNotArchive = errors.New("not an archive")

// contextName cleans a context entry's name; one that leaves the context
// is an error.
func contextName(n string) (string, error) {
	n = strings.TrimPrefix(filepath.ToSlash(n), "./")
	if n == "" || n == "." || n == "./" {
		return "", nil
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", errdefs.Newf(errdefs.InvalidArgument, "build context: entry %q is outside the context", n)
		}
	}
	c := path.Clean("/" + n)[1:]
	return c, nil
}

const syscallNoFollow = syscall.O_NOFOLLOW

func isTar(head []byte) bool {
	if len(head) < 512 {
		// A tiny tar still has a 512-byte header (and two zero blocks).
		return false
	}
	return bytes.Equal(head[257:262], []byte("ustar")) || (bytes.Equal(head[257:263], []byte("ustar\x00")))
}

// loadIgnore reads .dockerignore (or <dockerfile>.dockerignore, which
// wins) from the context.
func (c *buildContext) loadIgnore(dockerfile string) error {
	for _, cand := range []string{dockerfile + ".dockerignore", ".dockerignore"} {
		b, err := readFile(c.fsys, cand)
		if err != nil {
			continue
		}
		patterns, err := ignorefile.ReadAll(bytes.NewReader(b))
		if err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("%s: %w", cand, err))
		}
		pm, err := patternmatcher.New(patterns)
		if err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("%s: %w", cand, err))
		}
		c.ignore = pm
		return nil
	}
	return nil
}

// exceptions reports whether .dockerignore has "!" patterns.
func (c *buildContext) exceptions() bool {
	return c.ignore != nil && c.ignore.Exclusions()
}

// ignored reports whether rel (slash-separated, relative to the context
// root) is excluded by .dockerignore.
func (c *buildContext) ignored(rel string) bool {
	if c.ignore == nil || rel == "" || rel == "." {
		return false
	}
	m, err := c.ignore.MatchesOrParentMatches(rel)
	return err == nil && m
}

// source is one entry selected for COPY/ADD: its path in the source
// filesystem and its name relative to the selected root.
type source struct {
	path string
	rel  string
	info fs.FileInfo
}

// selection is what one COPY/ADD source argument selected.
type selection struct {
	fsys srcFS
	// base is the name of the selected path; dir reports it is a
	// directory (its content is copied, not itself).
	base  string
	dir   bool
	files []source // the directory's descendants, or the file itself
	// match is the selected path (relative to the source root), for
	// COPY --parents.
	match string
}

// selectSources resolves src (a path or glob relative to fsys's root)
// into selections, skipping what skip excludes (paths relative to the
// root). Symlinks in src are followed inside the root. A skipped
// directory is still walked when exceptions is set (the patterns have
// "!" exceptions that may re-include something below it).
func selectSources(fsys srcFS, src string, skip func(rel string) bool, exceptions bool) ([]selection, error) {
	clean := path.Clean("/" + filepath.ToSlash(src))[1:]
	matches := []string{clean}
	if hasGlob(clean) {
		matches = globIn(fsys, clean, skip)
	}
	var out []selection
	for _, m := range matches {
		r, err := fsys.Resolve(m)
		if err != nil {
			return nil, err
		}
		fi, err := fsys.Lstat(r)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				continue
			}
			return nil, err
		}
		if skip != nil && m != "" && skip(m) && !(fi.IsDir() && exceptions) {
			continue
		}
		sel := selection{fsys: fsys, base: path.Base("/" + m), match: m}
		if !fi.IsDir() {
			sel.files = []source{{path: r, rel: sel.base, info: fi}}
			out = append(out, sel)
			continue
		}
		sel.dir = true
		var walk func(dir, rel string) error
		walk = func(dir, rel string) error {
			ents, err := fsys.ReadDir(dir)
			if err != nil {
				return err
			}
			for _, e := range ents {
				childRel := path.Join(rel, e.Name())
				childPath := path.Join(dir, e.Name())
				if skip != nil && skip(path.Join(m, childRel)) {
					if !e.IsDir() || !exceptions {
						continue
					}
				}
				sel.files = append(sel.files, source{path: childPath, rel: childRel, info: e})
				if e.IsDir() {
					if err := walk(childPath, childRel); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if err := walk(r, ""); err != nil {
			return nil, err
		}
		out = append(out, sel)
	}
	if len(out) == 0 {
		return nil, errdefs.Newf(errdefs.NotFound, "file not found in build context or excluded by .dockerignore: stat %s: file does not exist", src)
	}
	return out, nil
}

func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// globIn matches pattern (slash-separated, relative) against fsys's tree
// segment by segment.
func globIn(fsys srcFS, pattern string, skip func(string) bool) []string {
	cur := []string{""}
	for _, seg := range strings.Split(pattern, "/") {
		var next []string
		for _, c := range cur {
			if !hasGlob(seg) {
				next = append(next, path.Join(c, seg))
				continue
			}
			r, err := fsys.Resolve(c)
			if err != nil {
				continue
			}
			ents, err := fsys.ReadDir(r)
			if err != nil {
				continue
			}
			for _, e := range ents {
				if ok, _ := path.Match(seg, e.Name()); ok {
					next = append(next, path.Join(c, e.Name()))
				}
			}
		}
		cur = next
	}
	var out []string
	for _, c := range cur {
		if skip == nil || !skip(c) {
			out = append(out, c)
		}
	}
	sort.Strings(out)
	return out
}

// checksum hashes what selections would copy: names, types, permission
// bits, symlink targets and file contents (not times or owners, which a
// COPY sets anyway), so an unchanged source gives the same cache key
// whatever its mtime.
func checksum(sels []selection) (string, error) {
	h := sha256.New()
	for _, s := range sels {
		fmt.Fprintf(h, "sel %s %v\n", s.base, s.dir)
		for _, f := range s.files {
			if err := hashFile(h, s.fsys, f); err != nil {
				return "", err
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h hash.Hash, fsys srcFS, f source) error {
	mode := f.info.Mode()
	fmt.Fprintf(h, "%s\x00%o\x00%o\x00", f.rel, uint32(mode.Perm()), uint32(mode.Type()>>20)|uint32(mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)>>20))
	switch {
	case mode.IsRegular():
		fmt.Fprintf(h, "%d\x00", f.info.Size())
		if sm, ok := fsys.(infoSummer); ok {
			if sum, ok := sm.SumInfo(f.path, f.info); ok {
				h.Write(sum)
				return nil
			}
		} else if sm, ok := fsys.(summer); ok {
			if sum, ok := sm.Sum(f.path); ok {
				h.Write(sum)
				return nil
			}
		}
		fh, err := fsys.Open(f.path)
		if err != nil {
			return err
		}
		c := sha256.New()
		_, err = io.Copy(c, fh)
		fh.Close()
		h.Write(c.Sum(nil))
		return err
	case mode&fs.ModeSymlink != 0:
		t, err := fsys.Readlink(f.path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00", t)
	}
	return nil
}

// unpack writes the context out as a directory tree (once per build),
// for RUN --mount=type=bind from the context.
func (c *buildContext) unpack() (string, error) {
	// Stages run in parallel: one unpack per build.
	c.unpackMu.Lock()
	defer c.unpackMu.Unlock()
	if c.unpacked != "" {
		return c.unpacked, nil
	}
	if c.dir == "" {
		d, err := os.MkdirTemp(c.root, "ctx-")
		if err != nil {
			return "", err
		}
		c.dir, c.scratchMade = d, true
	}
	root := filepath.Join(c.dir, "tree")
	if d, ok := c.fsys.(dirFS); ok {
		if err := unpackDir(d.root, root, c.ignored, c.exceptions()); err != nil {
			return "", err
		}
		c.unpacked = root
		return root, nil
	}
	if err := os.Mkdir(root, 0o755); err != nil {
		return "", err
	}
	t := c.fsys.(*tarFS)
	var names []string
	for n := range t.entries {
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		e := t.entries[n]
		p := filepath.Join(root, filepath.FromSlash(n))
		switch {
		case e.IsDir():
			if err := os.MkdirAll(p, 0o755); err != nil {
				return "", err
			}
		case e.mode&fs.ModeSymlink != 0:
			if err := os.Symlink(e.link, p); err != nil {
				return "", err
			}
		case e.mode.IsRegular():
			r, _ := t.Open(n)
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscallNoFollow, e.mode.Perm())
			if err != nil {
				return "", err
			}
			_, err = io.Copy(f, r)
			f.Close()
			if err != nil {
				return "", err
			}
		}
	}
	c.unpacked = root
	return root, nil
}
