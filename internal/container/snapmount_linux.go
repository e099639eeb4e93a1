package container

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/image/snapshot"
)

// A spare snapshot (snapspare.go) is also mounted ahead, once a start
// answered (mountSpareAhead; or by its fill, if the start ended first):
// at <exec-root>/c/<spare id>/rootfs, the place a container's bundle
// keeps its root, with the empty files the container's init binds the
// network files onto (mountStubs) and the files create and start write
// (spareFiles). The create that takes the spare
// renames that directory to the container's bundle directory (a rename of
// the parent of a mount point moves the mount with it); the container's
// first start finds its root mounted (Container.premounted) and skips the
// overlay mount, and its init finds the bind targets there and copies
// nothing up. The init unshares its mount namespace only once it has its
// config, after all this: its copy of berthd's mounts holds the root.
//
// Whatever discards a spare unmounts it first (unmountSpare): another
// image's fill, an image GC or removal letting it go, berthd's Close, a
// create that took it and failed. After a kill -9 of berthd, Restore
// unmounts it with the other leftovers: its directory, named by the
// spare's 64-hex id, has no record, and its snapshot none either. A
// container whose root is still premounted is unmounted by whatever else
// would mount it (a copy into the stopped container), by its removal and
// by Close; Restore unmounts every created container's root.

// spareStubs are the bind targets made in a spare's /etc when the image
// lacks them, as the init would make them at start: empty, mode 0644.
// diff, commit and export leave them out as they leave out the init's
// (image.mountStubs); Docker keeps them in its init layer.
var spareStubs = []string{"resolv.conf", "hostname", "hosts"}

// noPremount (BERTH_PREMOUNT=0 in berthd's environment) keeps spares
// unmounted: for A/B measurements.
var noPremount = os.Getenv("BERTH_PREMOUNT") == "0"

// premountTTL is how long a root mounted ahead waits for its first start
// (as long as the shim prepared at create: aheadTTL); then it is
// unmounted, and a later start mounts it as usual. (A var for tests.)
var premountTTL = aheadTTL

// mountSpareAhead mounts the published spare, if it is not yet, in the
// background; a start calls it once it answered. Mounting while a create
// and start run (at the fill, just after the create's commit) put the
// overlay mount, the bind targets and the file creations beside the
// container's init's own mounts, which they slowed by about as much as
// they saved (ext4 journal, mount locks, the 2 CPUs); right after the
// start they still ran beside the container's exit and removal, so the
// mount waits until the daemon is quiet (s.cfg.Quiet). A fill under way
// (or held) when the start ends mounts its spare itself (wantMount).
func (s *Service) mountSpareAhead() {
	if noPremount || s.isClosing() {
		return
	}
	s.mu.Lock()
	if s.spare.filling != nil {
		s.spare.wantMount = true
		s.mu.Unlock()
		return
	}
	sp := s.spare
	if sp.key == "" || sp.mounted {
		s.mu.Unlock()
		return
	}
	// As a fill: a claim waits for it (briefly), another fill does not start.
	done := make(chan struct{})
	s.spare.filling, s.spare.fillChain, s.spare.mounted = done, sp.chain, true
	s.mu.Unlock()
	s.bg.Add(1)
	// Held until the daemon is quiet: not beside the container that was
	// just started, nor its exit and removal (`run --rm`).
	s.cfg.Quiet.Go(func() {
		defer s.bg.Done()
		// Held until now: berthd may be stopping (Close runs what the
		// gate holds), and then there is nothing to mount for.
		if s.isClosing() {
			s.mu.Lock()
			if s.spare.key == sp.key {
				s.spare.mounted = false
			}
			s.spare.filling, s.spare.fillChain = nil, ""
			s.mu.Unlock()
			close(done)
			return
		}
		if err := s.mountSpare(context.Background(), sp.id, sp.key); err != nil {
			s.log.Warn("mount spare snapshot", "image", sp.image, "err", err)
		} else {
			s.log.Debug("spare snapshot mounted ahead", "id", shortID(sp.id), "by", "start")
		}
		s.mu.Lock()
		still := s.spare.key == sp.key
		s.spare.filling, s.spare.fillChain = nil, ""
		s.mu.Unlock()
		close(done)
		if !still {
			// Let go meanwhile (its discarder unmounted before this
			// mount), or taken after the claim stopped waiting.
			s.unmountSpare(sp.id)
		}
	})
}

// expirePremount unmounts c's root mounted ahead if no start took it
// within premountTTL.
func (s *Service) expirePremount(c *Container) {
	time.AfterFunc(premountTTL, func() {
		c.busy.Lock()
		defer c.busy.Unlock()
		s.dropPremount(c)
	})
}

// mountSpare mounts the spare snapshot key at rootfsDir(id) and prepares
// the bind targets in it. On error nothing is left mounted.
func (s *Service) mountSpare(ctx context.Context, id, key string) error {
	rootfs := s.rootfsDir(id)
	if err := os.MkdirAll(rootfs, 0o700); err != nil {
		return err
	}
	mounts, err := s.cfg.Snapshots.Mounts(ctx, key)
	if err == nil {
		err = snapshot.MountAll(mounts, rootfs)
	}
	if err != nil {
		s.unmountSpare(id)
		return err
	}
	if err := makeStubs(rootfs); err != nil {
		// The init makes them at start, as without a spare.
		s.log.Debug("spare snapshot: bind targets", "id", shortID(id), "err", err)
	}
	if err := s.spareFiles(id); err != nil {
		s.log.Debug("spare snapshot: files", "id", shortID(id), "err", err)
	}
	return nil
}

// makeStubs creates the missing spareStubs in rootfs's /etc (a directory
// of the image; nothing is made when it is absent or not a directory),
// then gives /etc back the times the image has for it: the copy-up keeps
// its owner, mode and extended attributes, creating an entry moves its
// modification time.
func makeStubs(rootfs string) error {
	if err := makeMountDirs(rootfs); err != nil {
		return err
	}
	etc, err := unix.Open(filepath.Join(rootfs, "etc"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return nil
		}
		return err
	}
	defer unix.Close(etc)
	return makeMissing(etc, spareStubs, func(dirfd int, name string) error {
		fd, err := unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, 0o644)
		if err != nil {
			return err
		}
		// The init's are 0644 whatever berthd's umask.
		err = unix.Fchmod(fd, 0o644)
		unix.Close(fd)
		return err
	})
}

// spareDirs are the directories the init mounts on (and /etc, which
// holds the bind targets), made in a spare's root when the image lacks
// them (minimal images: a static binary FROM scratch), empty and 0755 as
// the init would make them at start. diff and commit leave the empty
// ones out (image.mountStubs; an /etc holding only bind targets too), as
// Docker's init layer holds them.
var spareDirs = []string{"proc", "sys", "dev", "etc"}

// makeMountDirs makes the missing spareDirs in rootfs, keeping the root
// directory's times as they were.
func makeMountDirs(rootfs string) error {
	root, err := unix.Open(rootfs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(root)
	return makeMissing(root, spareDirs, func(dirfd int, name string) error {
		if err := unix.Mkdirat(dirfd, name, 0o755); err != nil {
			return err
		}
		return unix.Fchmodat(dirfd, name, 0o755, 0) // whatever the umask
	})
}

// makeMissing makes with mk each of names that the directory dirfd lacks
// (an entry the image has, whatever it is, is left to the init), then
// gives the directory back the times it had: creating an entry moves its
// modification time, which the image's own copy does not show.
func makeMissing(dirfd int, names []string, mk func(dirfd int, name string) error) error {
	var before unix.Stat_t
	if err := unix.Fstat(dirfd, &before); err != nil {
		return err
	}
	made := false
	for _, name := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil || !errors.Is(err, unix.ENOENT) {
			continue
		}
		if err := mk(dirfd, name); err != nil {
			return err
		}
		made = true
	}
	if !made {
		return nil
	}
	return unix.UtimesNanoAt(dirfd, ".", []unix.Timespec{before.Atim, before.Mtim}, 0)
}

// spareFiles makes, in a mounted spare's bundle and in its data
// directory, the files create and start write for the container that
// takes it, empty: creating a file costs far more than writing one that
// exists (on this ext4, ~0.1–0.7 ms against ~0.02 ms), and these are on
// the path. The create renames the data directory to its own with the
// bundle (adoptSpareMount); writeNetworkFiles and start's config.json
// then only write. Errors are for the log: create and start make what is
// missing as without a spare.
func (s *Service) spareFiles(id string) error {
	for _, n := range spareBundleFiles {
		if err := os.WriteFile(filepath.Join(s.bundleDir(id), n.name), nil, n.mode); err != nil {
			return err
		}
	}
	dir := s.dataDir(id)
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return err
	}
	for _, n := range []string{"hostname", "hosts", "resolv.conf"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			return err
		}
	}
	// The run-state file the first start writes into (readRunFile takes
	// an empty one for none).
	if err := os.WriteFile(filepath.Join(dir, runStateName), nil, 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, spareLogName), nil, 0o640)
}

// spareBundleFiles are the files of a bundle (the shim's state directory)
// made empty ahead: the spec berthd writes at start, the shim's own log
// (opened to append) and the temporary file the shim writes the exit
// into before renaming it (opened to truncate). Each would otherwise be
// a new inode on the path, and creating one costs 0.05 ms on a quiet
// ext4 and 0.3–0.5 ms on this machine's journal-less ext4 after churn
// (its allocator skips recently freed inodes one by one).
var spareBundleFiles = []struct {
	name string
	mode os.FileMode
}{{"config.json", 0o600}, {"shim.log", 0o600}, {".exit.json.tmp", 0o600}}

// spareLogName is the empty json-file log made in a spare's data
// directory: the create that takes the spare renames it to the
// container's log (adoptSpareLog).
const spareLogName = "spare-json.log"

// adoptSpareLog gives container id the empty log file made ahead in the
// data directory it took from a spare, under the name its log driver
// writes (logPath), or removes it when the driver writes elsewhere.
func (s *Service) adoptSpareLog(id, logPath string) {
	pre := filepath.Join(s.dataDir(id), spareLogName)
	if logPath != "" && filepath.Dir(logPath) == s.dataDir(id) {
		if _, err := os.Lstat(logPath); errors.Is(err, os.ErrNotExist) && os.Rename(pre, logPath) == nil {
			return
		}
	}
	_ = os.Remove(pre)
}

// unmountSpare unmounts the root at rootfsDir(id), if any, and removes
// the files and directories mountSpare and spareFiles made (never
// recursively under the root: a root still mounted keeps them).
func (s *Service) unmountSpare(id string) {
	rootfs := s.rootfsDir(id)
	if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		s.log.Warn("unmount spare snapshot", "id", shortID(id), "err", err)
	}
	_ = os.Remove(rootfs)
	for _, n := range spareBundleFiles {
		_ = os.Remove(filepath.Join(s.bundleDir(id), n.name))
	}
	_ = os.Remove(s.bundleDir(id))
	_ = os.RemoveAll(s.dataDir(id))
}

// isMountRoot says whether something is mounted at dir.
func isMountRoot(dir string) bool {
	fd, err := openMountRoot(dir)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// adoptSpareMount moves the root mounted for the spare snapshot key (just
// claimed) to container id's bundle, and says whether it did. A spare
// that is not mounted (BERTH_PREMOUNT=0, its mount failed) has no
// directory to move.
func (s *Service) adoptSpareMount(key, id string) bool {
	spareID := strings.TrimPrefix(key, "container-")
	if spareID == key || spareID == id || !isMountRoot(s.rootfsDir(spareID)) {
		return false
	}
	if err := os.Rename(s.bundleDir(spareID), s.bundleDir(id)); err != nil {
		s.log.Debug("spare snapshot: move its mount", "id", shortID(id), "err", err)
		s.unmountSpare(spareID)
		return false
	}
	if err := os.Rename(s.dataDir(spareID), s.dataDir(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Debug("spare snapshot: move its files", "id", shortID(id), "err", err)
		_ = os.RemoveAll(s.dataDir(spareID))
	}
	return true
}

// takePremount says whether c's root is mounted at rootfs already (by the
// fill of the spare its create took) for its first start, and forgets it.
func (s *Service) takePremount(c *Container, rootfs string) bool {
	c.mu.Lock()
	pre := c.premounted
	c.premounted = false
	c.mu.Unlock()
	if !pre || !isMountRoot(rootfs) {
		return false
	}
	s.log.Debug("start finds its root mounted", "id", shortID(c.ID()))
	return true
}

// dropPremount unmounts c's root if it is still the one mounted ahead
// (before something else mounts it: a copy into the created container).
func (s *Service) dropPremount(c *Container) {
	c.mu.Lock()
	pre := c.premounted
	c.premounted = false
	c.mu.Unlock()
	if pre {
		_ = unix.Unmount(s.rootfsDir(c.ID()), unix.MNT_DETACH)
	}
}

// closePremounts, at Close, unmounts the spare and the roots mounted
// ahead for containers that never started: nothing of berth's stays
// mounted while berthd is away but what runs.
func (s *Service) closePremounts() {
	s.mu.Lock()
	sp := s.spare
	s.spare.id, s.spare.key, s.spare.image, s.spare.chain = "", "", "", ""
	var cs []*Container
	for _, c := range s.byID {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	if sp.id != "" {
		s.unmountSpare(sp.id) // its snapshot goes at the next Restore
	}
	for _, c := range cs {
		s.dropPremount(c)
	}
}
