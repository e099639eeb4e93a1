package container

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// overlayAt mounts an overlay of lower (read-only) at a fresh directory
// and returns it and its upper; cleanup unmounts it.
func overlayAt(t *testing.T, lower string) (merged, upper string) {
	t.Helper()
	base := t.TempDir()
	upper, work, merged := filepath.Join(base, "u"), filepath.Join(base, "w"), filepath.Join(base, "m")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Skipf("overlayfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	return merged, upper
}

// TestMakeStubs: on a real overlay, the missing bind targets are made in
// /etc as the init makes them (empty, 0644, root's), what the image has
// is left alone (not copied up), and the copied-up /etc keeps the image's
// mode, owner and times.
func TestMakeStubs(t *testing.T) {
	lower := t.TempDir()
	etc := filepath.Join(lower, "etc")
	if err := os.Mkdir(etc, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "hostname"), []byte("img\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(etc, 12, 34); err != nil {
		t.Fatal(err)
	}
	at, mt := time.Unix(1600000000, 123456789), time.Unix(1700000000, 987654321)
	if err := os.Chtimes(etc, at, mt); err != nil {
		t.Fatal(err)
	}
	merged, upper := overlayAt(t, lower)
	old := unix.Umask(0o077) // the stubs are 0644 whatever berthd's umask
	err := makeStubs(merged)
	unix.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"resolv.conf", "hosts"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, "etc", n), &st); err != nil || st.Mode != unix.S_IFREG|0o644 || st.Size != 0 || st.Uid != 0 {
			t.Errorf("%s in the upper: %v mode %o size %d uid %d", n, err, st.Mode, st.Size, st.Uid)
		}
	}
	if _, err := os.Lstat(filepath.Join(upper, "etc", "hostname")); !os.IsNotExist(err) {
		t.Errorf("the image's hostname was copied up: %v", err)
	}
	var got, want unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "etc"), &got); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lstat(etc, &want); err != nil {
		t.Fatal(err)
	}
	if got.Mode != want.Mode || got.Uid != 12 || got.Gid != 34 || got.Mtim != want.Mtim || got.Atim.Sec != want.Atim.Sec {
		t.Errorf("/etc in the upper: mode %o %d:%d mtime %v atime %v, the image's %o %d:%d %v %v", got.Mode, got.Uid, got.Gid, got.Mtim, got.Atim, want.Mode, want.Uid, want.Gid, want.Mtim, want.Atim)
	}
	// Again: nothing to make, nothing changes.
	if err := makeStubs(merged); err != nil {
		t.Fatal(err)
	}

	// The image lacked the mount points: made, empty, 0755.
	for _, d := range []string{"proc", "sys", "dev"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, d), &st); err != nil || st.Mode != unix.S_IFDIR|0o755 || st.Uid != 0 {
			t.Errorf("/%s in the upper: %v mode %o uid %d", d, err, st.Mode, st.Uid)
		}
	}

	// No /etc: made with the bind targets; /etc a symlink: left to the
	// init; mount points the image has: left alone. The root keeps its
	// times.
	for i, tc := range []struct {
		mk   func(string) error
		want string
	}{
		{func(string) error { return nil }, "dev etc etc/hostname etc/hosts etc/resolv.conf proc sys"},
		{func(l string) error { return os.Symlink("/tmp", filepath.Join(l, "etc")) }, "dev proc sys"},
		{func(l string) error {
			for _, d := range []string{"proc", "sys", "dev", "etc"} {
				if err := os.Mkdir(filepath.Join(l, d), 0o555); err != nil {
					return err
				}
			}
			return os.Symlink("x", filepath.Join(l, "etc", "hosts"))
		}, "etc etc/hostname etc/resolv.conf"},
	} {
		l := t.TempDir()
		if err := tc.mk(l); err != nil {
			t.Fatal(err)
		}
		m, u := overlayAt(t, l)
		var before unix.Stat_t
		if err := unix.Lstat(m, &before); err != nil {
			t.Fatal(err)
		}
		if err := makeStubs(m); err != nil {
			t.Fatal(err)
		}
		var names []string
		_ = filepath.WalkDir(u, func(p string, d os.DirEntry, err error) error {
			if p != u && err == nil {
				names = append(names, strings.TrimPrefix(p, u+"/"))
			}
			return nil
		})
		if got := strings.Join(names, " "); got != tc.want {
			t.Errorf("case %d: upper %q, want %q", i, got, tc.want)
		}
		var st unix.Stat_t
		if err := unix.Lstat(m, &st); err != nil || st.Mtim != before.Mtim {
			t.Errorf("case %d: root mtime %v, want %v (%v)", i, st.Mtim, before.Mtim, err)
		}
	}
}

// TestPremountExpires: a root mounted ahead that no start takes within
// premountTTL is unmounted; one a start took is left alone.
func TestPremountExpires(t *testing.T) {
	defer func(d time.Duration) { premountTTL = d }(premountTTL)
	premountTTL = 50 * time.Millisecond
	s := &Service{cfg: Config{ExecRoot: t.TempDir()}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	mount := func(id string) string {
		dir := s.rootfsDir(id)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
		return dir
	}
	idle := newContainer(Record{ID: "idle0123456789"})
	idle.premounted = true
	idleDir := mount(idle.ID())
	taken := newContainer(Record{ID: "taken0123456789"})
	taken.premounted = true
	takenDir := mount(taken.ID())
	s.expirePremount(idle)
	if !s.takePremount(taken, takenDir) {
		t.Fatal("the start did not find the root mounted")
	}
	deadline := time.Now().Add(10 * time.Second)
	for isMountRoot(idleDir) {
		if time.Now().After(deadline) {
			t.Fatal("the idle root is still mounted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// What the expiry does, for the root a start took: nothing.
	s.dropPremount(taken)
	if !isMountRoot(takenDir) {
		t.Error("the root a start took was unmounted")
	}
	if s.takePremount(idle, idleDir) {
		t.Error("an expired root was handed to a start")
	}
}
