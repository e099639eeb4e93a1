package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// copyRoot is a container-like root with a target directory /dst and a
// host directory beside it that nothing may touch.
func copyRoot(t testing.TB) (root, host string, fd int) {
	t.Helper()
	base := t.TempDir()
	root, host = filepath.Join(base, "root"), filepath.Join(base, "host")
	for _, d := range []string{filepath.Join(root, "dst"), filepath.Join(root, "etc"), host} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(host, "marker"), []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return root, host, fd
}

var plain = ApplyOptions{Plain: true, NoOverwriteDirNonDir: true, NoDevices: true}

func TestApplyInPlain(t *testing.T) {
	requireRoot(t)
	root, host, fd := copyRoot(t)
	_, err := ApplyIn(context.Background(), fd, "dst", bytes.NewReader(buildTar(t,
		dirE("./"),
		reg("./.wh.file", "not a whiteout"),
		dirE("d/"), reg("d/f", "F"),
		sym("etc-link", "/etc"), reg("etc-link/new", "chroot semantics"),
		sym("hostlink", host), hard("d/hl", "d/f"),
	)), plain)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{
		"dst/.wh.file": "not a whiteout", "dst/d/f": "F", "dst/d/hl": "F",
		// An absolute symlink in the archive resolves at the root, as in
		// Docker's chrooted extraction.
		"etc/new": "chroot semantics",
	} {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
	if got := hostFilesOf(t, host); got != "marker" {
		t.Fatalf("host directory changed: %s", got)
	}
}

func hostFilesOf(t testing.TB, dir string) string {
	ents, _ := os.ReadDir(dir)
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return strings.Join(n, ",")
}

func TestApplyInOptions(t *testing.T) {
	requireRoot(t)
	root, _, fd := copyRoot(t)
	ctx := context.Background()
	mk := func(ents ...ent) io.Reader { return bytes.NewReader(buildTar(t, ents...)) }
	if _, err := ApplyIn(ctx, fd, "dst", mk(dirE("x/"), reg("f", "f")), plain); err != nil {
		t.Fatal(err)
	}
	for name, ents := range map[string][]ent{
		"file over directory": {reg("x", "x")},
		"directory over file": {dirE("f/")},
		"device":              {chr("null", 1, 3)},
	} {
		if _, err := ApplyIn(ctx, fd, "dst", mk(ents...), plain); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Without the flag a file replaces a directory.
	opts := plain
	opts.NoOverwriteDirNonDir = false
	opts.Owner = &Owner{UID: 1000, GID: 1001}
	if _, err := ApplyIn(ctx, fd, "dst", mk(reg("x", "now a file")), opts); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "dst/x"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("replaced entry: %+v %v", st, err)
	}
	if _, err := ApplyIn(ctx, fd, "../dst", mk(reg("a", "a")), plain); err == nil {
		t.Error("a target outside the root was accepted")
	}
}

// TestApplyInPseudoFS: with CrossMounts (a running container's mounts) a
// kernel filesystem is still never written.
func TestApplyInPseudoFS(t *testing.T) {
	requireRoot(t)
	root, _, fd := copyRoot(t)
	mnt := filepath.Join(root, "dst", "sys")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("sysfs", mnt, "sysfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Fatalf("mount sysfs: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	opts := plain
	opts.CrossMounts = true
	_, err := ApplyIn(context.Background(), fd, "dst", bytes.NewReader(buildTar(t, reg("sys/kernel/x", "x"))), opts)
	if !errors.Is(err, ErrUnsafeEntry) || !strings.Contains(err.Error(), "pseudo filesystem") {
		t.Fatalf("write into sysfs: %v", err)
	}
	// TarAt archives the mount point without its content.
	var buf bytes.Buffer
	dfd, err := unix.Open(filepath.Join(root, "dst"), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	if err := TarAt(context.Background(), dfd, ".", ".", &buf, TarOptions{SkipPseudoFS: true}); err != nil {
		t.Fatal(err)
	}
	if names := tarNames(t, buf.Bytes()); strings.Join(names, ",") != "./,./sys/" {
		t.Errorf("entries: %v", names)
	}
}

func TestTarAt(t *testing.T) {
	requireRoot(t)
	root, _, fd := copyRoot(t)
	if _, err := ApplyIn(context.Background(), fd, "dst", bytes.NewReader(buildTar(t,
		dirE("d/"), reg("d/a.txt", "A"), sym("d/ln", "/etc"), hard("d/h", "d/a.txt"))), plain); err != nil {
		t.Fatal(err)
	}
	dfd, err := unix.Open(filepath.Join(root, "dst"), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	for _, tc := range []struct{ base, name, want string }{
		{"d", "d", "d/,d/a.txt,d/h => d/a.txt,d/ln"},
		{"d", "renamed", "renamed/,renamed/a.txt,renamed/h => renamed/a.txt,renamed/ln"},
		{"d/ln", "ln", "ln"}, // the symlink itself
		{"d/a.txt", "a.txt", "a.txt"},
	} {
		base, pfd := tc.base, dfd
		if dir, b := splitName(tc.base); dir != "." {
			pfd, err = unix.Openat(dfd, dir, unix.O_PATH|unix.O_DIRECTORY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(pfd)
			base = b
		}
		var buf bytes.Buffer
		if err := TarAt(context.Background(), pfd, base, tc.name, &buf, TarOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(tarNames(t, buf.Bytes()), ","); got != tc.want {
			t.Errorf("TarAt(%s as %s) = %s, want %s", tc.base, tc.name, got, tc.want)
		}
	}
	// "dir/." content: entries start with "./", which clients rebase on.
	sub, err := unix.Openat(dfd, "d", unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sub)
	var buf bytes.Buffer
	if err := TarAt(context.Background(), sub, ".", ".", &buf, TarOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(tarNames(t, buf.Bytes()), ","); got != "./,./a.txt,./h => ./a.txt,./ln" {
		t.Errorf("TarAt(d/.) = %s", got)
	}
}

// FuzzApplyIn: whatever the archive, nothing outside the root changes and
// ApplyIn returns (an error or not) without panicking.
func FuzzApplyIn(f *testing.F) {
	seeds := [][]ent{
		{reg("a", "x")},
		{reg("../../host/pwned", "x")},
		{reg("/abs/pwned", "x")},
		{sym("l", "../../host"), reg("l/pwned", "x")},
		{sym("l", "/"), reg("l/../../host/pwned", "x")},
		{hard("h", "../host/marker")},
		{dirE("d/"), sym("d/x", "../../../host/marker"), hard("hl", "d/x")},
		{chr("dev", 1, 3)},
		{reg(".wh..wh..opq", ""), reg(".wh.dst", "")},
	}
	for _, s := range seeds {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, e := range s {
			h := e.hdr
			_ = tw.WriteHeader(&h)
			_, _ = tw.Write([]byte(e.body))
		}
		_ = tw.Close()
		f.Add(buf.Bytes())
	}
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if os.Geteuid() != 0 {
			t.Skip("needs root")
		}
		_, host, fd := copyRoot(t)
		_, _ = ApplyIn(context.Background(), fd, "dst", bytes.NewReader(data), plain)
		if got := hostFilesOf(t, host); got != "marker" {
			t.Fatalf("host directory changed: %s", got)
		}
		if b, _ := os.ReadFile(filepath.Join(host, "marker")); string(b) != "host" {
			t.Fatalf("host marker changed")
		}
	})
}

// TestChmodAtNeverFollows: a node swapped for a symlink between its
// creation and its chmod (a running container racing a copy) must not
// make chmodAt change the symlink's target, wherever it points.
func TestChmodAtNeverFollows(t *testing.T) {
	_, host, fd := copyRoot(t)
	target := filepath.Join(host, "marker")
	if err := os.Chmod(target, 0o600); err != nil {
		t.Fatal(err)
	}
	dst, err := unix.Openat(fd, "dst", unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dst)
	if err := unix.Symlinkat(target, dst, "swapped"); err != nil {
		t.Fatal(err)
	}
	if err := chmodAt(dst, "swapped", 0o4777); err == nil {
		t.Error("chmodAt of a symlink succeeded")
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSetuid != 0 {
		t.Fatalf("the symlink's target was changed: %v %v", fi.Mode(), err)
	}
	// A regular node is changed.
	if err := unix.Mkfifoat(dst, "fifo", 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chmodAt(dst, "fifo", 0o640); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dst, "fifo", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Mode&0o7777 != 0o640 {
		t.Errorf("fifo mode %o %v", st.Mode&0o7777, err)
	}
}

// TestApplyInNeverRemovesAcrossMounts: replacing a directory that holds a
// mount point (here a tmpfs standing for a volume or /sys) does not
// descend into the mount.
func TestApplyInNeverRemovesAcrossMounts(t *testing.T) {
	requireRoot(t)
	root, _, fd := copyRoot(t)
	mnt := filepath.Join(root, "dst", "d", "m")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(mnt, "keep"), []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := plain
	opts.NoOverwriteDirNonDir = false
	opts.CrossMounts = true
	if _, err := ApplyIn(context.Background(), fd, "dst", bytes.NewReader(buildTar(t, reg("d", "now a file"))), opts); err == nil {
		t.Error("a directory holding a mount point was replaced")
	}
	if b, err := os.ReadFile(filepath.Join(mnt, "keep")); err != nil || string(b) != "k" {
		t.Fatalf("content of the mount was removed: %v", err)
	}
}
