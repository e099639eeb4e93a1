package build

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestLinkerTry: a file is linked from the earlier layer only when it is
// the same bytes with the same size, mode, owner and mtime, its name is
// in neither the upper nor a lower layer, its directory is in the upper,
// and no symlink is on the way to it in the earlier layer.
func TestLinkerTry(t *testing.T) {
	base := t.TempDir()
	src, prev, upper, lower, rootfs := filepath.Join(base, "src"), filepath.Join(base, "prev"), filepath.Join(base, "upper"), filepath.Join(base, "lower"), filepath.Join(base, "mnt")
	mt := time.Unix(1700000000, 123456789)
	write := func(p, data string, mode os.FileMode) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	// The earlier layer as copyTo wrote it: mtime rounded up to µs.
	prevFile := func(rel, data string, mode os.FileMode) {
		write(filepath.Join(prev, rel), data, mode)
		r := time.Unix(0, copiedMtime(mt))
		os.Chtimes(filepath.Join(prev, rel), r, r)
	}
	for _, d := range []string{upper + "/d", lower, rootfs} {
		os.MkdirAll(d, 0o755)
	}
	for _, f := range []string{"same", "content", "mode", "inlower", "inupper", "nodir/x", "viasym/f"} {
		write(filepath.Join(src, f), "data\n", 0o644)
	}
	prevFile("d/same", "data\n", 0o644)
	prevFile("d/content", "DATA\n", 0o644)
	prevFile("d/mode", "data\n", 0o600)
	prevFile("d/inlower", "data\n", 0o644)
	prevFile("d/inupper", "data\n", 0o644)
	prevFile("nodir/x", "data\n", 0o644)
	prevFile("elsewhere/f", "data\n", 0o644)
	os.Symlink("elsewhere", filepath.Join(prev, "d", "viasym"))
	os.MkdirAll(filepath.Join(upper, "d", "viasym"), 0o755)
	write(filepath.Join(lower, "d", "inlower"), "x", 0o644)
	write(filepath.Join(upper, "d", "inupper"), "x", 0o644)

	l := openLinker(rootfs, prev, upper, []string{lower})
	if l == nil {
		t.Fatal("no linker")
	}
	defer l.close()
	fsys := hostFS{root: src}
	try := func(name, rel string) bool {
		fi, err := os.Lstat(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		return l.try(fsys, source{path: name, rel: name, info: fi}, filepath.Join(rootfs, rel), 0o644, os.Getuid(), os.Getgid())
	}
	for name, want := range map[string]bool{"same": true, "content": false, "mode": false, "inlower": false, "inupper": false} {
		if got := try(name, "d/"+name); got != want {
			t.Errorf("%s: linked %v, want %v", name, got, want)
		}
	}
	if try("nodir/x", "nodir/x") {
		t.Error("linked into a directory missing from the upper")
	}
	if try("viasym/f", "d/viasym/f") {
		t.Error("linked through a symlink of the earlier layer")
	}
	var a, b syscall.Stat_t
	syscall.Stat(filepath.Join(upper, "d", "same"), &a)
	syscall.Stat(filepath.Join(prev, "d", "same"), &b)
	if a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("d/same: inode %d/%d, nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	if l.linked != 1 {
		t.Errorf("linked %d", l.linked)
	}
}
