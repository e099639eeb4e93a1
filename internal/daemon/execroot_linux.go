package daemon

import (
	"bufio"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/mountinfo"
)

// The exec root holds only what lives while berthd and its containers
// run (bundles, shim sockets, the runtime's state, mount points) and must
// not outlive a reboot: /run is a tmpfs for that reason on most hosts.
// Where the exec root is on a disk file system instead, berthd mounts a
// tmpfs of its own on it: every container creates and deletes about a
// dozen files there, and on a disk file system each is an inode
// allocation (on an ext4 without a journal, one that scans the recently
// freed inodes: ~0.3 ms each after some churn, docs/benchmarks.md). The
// tmpfs stays while anything on it is in use (a running container's
// shim, a mount), so that a restarted berthd finds its containers again;
// Close unmounts it when nothing is.

// execTmpfsSource names berth's tmpfs in the mount table.
const execTmpfsSource = "berth-exec"

// mountExecRoot mounts berth's tmpfs on dir unless dir is on a tmpfs or
// ramfs already, holds anything but empty directories (state of a berthd
// that ran without one, which live restore needs), or BERTH_EXEC_TMPFS=0.
// berthd's own pidfile, when it is in dir (the default), moves onto the
// tmpfs.
func mountExecRoot(dir, pidfile string, log *slog.Logger) {
	if os.Getenv("BERTH_EXEC_TMPFS") == "0" {
		return
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return
	}
	if st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
		return
	}
	own := ""
	if pidfile != "" && filepath.Dir(filepath.Clean(pidfile)) == filepath.Clean(dir) {
		own = filepath.Base(pidfile)
	}
	if !onlyDirs(dir, own) {
		log.Info("exec root is not empty: no tmpfs mounted on it", "exec-root", dir)
		return
	}
	var pid []byte
	if own != "" {
		pid, _ = os.ReadFile(pidfile)
		_ = os.Remove(pidfile) // it would be hidden under the tmpfs
	}
	if err := unix.Mount(execTmpfsSource, dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0711"); err != nil {
		log.Warn("mount a tmpfs on the exec root", "exec-root", dir, "err", err)
	}
	if pid != nil {
		if err := os.WriteFile(pidfile, pid, 0o644); err != nil {
			log.Warn("write the pidfile again", "path", pidfile, "err", err)
		}
	}
}

// disposable are the exec root's directories that hold only a cache the
// tmpfs may hide: the runtime's compiled seccomp filters (rewritten when
// missing; internal/runtime, seccompCacheDir).
var disposable = map[string]bool{"runtime-seccomp": true}

// onlyDirs reports whether the tree at dir holds nothing but directories
// (what a berthd that ran without the tmpfs leaves once its containers
// are gone) and caches, with a mount point under it counting as
// something.
func onlyDirs(dir, own string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false
	}
	seen := 0
	var walk func(string, uint64) bool
	walk = func(d string, dev uint64) bool {
		ents, err := os.ReadDir(d)
		if err != nil {
			return false
		}
		for _, e := range ents {
			if d == dir && (disposable[e.Name()] && e.IsDir() || e.Name() == own && e.Type().IsRegular()) {
				continue
			}
			if seen++; seen > 10000 || !e.IsDir() {
				return false
			}
			p := filepath.Join(d, e.Name())
			var sub unix.Stat_t
			if err := unix.Lstat(p, &sub); err != nil || sub.Dev != dev || !walk(p, dev) {
				return false
			}
		}
		return true
	}
	return walk(dir, st.Dev)
}

// unmountExecRoot unmounts berth's tmpfs from dir when nothing on it is
// in use (EBUSY otherwise: it stays for the next berthd).
func unmountExecRoot(dir string, log *slog.Logger) {
	if !isExecTmpfs(dir) {
		return
	}
	if err := unix.Unmount(dir, 0); err != nil && !errors.Is(err, unix.EBUSY) {
		log.Warn("unmount the exec root's tmpfs", "exec-root", dir, "err", err)
	}
}

// isExecTmpfs reports whether dir is the mount point of berth's tmpfs.
func isExecTmpfs(dir string) bool {
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	found := false
	for sc.Scan() {
		// id parent major:minor root mountpoint options ... - fstype source superopts
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 2 {
			continue
		}
		if mountinfo.Unescape(fields[4]) == dir {
			// The last mount on dir is the one in effect.
			found = tail[0] == "tmpfs" && tail[1] == execTmpfsSource
		}
	}
	return found
}
