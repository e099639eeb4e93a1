package image

import (
	"context"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ChangeKind is Docker's kind of filesystem change: 0 modified, 1 added,
// 2 deleted (GET /containers/{id}/changes).
type ChangeKind uint8

const (
	ChangeModify ChangeKind = 0
	ChangeAdd    ChangeKind = 1
	ChangeDelete ChangeKind = 2
)

// Change is one changed path of a writable snapshot, absolute as the
// container sees it.
type Change struct {
	Path string
	Kind ChangeKind
}

// mountStubs are the files the runtime creates in a container's root as
// targets of its bind mounts when the image lacks them, and the empty
// directories it mounts /proc, /sys and /dev on. They are not the
// container's changes: Docker keeps them in an init layer under the
// container's writable one.
var mountStubs = map[string]bool{
	"etc/hosts": true, "etc/resolv.conf": true, "etc/hostname": true, ".dockerenv": true,
	"proc": true, "sys": true, "dev": true,
}

// stubFilter leaves out mount targets a run created: an empty regular
// file or empty directory at one of the names, that no lower layer has,
// and directories (absent below) holding nothing but such stubs.
type stubFilter struct {
	names     map[string]bool
	ancestors map[string]bool
	upper     string
	lowers    []string
}

func newStubFilter(upper string, lowers []string, extra []string) *stubFilter {
	f := &stubFilter{names: map[string]bool{}, ancestors: map[string]bool{}, upper: upper, lowers: lowers}
	for n := range mountStubs {
		f.add(n)
	}
	for _, n := range extra {
		f.add(n)
	}
	return f
}

func (f *stubFilter) add(name string) {
	name = strings.Trim(path.Clean("/"+name), "/")
	if name == "" {
		return
	}
	f.names[name] = true
	for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
		f.ancestors[d] = true
	}
}

func (f *stubFilter) skip(name string, mode fs.FileMode, size int64) bool {
	switch {
	case f.names[name] && (mode.IsRegular() && size == 0 || mode.IsDir() && f.emptyDir(name)):
	case f.ancestors[name] && mode.IsDir() && f.onlyStubs(name):
	default:
		return false
	}
	return !inLowers(f.lowers, name)
}

func (f *stubFilter) emptyDir(name string) bool {
	ents, err := os.ReadDir(filepath.Join(f.upper, name))
	return err == nil && len(ents) == 0
}

// onlyStubs: everything below the directory name is a stub.
func (f *stubFilter) onlyStubs(name string) bool {
	ents, err := os.ReadDir(filepath.Join(f.upper, name))
	if err != nil {
		return false
	}
	for _, e := range ents {
		child := path.Join(name, e.Name())
		info, err := e.Info()
		if err != nil {
			return false
		}
		if !f.skip(child, info.Mode(), info.Size()) {
			return false
		}
	}
	return true
}

// Changes lists what the active snapshot key changed over its parents:
// overlay whiteouts are deletions, entries the lower layers do not have
// are additions, others modifications. A directory is reported modified
// when its own owner or mode changed, it was made opaque, or something
// below it changed. Sorted by path, as dockerd.
func (s *Service) Changes(ctx context.Context, key string) ([]Change, error) {
	upper, lowers, err := s.snaps.Upper(ctx, key)
	if err != nil {
		return nil, err
	}
	return changes(ctx, upper, lowers, newStubFilter(upper, lowers, nil))
}

func changes(ctx context.Context, upper string, lowers []string, stubs *stubFilter) ([]Change, error) {
	var out []Change
	// dirs that exist below and are reported only if something under them is.
	pending := map[string]bool{}
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		mode := st.Mode & unix.S_IFMT
		if mode == unix.S_IFCHR && st.Rdev == 0 {
			out = append(out, Change{Path: "/" + rel, Kind: ChangeDelete})
			return nil
		}
		if (mode == unix.S_IFREG || mode == unix.S_IFDIR) && stubs.skip(rel, d.Type(), st.Size) {
			if mode == unix.S_IFDIR {
				return filepath.SkipDir
			}
			return nil
		}
		lst, found := lowerStat(lowers, rel)
		switch {
		case !found:
			out = append(out, Change{Path: "/" + rel, Kind: ChangeAdd})
		case mode == unix.S_IFDIR && lst.Mode&unix.S_IFMT == unix.S_IFDIR:
			if st.Mode != lst.Mode || st.Uid != lst.Uid || st.Gid != lst.Gid || isOpaque(p) {
				out = append(out, Change{Path: "/" + rel, Kind: ChangeModify})
			} else {
				pending[rel] = true
			}
		default:
			out = append(out, Change{Path: "/" + rel, Kind: ChangeModify})
		}
		return nil
	})
	if err != nil {
		return nil, errdefs.With(errdefs.Internal, err)
	}
	// A pending directory is modified when something under it changed.
	have := map[string]bool{}
	for _, c := range out {
		have[c.Path] = true
	}
	for _, c := range out {
		for dir := path.Dir(strings.TrimPrefix(c.Path, "/")); dir != "." && dir != "/"; dir = path.Dir(dir) {
			if pending[dir] && !have["/"+dir] {
				have["/"+dir] = true
				out = append(out, Change{Path: "/" + dir, Kind: ChangeModify})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func isOpaque(p string) bool {
	for _, k := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		buf := make([]byte, 4)
		if n, err := unix.Lgetxattr(p, k, buf); err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// lowerStat finds rel in the lower layers (topmost first) as overlay
// would: a whiteout hides it, an opaque directory hides what is below,
// and no symlink is followed (a symlinked parent means rel is not there).
func lowerStat(lowers []string, rel string) (unix.Stat_t, bool) {
	parts := strings.Split(rel, "/")
	for _, l := range lowers {
		p := l
		stop := false
		for i, part := range parts {
			p = filepath.Join(p, part)
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				break
			}
			kind := st.Mode & unix.S_IFMT
			if kind == unix.S_IFCHR && st.Rdev == 0 {
				return unix.Stat_t{}, false // whited out here
			}
			if i == len(parts)-1 {
				return st, true
			}
			if kind != unix.S_IFDIR {
				break
			}
			if isOpaque(p) {
				// Lower layers cannot contribute below an opaque dir,
				// but this layer still may.
				stop = true
			}
		}
		if stop {
			return unix.Stat_t{}, false
		}
	}
	return unix.Stat_t{}, false
}

func inLowers(lowers []string, rel string) bool {
	_, ok := lowerStat(lowers, rel)
	return ok
}
