package build

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestDirContextChecksumCache: a context read in place hashes a file once
// while its stat is unchanged, and again once its content changed, even
// with the same size and mtime (the ctime moved); the digests are those
// of the content.
func TestDirContextChecksumCache(t *testing.T) {
	old := racyWindow
	racyWindow = 0
	defer func() { racyWindow = old }()
	dir := t.TempDir()
	p := filepath.Join(dir, "src", "a.txt")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now().Add(-time.Hour)
	if err := os.Chtimes(p, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	b := &Builder{}
	fsys := b.dirContext(dir)
	sum := func() string {
		t.Helper()
		sels, err := selectSources(fsys, "src", nil, false)
		if err != nil {
			t.Fatal(err)
		}
		s, err := checksum(sels)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	first := sum()
	if len(b.sums.m) != 1 {
		t.Fatalf("cache holds %d entries, want 1", len(b.sums.m))
	}
	// Served from the cache: the cached digest is what is used.
	for k := range b.sums.m {
		b.sums.m[k] = []byte("marker")
	}
	if sum() == first {
		t.Fatalf("unchanged file was hashed again")
	}
	// Same size, same mtime, other content: the ctime differs.
	// (Rewritten until the ctime moves: it has the clock's tick.)
	before := ctimeOf(t, p)
	for deadline := time.Now().Add(5 * time.Second); ctimeOf(t, p) == before; {
		if time.Now().After(deadline) {
			t.Fatal("ctime never changed")
		}
		if err := os.WriteFile(p, []byte("two"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	second := sum()
	if second == first {
		t.Fatalf("changed content, same digest")
	}
	// A fresh cache agrees.
	fresh := (&Builder{}).dirContext(dir)
	sels, _ := selectSources(fresh, "src", nil, false)
	if s, _ := checksum(sels); s != second {
		t.Fatalf("cached %s, fresh %s", second, s)
	}
}

func ctimeOf(t *testing.T, p string) int64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ctim.Nano()
}

// TestDirContextUnpack: RUN --mount=type=bind of a directory context gets
// a copy with .dockerignore applied ("!" exceptions included), made in a
// scratch directory removed with the build.
func TestDirContextUnpack(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"a.txt": "a", "logs/x.log": "x", "logs/keep.log": "k", ".dockerignore": "logs\n!logs/keep.log\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &buildContext{fsys: (&Builder{}).dirContext(dir), root: t.TempDir()}
	if err := c.loadIgnore("Dockerfile"); err != nil {
		t.Fatal(err)
	}
	tree, err := c.unpack()
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"a.txt": true, "logs/keep.log": true, "logs/x.log": false} {
		if _, err := os.Stat(filepath.Join(tree, p)); (err == nil) != want {
			t.Errorf("%s present: %v, want %v", p, err == nil, want)
		}
	}
	c.removeScratch()
	if _, err := os.Stat(tree); !os.IsNotExist(err) {
		t.Fatalf("scratch left: %v", err)
	}
}
