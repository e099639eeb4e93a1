package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/container/spec"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
	"github.com/berth-dev/berth/internal/image/snapshot"
)

// The archive API (docker cp) works on a descriptor of the container's
// root directory, never on a host path string:
//
//   - A running container is seen through its init's /proc/<pid>/root,
//     opened relative to an open /proc/<pid> (so a recycled pid cannot be
//     mistaken for it), and checked to be the container's own overlay
//     root. Its mount namespace is what the copy sees: volumes, tmpfs and
//     bind mounts as the container sees them.
//   - A stopped container's writable snapshot is mounted at its usual
//     rootfs directory for the copy and unmounted after; the container's
//     lifecycle lock is held meanwhile, so it cannot start or be removed
//     under the copy.
//
// Every lookup below that root is done by the kernel with openat2
// RESOLVE_IN_ROOT (no magic links): ".." and absolute symlinks stop at the
// container's root, exactly as inside the container, so whatever the
// container does to its files — even swapping a directory for a symlink
// to "/" in the middle of a copy — a copy can only reach the container's
// own files. Reading is done by archive.TarAt through descriptors opened
// with O_NOFOLLOW; writing by archive.ApplyIn, which resolves every entry
// the same way. Kernel pseudo filesystems (proc, sysfs, cgroup) are never
// read or written: their directories are archived empty.
const resolveCp = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// fsRoot is a container's root filesystem opened for one copy.
type fsRoot struct {
	fd      int
	release func()
}

// procPath names fd as a path (for code that takes a root path string).
func (r *fsRoot) procPath() string { return "/proc/self/fd/" + strconv.Itoa(r.fd) }

// openFS opens c's root filesystem; release must be called.
func (s *Service) openFS(ctx context.Context, c *Container) (*fsRoot, error) {
	for range 3 {
		rec := c.snapshot()
		if rec.State.Running() && rec.State.Pid > 0 {
			fd, err := s.liveRoot(rec.ID, rec.State.Pid)
			if err == nil {
				return &fsRoot{fd: fd, release: func() { unix.Close(fd) }}, nil
			}
			s.log.Debug("archive: container root through /proc unavailable", "id", shortID(rec.ID), "err", err)
			if now := c.snapshot(); now.State.Running() && now.State.Pid == rec.State.Pid {
				// Still running, but its init's root is elsewhere (it
				// chrooted): the root filesystem berth mounted for it,
				// without the container's own mounts.
				if fd, err := openMountRoot(s.rootfsDir(rec.ID)); err == nil {
					return &fsRoot{fd: fd, release: func() { unix.Close(fd) }}, nil
				}
			}
			// It is exiting: wait for the exit to be recorded.
			if !waitNotRunning(ctx, c, 5*time.Second) {
				return nil, errdefs.Newf(errdefs.Conflict, "container %s: its root filesystem is not reachable: %v", shortID(rec.ID), err)
			}
		}
		r, err := s.mountStopped(ctx, c)
		if err == errStartedMeanwhile {
			continue
		}
		return r, err
	}
	return nil, errdefs.Newf(errdefs.Conflict, "container %s keeps changing state", shortID(c.ID()))
}

var errStartedMeanwhile = errors.New("container started")

// waitNotRunning waits up to d for c's exit to be recorded.
func waitNotRunning(ctx context.Context, c *Container, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		c.mu.Lock()
		running, ch := c.rec.State.Running(), c.changed
		c.mu.Unlock()
		if !running {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// liveRoot opens the root of the running container's init: /proc/<pid>
// first, then "root" relative to it, so a pid that was recycled in
// between fails rather than yielding another process's root; the result
// must be the very overlay root mounted for the container.
func (s *Service) liveRoot(id string, pid int) (int, error) {
	procfd, err := unix.Open("/proc/"+strconv.Itoa(pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(procfd)
	fd, err := unix.Openat(procfd, "root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var got, want unix.Stat_t
	if err := unix.Fstat(fd, &got); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Stat(s.rootfsDir(id), &want); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if got.Dev != want.Dev || got.Ino != want.Ino {
		unix.Close(fd)
		return -1, fmt.Errorf("process %d's root is not the container's root filesystem", pid)
	}
	return fd, nil
}

// openMountRoot opens dir only if something is mounted there (never the
// empty directory under it).
func openMountRoot(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, 0, &st); err != nil || st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT == 0 || st.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is not mounted", dir)
	}
	return fd, nil
}

// mountStopped mounts the writable snapshot of the stopped container c
// at its rootfs directory, holding c's lifecycle lock until release.
func (s *Service) mountStopped(ctx context.Context, c *Container) (_ *fsRoot, retErr error) {
	c.busy.Lock()
	defer func() {
		if retErr != nil {
			c.busy.Unlock()
		}
	}()
	c.waitTeardown()
	rec := c.snapshot()
	if rec.State.Running() {
		return nil, errStartedMeanwhile
	}
	if rec.State.Removing {
		return nil, errdefs.Newf(errdefs.Conflict, "container %s is marked for removal", shortID(rec.ID))
	}
	rootfs := s.rootfsDir(rec.ID)
	s.dropPremount(c) // mounted again below, with the volumes
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return nil, err
	}
	mounts, err := s.cfg.Snapshots.Mounts(ctx, rec.Snapshot)
	if err != nil {
		return nil, err
	}
	if err := snapshot.MountAll(mounts, rootfs); err != nil {
		return nil, err
	}
	unmountVolumes, err := s.archiveVolumeMounts(ctx, &rec, rootfs)
	if err != nil {
		_ = unix.Unmount(rootfs, unix.MNT_DETACH)
		return nil, err
	}
	fd, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		unmountVolumes()
		_ = unix.Unmount(rootfs, unix.MNT_DETACH)
		return nil, err
	}
	return &fsRoot{fd: fd, release: func() {
		unix.Close(fd)
		unmountVolumes()
		if err := unix.Unmount(rootfs, 0); err != nil {
			s.log.Warn("archive: unmount after copy", "id", shortID(rec.ID), "err", err)
			_ = unix.Unmount(rootfs, unix.MNT_DETACH)
		}
		c.busy.Unlock()
	}}, nil
}

// archiveVolumeMounts mounts a stopped container's volumes and bind
// mounts below rootfs (its snapshot, just mounted) so that a copy sees
// them as the running container would, and returns what unmounts them and
// deactivates the volumes. tmpfs mounts have no content while the
// container is stopped and are left out, as with dockerd. Each target is
// resolved inside rootfs (openat2 RESOLVE_IN_ROOT through pathrs; a
// missing one is created there) and the bind goes onto the opened
// descriptor (/proc/self/fd/N), never onto a path joined as a string.
func (s *Service) archiveVolumeMounts(ctx context.Context, rec *Record, rootfs string) (func(), error) {
	if len(rec.MountPoints) == 0 {
		return func() {}, nil
	}
	// Volumes are activated (and copied up, staged for subpaths) as for a
	// start; runMounts also gives the binds inherited with --volumes-from.
	oci, err := s.runMounts(ctx, rec, rootfs)
	if err != nil {
		return nil, err
	}
	type bind struct {
		dst, src string
		ro       bool
	}
	var binds []bind
	for _, m := range oci {
		ro := false
		for _, o := range m.Options {
			ro = ro || o == "ro"
		}
		binds = append(binds, bind{m.Destination, m.Source, ro})
	}
	for _, mp := range rec.MountPoints {
		if mp.Type == "bind" && !mp.Inherited {
			binds = append(binds, bind{mp.Destination, mp.Source, !mp.RW})
		}
	}
	// Parents before children.
	sort.SliceStable(binds, func(i, j int) bool {
		return strings.Count(path.Clean(binds[i].dst), "/") < strings.Count(path.Clean(binds[j].dst), "/")
	})
	var mounted []string
	undo := func() {
		for i := len(mounted) - 1; i >= 0; i-- {
			if f, err := pathrs.OpenInRoot(rootfs, mounted[i]); err == nil {
				_ = unix.Unmount(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.MNT_DETACH)
				f.Close()
			}
		}
		s.endRunMounts(context.WithoutCancel(ctx), rec)
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		undo()
		return nil, err
	}
	defer root.Close()
	for _, b := range binds {
		st, err := os.Stat(b.src)
		if err != nil {
			continue // a bind source that is gone: dockerd fails the start, a copy need not
		}
		var target *os.File
		if st.IsDir() {
			target, err = pathrs.MkdirAllHandle(root, b.dst, 0o755)
		} else {
			target, err = pathrs.OpenatInRoot(root, b.dst)
		}
		if err != nil && !st.IsDir() && errors.Is(err, os.ErrNotExist) {
			continue // a file mount point start has not made yet
		}
		if err != nil {
			undo()
			return nil, errdefs.Newf(errdefs.InvalidArgument, "mount point %s of the container: %v", b.dst, err)
		}
		tpath := fmt.Sprintf("/proc/self/fd/%d", target.Fd())
		err = unix.Mount(b.src, tpath, "", unix.MS_BIND|unix.MS_REC, "")
		target.Close()
		if err != nil {
			undo()
			return nil, fmt.Errorf("mount %s for the copy: %w", b.dst, err)
		}
		mounted = append(mounted, b.dst)
		if b.ro {
			// The remount needs the new mount, not the directory under it.
			f, err := pathrs.OpenInRoot(rootfs, b.dst)
			if err == nil {
				err = unix.Mount("", fmt.Sprintf("/proc/self/fd/%d", f.Fd()), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
				f.Close()
			}
			if err != nil {
				undo()
				return nil, fmt.Errorf("read-only mount %s for the copy: %w", b.dst, err)
			}
		}
	}
	return undo, nil
}

// withFS runs fn on c's root filesystem and releases it, unless fn
// takes the release over (keep set), as a streaming GET does.
func (s *Service) withFS(ctx context.Context, ref string, fn func(c *Container, root *fsRoot) (keep bool, err error)) error {
	c, err := s.Get(ref)
	if err != nil {
		return err
	}
	root, err := s.openFS(ctx, c)
	if err != nil {
		return err
	}
	keep, err := fn(c, root)
	if !keep {
		root.release()
	}
	return err
}

// lookup finds cp below root: the directory holding the entry (an O_PATH
// descriptor the caller closes), the entry's name in it ("." for the
// directory itself) and its lstat.
func lookup(root *fsRoot, cp cpPath, ref string) (int, string, unix.Stat_t, error) {
	var st unix.Stat_t
	dirfd, err := openat2(root.fd, cp.dir, unix.O_PATH|unix.O_DIRECTORY, resolveCp)
	if err != nil {
		return -1, "", st, lookupError(err, cp, ref)
	}
	base := cp.base
	if cp.follow {
		base = "."
	}
	if err := unix.Fstatat(dirfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		unix.Close(dirfd)
		return -1, "", st, lookupError(err, cp, ref)
	}
	return dirfd, base, st, nil
}

func lookupError(err error, cp cpPath, ref string) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fileNotFound(cp.abs, ref)
	case errors.Is(err, unix.ENOTDIR):
		return errdefs.Newf(errdefs.InvalidArgument, "%s in container %s: not a directory", cp.abs, ref)
	case errors.Is(err, unix.ELOOP):
		return errdefs.Newf(errdefs.InvalidArgument, "%s in container %s: too many levels of symbolic links", cp.abs, ref)
	}
	return fmt.Errorf("%s in container %s: %w", cp.abs, ref, err)
}

func openat2(dirfd int, p string, flags uint64, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolve}
	for range 64 {
		fd, err := unix.Openat2(dirfd, p, &how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}

// pathStat builds Docker's stat of cp (st is its lstat).
func pathStat(root *fsRoot, cp cpPath, st *unix.Stat_t) (*container.PathStat, error) {
	ps := &container.PathStat{
		Name:  cp.name,
		Size:  st.Size,
		Mode:  fileMode(st.Mode),
		Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		t, err := resolvePath(root.fd, cp.full())
		if err != nil {
			return nil, err
		}
		ps.LinkTarget = t
	}
	return ps, nil
}

// fileMode converts a stat mode to Go's os.FileMode (what Docker sends).
func fileMode(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		fm |= os.ModeDir
	case unix.S_IFLNK:
		fm |= os.ModeSymlink
	case unix.S_IFCHR:
		fm |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		fm |= os.ModeDevice
	case unix.S_IFIFO:
		fm |= os.ModeNamedPipe
	case unix.S_IFSOCK:
		fm |= os.ModeSocket
	}
	if m&unix.S_ISUID != 0 {
		fm |= os.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		fm |= os.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// resolvePath follows the symlinks of p (relative to root) inside root
// and returns where it leads as an absolute container path: a stat's
// LinkTarget. It is information for the client (which asks again with
// it, resolved again); nothing is opened with it. Missing elements are
// kept as they are.
func resolvePath(rootfd int, p string) (string, error) {
	todo := strings.Split(p, "/")
	var cur []string
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(cur) > 0 {
				cur = cur[:len(cur)-1]
			}
			continue
		}
		dir := "."
		if len(cur) > 0 {
			dir = strings.Join(cur, "/")
		}
		dfd, err := openat2(rootfd, dir, unix.O_PATH|unix.O_DIRECTORY, resolveCp|unix.RESOLVE_NO_SYMLINKS)
		if err != nil {
			cur = append(cur, c)
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dfd, c, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&unix.S_IFMT != unix.S_IFLNK {
			unix.Close(dfd)
			cur = append(cur, c)
			continue
		}
		t, err := readlinkAt(dfd, c)
		unix.Close(dfd)
		if err != nil {
			return "", err
		}
		if links++; links > 255 {
			return "", errdefs.Newf(errdefs.InvalidArgument, "/%s: too many levels of symbolic links", p)
		}
		if path.IsAbs(t) {
			cur = nil
		}
		todo = append(strings.Split(t, "/"), todo...)
	}
	return "/" + strings.Join(cur, "/"), nil
}

func readlinkAt(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// StatPath is HEAD /containers/{name}/archive: Docker's stat of p (the
// last element not followed unless p ends in "/" or "/.").
func (s *Service) StatPath(ctx context.Context, ref, p string) (*container.PathStat, error) {
	cp, err := parseCpPath(p)
	if err != nil {
		return nil, err
	}
	var ps *container.PathStat
	err = s.withFS(ctx, ref, func(c *Container, root *fsRoot) (bool, error) {
		dirfd, _, st, err := lookup(root, cp, ref)
		if err != nil {
			return false, err
		}
		defer unix.Close(dirfd)
		ps, err = pathStat(root, cp, &st)
		return false, err
	})
	return ps, err
}

// errPseudo refuses copies of kernel interface files.
func errPseudo(cp cpPath) error {
	return errdefs.Newf(errdefs.InvalidArgument, "%s is on a kernel pseudo filesystem (proc, sysfs, cgroup...): copying its files is not supported", cp.abs)
}

// ArchivePath is GET /containers/{name}/archive: a tar of p, whose top
// entry is named after p's last element, and p's stat. The tar is
// produced while the caller reads; closing the reader stops it.
func (s *Service) ArchivePath(ctx context.Context, ref, p string) (io.ReadCloser, *container.PathStat, error) {
	cp, err := parseCpPath(p)
	if err != nil {
		return nil, nil, err
	}
	var (
		rc io.ReadCloser
		ps *container.PathStat
	)
	err = s.withFS(ctx, ref, func(c *Container, root *fsRoot) (bool, error) {
		dirfd, base, st, err := lookup(root, cp, ref)
		if err != nil {
			return false, err
		}
		if !cp.follow && archive.IsPseudoFS(dirfd) {
			unix.Close(dirfd)
			return false, errPseudo(cp)
		}
		if ps, err = pathStat(root, cp, &st); err != nil {
			unix.Close(dirfd)
			return false, err
		}
		pr, pw := io.Pipe()
		go func() {
			err := archive.TarAt(ctx, dirfd, base, cp.archiveName(), pw, archive.TarOptions{SkipPseudoFS: true})
			unix.Close(dirfd)
			root.release()
			pw.CloseWithError(err)
		}()
		rc = pr
		rec := c.snapshot()
		s.event("archive-path", &rec, nil)
		return true, nil
	})
	return rc, ps, err
}

// ExtractOptions are PUT /containers/{name}/archive's flags.
type ExtractOptions struct {
	NoOverwriteDirNonDir bool
	CopyUIDGID           bool
}

// ExtractToDir is PUT /containers/{name}/archive: it unpacks the tar r
// into the directory p (followed to the end; it must exist). Entries keep
// the tar's owners, or, with CopyUIDGID and a container user, get that
// user's uid and gid (Docker's rules). Device nodes are refused.
func (s *Service) ExtractToDir(ctx context.Context, ref, p string, o ExtractOptions, r io.Reader) error {
	cp, err := parseCpPath(p)
	if err != nil {
		return err
	}
	return s.withFS(ctx, ref, func(c *Container, root *fsRoot) (bool, error) {
		rec := c.snapshot()
		full := rel(cp.abs)
		fd, err := openat2(root.fd, full, unix.O_PATH, resolveCp)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return false, fileNotFound(cp.abs, ref)
			}
			if errors.Is(err, unix.ENOTDIR) {
				return false, errdefs.Newf(errdefs.InvalidArgument, "extraction point is not a directory")
			}
			return false, lookupError(err, cp, ref)
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return false, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return false, errdefs.Newf(errdefs.InvalidArgument, "extraction point is not a directory")
		}
		if archive.IsPseudoFS(fd) {
			return false, errPseudo(cp)
		}
		if rec.Host != nil && rec.Host.ReadonlyRootfs {
			// Volumes stay writable; the root filesystem does not.
			same, err := sameMount(fd, root.fd)
			if err != nil {
				return false, err
			}
			if same {
				return false, errdefs.Newf(errdefs.InvalidArgument, "container rootfs is marked read-only")
			}
		}
		// Mounts below the root are the container's (its volumes): they
		// are crossed, kernel pseudo filesystems still refused.
		opts := archive.ApplyOptions{
			Plain: true, NoOverwriteDirNonDir: o.NoOverwriteDirNonDir, NoDevices: true, CrossMounts: true,
		}
		if o.CopyUIDGID && rec.Config != nil && rec.Config.User != "" {
			uid, gid, err := spec.LookupUser(root.procPath(), rec.Config.User)
			if err != nil {
				return false, err
			}
			opts.Owner = &archive.Owner{UID: uid, GID: gid}
		}
		if _, err := archive.ApplyIn(ctx, root.fd, full, r, opts); err != nil {
			return false, err
		}
		s.event("extract-to-dir", &rec, nil)
		return false, nil
	})
}

// sameMount reports whether two open files are on the same mount.
func sameMount(a, b int) (bool, error) {
	var sa, sb unix.Statx_t
	if err := unix.Statx(a, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &sa); err != nil {
		return false, err
	}
	if err := unix.Statx(b, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &sb); err != nil {
		return false, err
	}
	return sa.Mnt_id == sb.Mnt_id, nil
}
