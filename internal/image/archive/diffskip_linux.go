package archive

import (
	"context"
	"io"
	"io/fs"
	"os"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// DiffSkipping is Diff leaving out the entries skip selects (and, for a
// directory, everything below it). skip gets the entry's name in the
// layer ("etc/hosts"), its type and permission bits and its size. The
// container service uses it to leave out the empty files the runtime
// creates as targets of its bind mounts (/etc/hosts, /etc/resolv.conf).
func DiffSkipping(ctx context.Context, lowers []string, upper string, w io.Writer, skip func(name string, mode fs.FileMode, size int64) bool) (digest.Digest, int64, error) {
	for _, l := range lowers {
		if _, err := os.Stat(l); err != nil {
			return "", 0, err
		}
	}
	var f func(string, *unix.Stat_t) bool
	if skip != nil {
		f = func(name string, st *unix.Stat_t) bool {
			return skip(name, statMode(st), st.Size)
		}
	}
	return writeTarSkipping(ctx, upper, w, true, f)
}

func (s *DiffStats) count(st *unix.Stat_t) {
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		s.NonDirs++
	}
	if _, dup := s.seen[st.Ino]; dup {
		return
	}
	s.seen[st.Ino] = struct{}{}
	s.Inodes++
	s.Size += st.Blocks * 512
}

// DiffSkippingStats is DiffSkipping that also reports what the walk saw
// (DiffStats), so that a caller needs no other walk of the upper to
// learn whether it holds anything but directories or how much disk it
// uses.
func DiffSkippingStats(ctx context.Context, lowers []string, upper string, w io.Writer, skip func(name string, mode fs.FileMode, size int64) bool) (digest.Digest, int64, DiffStats, error) {
	for _, l := range lowers {
		if _, err := os.Stat(l); err != nil {
			return "", 0, DiffStats{}, err
		}
	}
	var f func(string, *unix.Stat_t) bool
	if skip != nil {
		f = func(name string, st *unix.Stat_t) bool {
			return skip(name, statMode(st), st.Size)
		}
	}
	var stats DiffStats
	d, n, err := writeTarStats(ctx, upper, w, true, f, &stats)
	stats.seen = nil
	return d, n, stats, err
}

// statMode converts a stat mode to fs.FileMode (type bits and permissions).
func statMode(st *unix.Stat_t) fs.FileMode {
	m := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		m |= fs.ModeDir
	case unix.S_IFLNK:
		m |= fs.ModeSymlink
	case unix.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		m |= fs.ModeDevice
	case unix.S_IFIFO:
		m |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		m |= fs.ModeSocket
	}
	return m
}
