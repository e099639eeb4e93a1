package container

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseCpPath(t *testing.T) {
	for _, tc := range []struct {
		in                          string
		abs, dir, base, name, archi string
		follow                      bool
	}{
		{in: "/etc/passwd", abs: "/etc/passwd", dir: "etc", base: "passwd", name: "passwd", archi: "passwd"},
		{in: "etc/passwd", abs: "/etc/passwd", dir: "etc", base: "passwd", name: "passwd", archi: "passwd"},
		{in: "/etc/", abs: "/etc/", dir: "etc", follow: true, name: "etc", archi: "etc"},
		{in: "/etc/.", abs: "/etc/.", dir: "etc", follow: true, name: ".", archi: "."},
		{in: "/etc/./", abs: "/etc/.", dir: "etc", follow: true, name: ".", archi: "."},
		{in: "/", abs: "/", dir: ".", follow: true, name: "/", archi: "/"},
		{in: ".", abs: "/.", dir: ".", follow: true, name: ".", archi: "."},
		{in: "/.", abs: "/.", dir: ".", follow: true, name: ".", archi: "."},
		{in: "/a/../../b", abs: "/b", dir: ".", base: "b", name: "b", archi: "b"},
		{in: "../../etc/shadow", abs: "/etc/shadow", dir: "etc", base: "shadow", name: "shadow", archi: "shadow"},
		{in: "/a//b/", abs: "/a/b/", dir: "a/b", follow: true, name: "b", archi: "b"},
	} {
		p, err := parseCpPath(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if p.abs != tc.abs || p.dir != tc.dir || p.base != tc.base || p.follow != tc.follow || p.name != tc.name || p.archiveName() != tc.archi {
			t.Errorf("%q: got %+v (archive %q), want %+v", tc.in, p, p.archiveName(), tc)
		}
	}
	for _, bad := range []string{"", "a\x00b"} {
		if _, err := parseCpPath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestResolvePathInRoot: symlinks, absolute or climbing, never leave the
// root, and missing elements are kept as they are.
func TestResolvePathInRoot(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"usr/lib", "data/sub"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"lib":      "usr/lib",
		"abs":      "/usr/lib",
		"up":       "../../../../usr",
		"loop":     "loop",
		"data/rel": "../lib/x",
		"host":     "/etc", // the host's /etc: inside the root, it does not exist
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for in, want := range map[string]string{
		"lib":          "/usr/lib",
		"abs/x":        "/usr/lib/x",
		"up/lib":       "/usr/lib",
		"data/rel":     "/usr/lib/x",
		"host/passwd":  "/etc/passwd",
		"missing/../a": "/a",
		".":            "/",
	} {
		got, err := resolvePath(fd, in)
		if err != nil || got != want {
			t.Errorf("resolvePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := resolvePath(fd, "loop"); err == nil {
		t.Error("a symlink loop resolved")
	}
}

// FuzzParseCpPath: whatever the client sends, the parsed path stays
// relative to the container's root and clean.
func FuzzParseCpPath(f *testing.F) {
	for _, s := range []string{"/", ".", "/etc/.", "../../x", "a/b/", "/a/../../..", "//x//y/./", "..", "x/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := parseCpPath(in)
		if err != nil {
			return
		}
		for _, r := range []string{p.dir, p.full()} {
			if r == ".." || strings.HasPrefix(r, "../") || strings.HasPrefix(r, "/") || path.Clean(r) != r {
				t.Fatalf("%q: escapes or is not clean: %+v", in, p)
			}
		}
		if p.follow != (p.base == "") || strings.Contains(p.base, "/") {
			t.Fatalf("%q: %+v", in, p)
		}
	})
}
