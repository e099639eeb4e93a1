package volume

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api/filters"
	"github.com/berth-dev/berth/internal/errdefs"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts, chown)")
	}
}

// newService opens a service on a fresh data root; reopen closes and
// opens it again on the same root (a berthd restart).
func newService(t *testing.T) (s *Service, root string, reopen func() *Service) {
	t.Helper()
	root = t.TempDir()
	var db *bolt.DB
	var cur *Service
	open := func() *Service {
		var err error
		db, err = bolt.Open(filepath.Join(root, "metadata.db"), 0o600, &bolt.Options{Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		cur, err = New(Config{Root: root, DB: db})
		if err != nil {
			t.Fatal(err)
		}
		return cur
	}
	closeAll := func() {
		if err := cur.Close(); err != nil {
			t.Error(err)
		}
		db.Close()
	}
	t.Cleanup(func() {
		closeAll()
		for _, m := range slices.Backward(mountsUnder(root)) {
			t.Errorf("mount left: %s", m)
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
	})
	return open(), root, func() *Service { closeAll(); return open() }
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"data": true, "a1": true, "my_vol.v-2": true, "0abc": true,
		"a": false, "": false, "..": false, ".x": false, "../etc": false, "a/b": false,
		"-x": false, "_x": false, "a b": false, "/abs": false, "x\x00": false,
	} {
		err := ValidateName(name)
		if (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v, want ok=%v", name, err, ok)
		}
		if err != nil && !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("ValidateName(%q): class %v", name, errdefs.ClassOf(err))
		}
	}
}

func TestLifecycleAndPersistence(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s, root, reopen := newService(t)
	v, err := s.Create(ctx, CreateOptions{Name: "data", Labels: map[string]string{"team": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Mountpoint != filepath.Join(root, "volumes", "data", "_data") || v.Driver != "local" || v.Scope != "local" || v.Labels["team"] != "a" {
		t.Fatalf("created %+v", v)
	}
	if _, err := time.Parse(time.RFC3339, v.CreatedAt); err != nil {
		t.Fatalf("CreatedAt %q: %v", v.CreatedAt, err)
	}
	// Creating it again returns it; another driver is not found.
	if v2, err := s.Create(ctx, CreateOptions{Name: "data"}); err != nil || v2.CreatedAt != v.CreatedAt {
		t.Fatalf("re-create: %v %v", v2, err)
	}
	if _, err := s.Create(ctx, CreateOptions{Name: "x1", Driver: "nfs-plugin"}); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("unknown driver: %v", err)
	}
	for opts, want := range map[string]map[string]string{
		"invalid option":          {"bogus": "1"},
		"missing required option": {"type": "tmpfs"},
		"no quota support":        {"size": "10m"},
		"must be an absolute":     {"type": "none", "device": "rel", "o": "bind"},
	} {
		if _, err := s.Create(ctx, CreateOptions{Name: "bad", Options: want}); err == nil || !strings.Contains(err.Error(), opts) {
			t.Errorf("options %v: %v, want %q", want, err, opts)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "volumes", "bad")); !os.IsNotExist(err) {
		t.Fatal("a refused volume left a directory")
	}
	got, put, err := s.AcquireAll(ctx, []CreateOptions{{Name: "data"}, {}, {Labels: map[string]string{"k": "v"}}}, "c1")
	if err != nil {
		t.Fatal(err)
	}
	// The anonymous volumes' records are written by the caller, in its
	// own transaction (the container's).
	if put == nil {
		t.Fatal("no records to write for the new anonymous volumes")
	}
	if err := s.cfg.DB.Update(put); err != nil {
		t.Fatal(err)
	}
	anon := got[1].Name
	if got[0].Name != "data" || len(anon) != 64 || len(got[2].Name) != 64 || anon == got[2].Name {
		t.Fatalf("acquired %+v", got)
	}
	if err := os.WriteFile(filepath.Join(got[0].DataPath, "f"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "data", true); !errdefs.Is(err, errdefs.Conflict) || !strings.Contains(err.Error(), "volume is in use - [c1]") {
		t.Fatalf("remove in use: %v", err)
	}
	list := func(s *Service, kv ...string) []string {
		t.Helper()
		f := filters.NewArgs()
		for i := 0; i < len(kv); i += 2 {
			f.Add(kv[i], kv[i+1])
		}
		vs, err := s.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, v := range vs {
			names = append(names, v.Name)
		}
		return names
	}
	if n := list(s, "dangling", "true"); len(n) != 0 {
		t.Fatalf("dangling: %v", n)
	}
	if n := list(s, "label", "k=v"); len(n) != 1 || n[0] != got[2].Name {
		t.Fatalf("label filter: %v", n)
	}
	if n := list(s, "name", "^dat"); len(n) != 1 || n[0] != "data" {
		t.Fatalf("name filter: %v", n)
	}
	if _, err := s.List(ctx, filters.NewArgs(filters.Arg("bogus", "1"))); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("bad filter: %v", err)
	}

	// A restart keeps records and data; references come back from the
	// container service (here: re-acquired by hand).
	s = reopen()
	if n := list(s); len(n) != 3 {
		t.Fatalf("after reopen: %v", n)
	}
	if b, err := os.ReadFile(filepath.Join(s.Path("data"), "f")); err != nil || string(b) != "kept" {
		t.Fatalf("data after reopen: %q %v", b, err)
	}
	if _, _, err := s.AcquireAll(ctx, []CreateOptions{{Name: "data"}}, "c1"); err != nil {
		t.Fatal(err)
	}
	if in, _ := s.Get(ctx, "data"); in.UsageData == nil || in.UsageData.RefCount != 1 {
		t.Fatalf("usage: %+v", in.UsageData)
	}

	// Prune: anonymous and unreferenced only, then all=true.
	rep, err := s.Prune(ctx, filters.NewArgs())
	if err != nil || len(rep.VolumesDeleted) != 2 {
		t.Fatalf("prune: %+v %v", rep, err)
	}
	s.Release("data", "c1")
	rep, err = s.Prune(ctx, filters.NewArgs(filters.Arg("label!", "team=a"), filters.Arg("all", "true")))
	if err != nil || len(rep.VolumesDeleted) != 0 {
		t.Fatalf("prune label!: %+v %v", rep, err)
	}
	du, err := s.DiskUsage(ctx)
	if err != nil || du.TotalCount != 1 || du.Items[0].UsageData.Size != 4 || du.Reclaimable != 4 {
		t.Fatalf("disk usage: %+v %v", du, err)
	}
	rep, err = s.Prune(ctx, filters.NewArgs(filters.Arg("all", "true")))
	if err != nil || len(rep.VolumesDeleted) != 1 || rep.SpaceReclaimed != 4 {
		t.Fatalf("prune all: %+v %v", rep, err)
	}
	// Closing removes the spare directories of anonymous volumes.
	s = reopen()
	if ents, _ := os.ReadDir(filepath.Join(root, "volumes")); len(ents) != 0 {
		t.Fatalf("left in volumes/: %v", ents)
	}
	if err := s.Remove(ctx, "data", false); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("remove missing: %v", err)
	}
	if err := s.Remove(ctx, "data", true); err != nil {
		t.Fatalf("remove -f missing: %v", err)
	}
}

func TestCrashLeftoversRemoved(t *testing.T) {
	requireRoot(t)
	_, root, reopen := newService(t)
	// A crash between the directory and the record.
	orphan := filepath.Join(root, "volumes", "orphan", "_data")
	if err := os.MkdirAll(orphan, 0o755); err != nil {
		t.Fatal(err)
	}
	// An orphan whose data is a bind of a host directory (a crash while
	// mounted): the host's files must survive the cleanup.
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "precious"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	bound := filepath.Join(root, "volumes", "bound", "_data")
	if err := os.MkdirAll(bound, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(host, bound, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	// A record that no longer decodes: skipped, but its data is kept.
	s := reopen()
	if err := s.cfg.DB.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte("garbled"), []byte("{not json")) }); err != nil {
		t.Fatal(err)
	}
	kept := filepath.Join(root, "volumes", "garbled", "_data")
	if err := os.MkdirAll(kept, 0o755); err != nil {
		t.Fatal(err)
	}
	reopen()
	if _, err := os.Stat(kept); err != nil {
		t.Fatalf("data of an undecodable record removed: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "volumes", "orphan")); !os.IsNotExist(err) {
		t.Fatal("orphan directory not removed")
	}
	if _, err := os.Stat(filepath.Join(host, "precious")); err != nil {
		t.Fatalf("cleanup deleted through a mount: %v", err)
	}
}

func TestDeviceMountsFollowUsers(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s, _, _ := newService(t)
	if _, err := s.Create(ctx, CreateOptions{Name: "tv", Options: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=7"}}); err != nil {
		t.Fatal(err)
	}
	p := s.Path("tv")
	if isMountPoint(p) {
		t.Fatal("mounted before first use")
	}
	for _, ref := range []string{"a", "b"} {
		if got, err := s.Mount(ctx, "tv", ref, nil); err != nil || got != p {
			t.Fatalf("mount %s: %q %v", ref, got, err)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil || st.Uid != 7 {
		t.Fatalf("tmpfs options not applied: uid %d %v", st.Uid, err)
	}
	_ = s.Unmount(ctx, "tv", "a")
	if !isMountPoint(p) {
		t.Fatal("unmounted while b still uses it")
	}
	_ = s.Unmount(ctx, "tv", "b")
	if isMountPoint(p) {
		t.Fatal("still mounted after the last user")
	}

	// Bind-backed: removing the volume never deletes the device's files,
	// even while mounted.
	host := t.TempDir()
	if err := os.WriteFile(filepath.Join(host, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, CreateOptions{Name: "bv", Options: map[string]string{"type": "none", "device": host, "o": "bind,ro"}}); err != nil {
		t.Fatal(err)
	}
	bp, err := s.Mount(ctx, "bv", "a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bp, "w"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("ro bind volume writable: %v", err)
	}
	if err := s.Remove(ctx, "bv", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(host, "precious")); err != nil {
		t.Fatalf("removing a bind-backed volume deleted the host's file: %v", err)
	}
}

func TestCopyUpPreservesAndConfines(t *testing.T) {
	requireRoot(t)
	rootfs := t.TempDir()
	src := filepath.Join(rootfs, "real")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	must(os.WriteFile(filepath.Join(src, "f"), []byte("content"), 0o644))
	must(os.Chown(filepath.Join(src, "f"), 1000, 2000))
	must(unix.Chmod(filepath.Join(src, "f"), 0o4750)) // setuid survives the chown
	must(unix.Setxattr(filepath.Join(src, "f"), "trusted.berth", []byte("t"), 0))
	must(os.Symlink("/etc/passwd", filepath.Join(src, "abs-link")))
	must(os.Link(filepath.Join(src, "f"), filepath.Join(src, "sub", "hard")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o640))
	must(unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(os.Chmod(src, 0o711))
	must(os.Chown(src, 5, 6))
	// The mount point is a symlink to an absolute path: it must resolve
	// inside rootfs (to rootfs/real), never to the host's /real.
	must(os.Symlink("/real", filepath.Join(rootfs, "mnt")))

	dst := t.TempDir()
	st, err := CopyUp(rootfs, "/mnt", dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 6 || st.Bytes != 7 {
		t.Fatalf("stats %+v", st)
	}
	var s1, s2 syscall.Stat_t
	must(syscall.Lstat(filepath.Join(dst, "f"), &s1))
	if s1.Uid != 1000 || s1.Gid != 2000 || s1.Mode&0o7777 != 0o4750 {
		t.Fatalf("f: uid %d gid %d mode %o", s1.Uid, s1.Gid, s1.Mode&0o7777)
	}
	must(syscall.Lstat(filepath.Join(dst, "sub", "hard"), &s2))
	if s1.Ino != s2.Ino {
		t.Fatal("hard link not kept")
	}
	buf := make([]byte, 8)
	if n, err := unix.Getxattr(filepath.Join(dst, "f"), "trusted.berth", buf); err != nil || string(buf[:n]) != "t" {
		t.Fatalf("xattr: %q %v", buf[:n], err)
	}
	if l, err := os.Readlink(filepath.Join(dst, "abs-link")); err != nil || l != "/etc/passwd" {
		t.Fatalf("symlink: %q %v", l, err)
	}
	must(syscall.Lstat(filepath.Join(dst, "fifo"), &s1))
	if s1.Mode&syscall.S_IFMT != syscall.S_IFIFO || s1.Mode&0o777 != 0o640 {
		t.Fatalf("fifo mode %o", s1.Mode)
	}
	must(syscall.Lstat(filepath.Join(dst, "null"), &s1))
	if s1.Mode&syscall.S_IFMT != syscall.S_IFCHR || s1.Rdev != unix.Mkdev(1, 3) {
		t.Fatalf("device %o %d", s1.Mode, s1.Rdev)
	}
	must(syscall.Stat(dst, &s1))
	if s1.Uid != 5 || s1.Gid != 6 || s1.Mode&0o7777 != 0o711 {
		t.Fatalf("volume root: uid %d gid %d mode %o", s1.Uid, s1.Gid, s1.Mode&0o7777)
	}

	// A non-empty volume is left alone.
	dst2 := t.TempDir()
	must(os.WriteFile(filepath.Join(dst2, "mine"), nil, 0o644))
	if st, err := CopyUp(rootfs, "/mnt", dst2); err != nil || st.Files != 0 {
		t.Fatalf("non-empty: %+v %v", st, err)
	}
	// Missing or escaping source paths copy nothing from the host.
	for _, p := range []string{"/nope", "/../../../../etc", "/mnt/f"} {
		d := t.TempDir()
		if st, err := CopyUp(rootfs, p, d); err != nil || st.Files != 0 {
			t.Fatalf("CopyUp(%s): %+v %v", p, st, err)
		}
	}
	// A volume directory that is itself a symlink is refused.
	link := filepath.Join(t.TempDir(), "l")
	must(os.Symlink(t.TempDir(), link))
	if _, err := CopyUp(rootfs, "/mnt", link); err == nil {
		t.Fatal("copied into a symlinked volume directory")
	}
}

func TestBindSubpath(t *testing.T) {
	requireRoot(t)
	data := t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(data, "ok", "deeper"), 0o755))
	must(os.WriteFile(filepath.Join(data, "ok", "deeper", "f"), []byte("in"), 0o644))
	must(os.Symlink(outside, filepath.Join(data, "abs")))
	must(os.Symlink("../../..", filepath.Join(data, "rel")))
	must(os.Symlink("ok", filepath.Join(data, "inside")))
	stage := filepath.Join(t.TempDir(), "stage")
	for sub, want := range map[string]string{
		"abs": "symlinks", "rel/x": "symlinks", "inside/deeper": "symlinks",
		"../x": "relative path", "/ok": "relative path", "missing": "does not exist",
	} {
		err := BindSubpath(data, sub, stage)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("subpath %q: %v, want %q", sub, err, want)
		}
		if isMountPoint(stage) {
			_ = unix.Unmount(stage, unix.MNT_DETACH)
			t.Fatalf("subpath %q got mounted", sub)
		}
	}
	must(BindSubpath(data, "ok/deeper", stage))
	defer unix.Unmount(stage, unix.MNT_DETACH)
	if b, err := os.ReadFile(filepath.Join(stage, "f")); err != nil || string(b) != "in" {
		t.Fatalf("staged subpath: %q %v", b, err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatal("outside touched")
	}
}

func TestCopyUpManyFiles(t *testing.T) {
	requireRoot(t)
	rootfs := t.TempDir()
	var want int64
	for d := 0; d < 5; d++ {
		dir := filepath.Join(rootfs, "data", "d"+string(rune('a'+d)))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for f := 0; f < 60; f++ {
			body := strings.Repeat("x", d*100+f)
			p := filepath.Join(dir, "f"+string(rune('A'+f%26))+string(rune('a'+f/26)))
			if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			_ = os.Chown(p, f, d)
			want += int64(len(body))
		}
	}
	dst := t.TempDir()
	st, err := CopyUp(rootfs, "/data", dst)
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 5+300 || st.Bytes != want {
		t.Fatalf("stats %+v, want 305 files, %d bytes", st, want)
	}
	err = filepath.Walk(filepath.Join(rootfs, "data"), func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(rootfs, "data"), p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil || string(a) != string(b) {
			t.Errorf("%s differs: %v", rel, err)
		}
		var s1, s2 syscall.Stat_t
		_ = syscall.Stat(p, &s1)
		_ = syscall.Stat(filepath.Join(dst, rel), &s2)
		if s1.Uid != s2.Uid || s1.Gid != s2.Gid || s1.Mode != s2.Mode || s1.Mtim != s2.Mtim {
			t.Errorf("%s: attributes differ", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPlannedRemoval(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s, _, reopen := newService(t)
	got, put, err := s.AcquireAll(ctx, []CreateOptions{{}, {}}, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cfg.DB.Update(put); err != nil {
		t.Fatal(err)
	}
	a, b := got[0].Name, got[1].Name
	// b is also used by c2: it is not planned.
	if _, _, err := s.AcquireAll(ctx, []CreateOptions{{Name: b}}, "c2"); err != nil {
		t.Fatal(err)
	}
	plan := s.PlanRemoval([]string{a, b}, "c1")
	if plan == nil || !slices.Equal(plan.names, []string{a}) {
		t.Fatalf("plan %+v", plan)
	}
	// Reserved: nothing can take it until the plan finishes.
	if _, _, err := s.AcquireAll(ctx, []CreateOptions{{Name: a}}, "c3"); !errdefs.Is(err, errdefs.Conflict) {
		t.Fatalf("acquire a planned volume: %v", err)
	}
	// A failed transaction cancels the plan.
	if err := s.cfg.DB.Update(func(tx *bolt.Tx) error {
		if err := plan.Delete(tx); err != nil {
			return err
		}
		return errors.New("container record write failed")
	}); err == nil {
		t.Fatal("expected the failure")
	}
	plan.Finish(false)
	if _, err := s.Get(ctx, a); err != nil {
		t.Fatalf("cancelled plan lost the volume: %v", err)
	}
	plan = s.PlanRemoval([]string{a, b}, "c1")
	if err := s.cfg.DB.Update(plan.Delete); err != nil {
		t.Fatal(err)
	}
	s.Release(a, "c1")
	s.Release(b, "c1")
	plan.Finish(true)
	if _, err := s.Get(ctx, a); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("planned volume still there: %v", err)
	}
	s = reopen() // waits for the background removal
	if _, err := os.Stat(filepath.Join(s.root, a)); !os.IsNotExist(err) {
		t.Fatalf("data of the removed volume left: %v", err)
	}
	if _, err := s.Get(ctx, b); err != nil {
		t.Fatalf("the shared volume went: %v", err)
	}
	var nilPlan *Removal
	if err := nilPlan.Delete(nil); err != nil {
		t.Fatal(err)
	}
	nilPlan.Finish(true)
}
