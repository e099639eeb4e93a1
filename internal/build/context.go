package build

import (
	"archive/tar"
	"bufio"
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
	"syscall"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
)

// buildContext is the build's context directory: the client's tar
// extracted under a private directory, with its .dockerignore patterns.
type buildContext struct {
	root string
	// ignore excludes paths (relative, slash-separated) from COPY/ADD.
	ignore *patternmatcher.PatternMatcher
	// sums caches content checksums of context paths.
	sums map[string]string
}

// errNotArchive: the body was not a tar (possibly compressed): it is the
// Dockerfile itself (`docker build - < Dockerfile`).
var errNotArchive = errors.New("not an archive")

// extractContext unpacks the build context r into dir. A body that is
// not a (plain, gzip, bzip2, xz or zstd) tar is returned as the
// Dockerfile, with an empty context. Entries are written below dir only:
// a name that climbs out of the context ("../x", or through a symlink the
// context holds) is refused with InvalidArgument.
func extractContext(r io.Reader, dir string) ([]byte, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	var src io.Reader = br
	if archive.Detect(head) != archive.Uncompressed {
		dr, _, err := archive.DecompressStream(br)
		if err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("build context: %w", err))
		}
		defer dr.Close()
		bdr := bufio.NewReaderSize(dr, 64<<10)
		head, _ = bdr.Peek(512)
		src = bdr
	}
	if !isTar(head) {
		if len(head) == 0 {
			return nil, nil
		}
		b, err := io.ReadAll(io.LimitReader(src, 16<<20))
		if err != nil {
			return nil, err
		}
		return b, errNotArchive
	}
	tr := tar.NewReader(src)
	type dirTime struct {
		p string
		t time.Time
	}
	var dirs []dirTime
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("build context: %w", err))
		}
		name, err := contextName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if name == "" {
			continue
		}
		parent, err := securejoin.SecureJoin(dir, path.Dir(name))
		if err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("build context: %q: %w", hdr.Name, err))
		}
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, err
		}
		target := filepath.Join(parent, path.Base(name))
		mode := fs.FileMode(hdr.Mode) & fs.ModePerm
		switch hdr.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(target); err == nil && !fi.IsDir() {
				os.RemoveAll(target)
			}
			if err := os.MkdirAll(target, 0o755); err != nil {
				return nil, err
			}
			_ = os.Chmod(target, mode|0o700)
			dirs = append(dirs, dirTime{target, hdr.ModTime})
		case tar.TypeReg, tar.TypeRegA:
			os.RemoveAll(target)
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscallNoFollow, mode)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("build context: %q: %w", hdr.Name, err))
			}
			_ = os.Chmod(target, mode)
			_ = os.Chtimes(target, hdr.ModTime, hdr.ModTime)
		case tar.TypeSymlink:
			os.RemoveAll(target)
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return nil, err
			}
		case tar.TypeLink:
			ln, err := contextName(hdr.Linkname)
			if err != nil {
				return nil, err
			}
			src, err := securejoin.SecureJoin(dir, ln)
			if err != nil {
				return nil, errdefs.With(errdefs.InvalidArgument, err)
			}
			os.RemoveAll(target)
			if err := os.Link(src, target); err != nil {
				return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("build context: hardlink %q: %w", hdr.Name, err))
			}
		default:
			// Devices, fifos: not meaningful in a build context.
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Chtimes(dirs[i].p, dirs[i].t, dirs[i].t)
	}
	return nil, nil
}

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

// loadIgnore reads .dockerignore (or <dockerfile>.dockerignore next to
// the Dockerfile, which wins) from the context.
func (c *buildContext) loadIgnore(dockerfile string) error {
	candidates := []string{dockerfile + ".dockerignore", ".dockerignore"}
	for _, cand := range candidates {
		p, err := securejoin.SecureJoin(c.root, cand)
		if err != nil {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		patterns, err := ignorefile.ReadAll(f)
		f.Close()
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

// source is one file selected for COPY/ADD: its path on the host and its
// name relative to the selected source root.
type source struct {
	host string
	rel  string
	info fs.FileInfo
}

// selection is what one COPY/ADD source argument selected.
type selection struct {
	// root is the selected path on the host; dir reports it is a
	// directory (its content is copied, not itself).
	root  string
	base  string
	dir   bool
	files []source // root's descendants (dir) or root itself
}

// selectSources resolves src (a path or glob relative to root, which is
// the context or a stage's root filesystem) into selections, skipping
// what skip excludes (paths relative to root). Symlinks in src are
// resolved inside root.
// A skipped directory is still walked when exceptions is set (the
// patterns have "!" exceptions that may re-include something below it).
func selectSources(root, src string, skip func(rel string) bool, exceptions bool) ([]selection, error) {
	clean := path.Clean("/" + filepath.ToSlash(src))[1:]
	var matches []string
	if hasGlob(clean) {
		var err error
		matches, err = globIn(root, clean, skip)
		if err != nil {
			return nil, err
		}
	} else {
		matches = []string{clean}
	}
	var out []selection
	for _, m := range matches {
		host, err := securejoin.SecureJoin(root, m)
		if err != nil {
			return nil, err
		}
		fi, err := os.Lstat(host)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, err
		}
		if skip != nil && skip(m) && m != "" {
			continue
		}
		sel := selection{root: host, base: path.Base("/" + m)}
		if fi.IsDir() {
			sel.dir = true
			err := filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(host, p)
				if rel == "." {
					return nil
				}
				rel = filepath.ToSlash(rel)
				full := path.Join(m, rel)
				if skip != nil && skip(full) {
					if d.IsDir() && !exceptions {
						return filepath.SkipDir
					}
					if !d.IsDir() {
						return nil
					}
				}
				info, err := d.Info()
				if err != nil {
					return err
				}
				sel.files = append(sel.files, source{host: p, rel: rel, info: info})
				return nil
			})
			if err != nil {
				return nil, err
			}
		} else {
			sel.files = []source{{host: host, rel: sel.base, info: fi}}
		}
		out = append(out, sel)
	}
	if len(out) == 0 {
		return nil, errdefs.Newf(errdefs.NotFound, "COPY failed: file not found in build context or excluded by .dockerignore: stat %s: file does not exist", src)
	}
	return out, nil
}

func hasGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// globIn matches pattern (slash-separated, relative) against root's
// tree, segment by segment, without leaving root.
func globIn(root, pattern string, skip func(string) bool) ([]string, error) {
	segs := strings.Split(pattern, "/")
	cur := []string{""}
	for _, seg := range segs {
		var next []string
		for _, c := range cur {
			if !hasGlob(seg) {
				next = append(next, path.Join(c, seg))
				continue
			}
			host, err := securejoin.SecureJoin(root, c)
			if err != nil {
				continue
			}
			ents, err := os.ReadDir(host)
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
		if skip != nil && skip(c) {
			continue
		}
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

// checksum hashes what a selection would copy: names, types, permission
// bits, symlink targets and file contents (not times or owners, which a
// COPY sets anyway), so an unchanged source gives the same cache key
// whatever its mtime.
func checksum(sels []selection) (string, error) {
	h := sha256.New()
	for _, s := range sels {
		fmt.Fprintf(h, "sel %s %v\n", s.base, s.dir)
		for _, f := range s.files {
			if err := hashFile(h, f); err != nil {
				return "", err
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(h hash.Hash, f source) error {
	mode := f.info.Mode()
	fmt.Fprintf(h, "%s\x00%o\x00", f.rel, uint32(mode.Perm())|uint32(mode.Type()>>20))
	switch {
	case mode.IsRegular():
		fmt.Fprintf(h, "%d\x00", f.info.Size())
		fh, err := os.Open(f.host)
		if err != nil {
			return err
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		return err
	case mode&fs.ModeSymlink != 0:
		t, err := os.Readlink(f.host)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00", t)
	}
	return nil
}
