package image

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// NewLayerLinked is NewLayer for a snapshot that will never change again
// (a build step's container that has exited): the layer's snapshot gets
// the upper's files as hard links instead of a second copy unpacked from
// the diff. Directories are recreated (with the overlay opaque marker,
// owner, mode, xattrs and times); overlay's own bookkeeping xattrs are
// removed from the linked inodes. The diff still feeds the blob and the
// diff ID. On any failure to link it falls back to NewLayer.
func (s *Service) NewLayerLinked(ctx context.Context, key string, parentChain string, stubs ...string) (*Layer, error) {
	upper, lowers, err := s.snaps.Upper(ctx, key)
	if err != nil {
		return nil, err
	}
	filter := newStubFilter(upper, lowers, stubs)
	ch, err := changes(ctx, upper, lowers, filter)
	if err != nil {
		return nil, err
	}
	if len(ch) == 0 {
		return nil, nil
	}
	lkey, dir, err := s.scratchLayer(ctx)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() { s.dropScratch(ctx, lkey, committed) }()
	if err := linkTree(upper, dir, filter); err != nil {
		return s.NewLayer(ctx, key, parentChain, stubs...)
	}
	blob, diffID, err := s.writeLayerBlob(ctx, lkey, lowers, upper, filter)
	if err != nil {
		return nil, err
	}
	chain := chainOf(parentChain, diffID)
	if err := s.commitLayer(ctx, lkey, chain, parentChain); err != nil {
		return nil, err
	}
	committed = true
	size, err := s.layerSize(ctx, chain)
	if err != nil {
		return nil, err
	}
	return &Layer{Blob: blob, DiffID: diffID, ChainID: chain, Size: size}, nil
}

// linkTree recreates src's tree in dst: directories as new directories
// with src's metadata, everything else hard-linked; what filter skips is
// left out.
func linkTree(src, dst string, filter *stubFilter) error {
	type dirTimes struct {
		path string
		ts   []unix.Timespec
	}
	var dirs []dirTimes
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if filter.skip(filepath.ToSlash(rel), info.Mode(), info.Size()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if err := unix.Mkdir(target, st.Mode&0o7777); err != nil {
				return err
			}
			if err := unix.Lchown(target, int(st.Uid), int(st.Gid)); err != nil {
				return err
			}
			if err := unix.Chmod(target, st.Mode&0o7777); err != nil {
				return err
			}
			if err := copyXattrs(p, target); err != nil {
				return err
			}
			dirs = append(dirs, dirTimes{target, []unix.Timespec{st.Atim, st.Mtim}})
			return nil
		}
		if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			return nil
		}
		if err := os.Link(p, target); err != nil {
			return err
		}
		return dropOverlayXattrs(target)
	})
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, dirs[i].path, dirs[i].ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

// xattrNames lists p's extended attributes without following it.
func xattrNames(p string) ([]string, error) {
	sz, err := unix.Llistxattr(p, nil)
	if err != nil || sz == 0 {
		if err == unix.ENOTSUP {
			return nil, nil
		}
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range strings.Split(string(buf[:sz]), "\x00") {
		if n != "" {
			out = append(out, n)
		}
	}
	return out, nil
}

// copyXattrs copies a directory's xattrs: overlay's opaque marker, and
// everything that is not overlay's own.
func copyXattrs(src, dst string) error {
	names, err := xattrNames(src)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.overlay.") && n != "trusted.overlay.opaque" {
			continue
		}
		v := make([]byte, 64<<10)
		sz, err := unix.Lgetxattr(src, n, v)
		if err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, n, v[:sz], 0); err != nil && n == "trusted.overlay.opaque" {
			return err
		}
	}
	return nil
}

// dropOverlayXattrs removes overlay's bookkeeping (origin, impure, ...)
// from a linked inode: a layer carries none of it.
func dropOverlayXattrs(p string) error {
	names, err := xattrNames(p)
	if err != nil {
		return err
	}
	for _, n := range names {
		if strings.HasPrefix(n, "trusted.overlay.") || strings.HasPrefix(n, "user.overlay.") {
			if err := unix.Lremovexattr(p, n); err != nil && err != unix.ENODATA {
				return err
			}
		}
	}
	return nil
}
