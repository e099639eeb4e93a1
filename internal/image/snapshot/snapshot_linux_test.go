package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
)

type ent struct {
	name, body, link string
	typ              byte
}

func f(name, body string) ent { return ent{name: name, body: body, typ: tar.TypeReg} }
func d(name string) ent       { return ent{name: name, typ: tar.TypeDir} }
func wh(name string) ent      { return ent{name: name, typ: tar.TypeReg} }
func l(name, to string) ent   { return ent{name: name, link: to, typ: tar.TypeSymlink} }

func layerTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link, ModTime: mt}
		if e.typ == tar.TypeDir {
			h.Mode, h.Size = 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts, mknod, trusted xattrs)")
	}
}

func open(t testing.TB) *Snapshotter {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func chainID(parent string, diffID digest.Digest) string {
	if parent == "" {
		return diffID.String()
	}
	return digest.FromString(parent + " " + diffID.String()).String()
}

// unpack applies a layer on parent the way the image service does and
// returns the new chain ID.
func unpack(t testing.TB, s *Snapshotter, parent string, data []byte) string {
	t.Helper()
	ctx := context.Background()
	key := fmt.Sprintf("extract-%d", time.Now().UnixNano())
	if _, err := s.Prepare(ctx, key, parent, map[string]string{"purpose": "unpack"}); err != nil {
		t.Fatal(err)
	}
	upper, _, err := s.Upper(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	res, err := archive.Apply(ctx, upper, bytes.NewReader(data), archive.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	chain := chainID(parent, res.DiffID)
	if err := s.Commit(ctx, chain, key); err != nil {
		t.Fatal(err)
	}
	return chain
}

// mount mounts and registers the unmount.
func mount(t testing.TB, mounts []Mount) string {
	t.Helper()
	mnt := t.TempDir()
	if err := MountAll(mounts, mnt); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unmount(mnt); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return mnt
}

func read(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func names(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// content describes a tree by type, mode, owner, content and link target.
func content(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		fi, _ := de.Info()
		st := fi.Sys().(*syscall.Stat_t)
		s := fmt.Sprintf("%v %d:%d", fi.Mode(), st.Uid, st.Gid)
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			s += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			s += " -> " + target
		}
		out[rel] = s
		return nil
	})
	return out
}

func TestThreeLayerChain(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := open(t)
	c1 := unpack(t, s, "", layerTar(t,
		d("etc/"), f("etc/a", "1"), f("etc/b", "b"), d("d/"), f("d/x", "x"), f("d/y", "y"),
		d("keep/"), f("keep/f", "f"), d("bin/"), f("bin/sh", "sh"), l("bin/bash", "sh")))
	c2 := unpack(t, s, c1, layerTar(t,
		d("etc/"), wh("etc/.wh.b"), d("d/"), wh("d/.wh..wh..opq"), f("d/z", "z"), f("l2", "2")))
	c3 := unpack(t, s, c2, layerTar(t, d("etc/"), f("etc/a", "3"), d("new/"), f("new/n", "n")))

	mounts, err := s.Prepare(ctx, "ctr", c3, map[string]string{"container": "ctr"})
	if err != nil {
		t.Fatal(err)
	}
	if len(mounts) != 1 || mounts[0].Type != "overlay" {
		t.Fatalf("mounts %+v", mounts)
	}
	mnt := t.TempDir()
	if err := MountAll(mounts, mnt); err != nil {
		t.Fatal(err)
	}
	mounted := true
	defer func() {
		if mounted {
			Unmount(mnt)
		}
	}()
	// Lower layers merged: later layers win, whiteouts hide, opaque dirs
	// hide lower content.
	if got := read(t, filepath.Join(mnt, "etc/a")); got != "3" {
		t.Errorf("etc/a = %q", got)
	}
	if _, err := os.Lstat(filepath.Join(mnt, "etc/b")); !os.IsNotExist(err) {
		t.Errorf("whiteout did not hide etc/b: %v", err)
	}
	if got := names(t, filepath.Join(mnt, "d")); !slices.Equal(got, []string{"z"}) {
		t.Errorf("opaque d lists %v", got)
	}
	for p, want := range map[string]string{"keep/f": "f", "l2": "2", "new/n": "n", "bin/bash": "sh"} {
		if got := read(t, filepath.Join(mnt, p)); got != want {
			t.Errorf("%s = %q", p, got)
		}
	}
	// Writes go to the upper.
	os.WriteFile(filepath.Join(mnt, "etc/a"), []byte("ctr"), 0o644)
	os.Remove(filepath.Join(mnt, "keep/f"))
	os.MkdirAll(filepath.Join(mnt, "added"), 0o755)
	os.WriteFile(filepath.Join(mnt, "added/file"), []byte("new"), 0o600)
	os.RemoveAll(filepath.Join(mnt, "new"))
	os.Mkdir(filepath.Join(mnt, "new"), 0o700) // recreated: overlay makes it opaque
	os.WriteFile(filepath.Join(mnt, "new/fresh"), []byte("fresh"), 0o644)
	merged := content(t, mnt)

	upper, lowers, err := s.Upper(ctx, "ctr")
	if err != nil {
		t.Fatal(err)
	}
	if len(lowers) != 3 {
		t.Fatalf("lowers %v", lowers)
	}
	if got := read(t, filepath.Join(upper, "etc/a")); got != "ctr" {
		t.Errorf("upper etc/a = %q", got)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "keep/f"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("upper keep/f is not a whiteout: %v %o", err, st.Mode)
	}
	if _, err := os.Lstat(filepath.Join(lowers[2], "keep/f")); err != nil {
		t.Errorf("a lower changed: %v", err)
	}
	if err := Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	mounted = false

	// The diff of the upper carries the change...
	var layer bytes.Buffer
	diffID, _, err := archive.Diff(ctx, lowers, upper, &layer)
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	tr := tar.NewReader(bytes.NewReader(layer.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, h.Name)
	}
	want := []string{"added/", "added/file", "etc/", "etc/a", "keep/", "keep/.wh.f", "new/", "new/.wh..wh..opq", "new/fresh"}
	if !slices.Equal(entries, want) {
		t.Errorf("diff entries %v, want %v", entries, want)
	}
	// ...and reproduces it as a new layer.
	c4 := unpack(t, s, c3, layer.Bytes())
	if c4 != chainID(c3, diffID) {
		t.Errorf("chain %s", c4)
	}
	vm, err := s.View(ctx, "check", c4)
	if err != nil {
		t.Fatal(err)
	}
	view := mount(t, vm)
	got := content(t, view)
	delete(got, ".")
	delete(merged, ".")
	if a, b := fmt.Sprint(merged), fmt.Sprint(got); a != b {
		t.Errorf("layer from diff differs:\ncontainer %v\nview      %v", merged, got)
	}
	if err := os.WriteFile(filepath.Join(view, "x"), nil, 0o644); err == nil {
		t.Error("view is writable")
	}
}

func TestManyLayers(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := open(t)
	const n = 200
	start := time.Now()
	chain := ""
	for i := range n {
		chain = unpack(t, s, chain, layerTar(t, d("layers/"), f(fmt.Sprintf("layers/f%03d", i), fmt.Sprint(i))))
	}
	t.Logf("%d layers unpacked and committed in %v", n, time.Since(start))
	mounts, err := s.Prepare(ctx, "ctr", chain, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l := len(strings.Join(mounts[0].Options, ",")); l < os.Getpagesize() {
		t.Fatalf("options are %d bytes: the test does not exercise the long case", l)
	}
	check := func(mnt string) {
		t.Helper()
		if got := len(names(t, filepath.Join(mnt, "layers"))); got != n {
			t.Errorf("%d files visible, want %d", got, n)
		}
		if got := read(t, filepath.Join(mnt, "layers/f000")); got != "0" {
			t.Errorf("bottom layer: %q", got)
		}
	}
	start = time.Now()
	mnt := mount(t, mounts)
	t.Logf("mounted %d lowers with the new mount API in %v", n, time.Since(start))
	check(mnt)
	if err := os.WriteFile(filepath.Join(mnt, "written"), []byte("w"), 0o644); err != nil {
		t.Fatal(err)
	}
	upper, _, _ := s.Upper(ctx, "ctr")
	if got := read(t, filepath.Join(upper, "written")); got != "w" {
		t.Errorf("write did not reach the upper: %q", got)
	}
	if err := Unmount(mnt); err != nil {
		t.Fatal(err)
	}

	// The fallback for kernels without lowerdir+.
	flags, data := parseOptions(mounts[0].Options)
	mnt2 := t.TempDir()
	if err := mountOverlayRelative("overlay", mnt2, flags, data); err != nil {
		t.Fatal(err)
	}
	check(mnt2)
	if err := Unmount(mnt2); err != nil {
		t.Fatal(err)
	}
	if wd, _ := os.Getwd(); strings.HasPrefix(wd, s.dir) {
		t.Errorf("the process working directory moved to %s", wd)
	}

	// A read-only view of the same chain.
	vm, err := s.View(ctx, "view", chain)
	if err != nil {
		t.Fatal(err)
	}
	check(mount(t, vm))
}

func TestRemoveAndCleanup(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := open(t)
	c1 := unpack(t, s, "", layerTar(t, f("a", "a")))
	c2 := unpack(t, s, c1, layerTar(t, f("b", "b")))
	if err := s.Remove(ctx, c1); !errdefs.Is(err, errdefs.FailedPrecondition) {
		t.Fatalf("removing a parent: %v", err)
	}
	if _, err := s.Prepare(ctx, "ctr", c2, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, c2); !errdefs.Is(err, errdefs.FailedPrecondition) {
		t.Fatalf("removing the parent of an active snapshot: %v", err)
	}
	up, _, _ := s.Upper(ctx, "ctr")
	for _, k := range []string{"ctr", c2} {
		if err := s.Remove(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Dir(up)); !os.IsNotExist(err) {
		t.Errorf("directory of a removed snapshot remains: %v", err)
	}
	if err := s.Remove(ctx, c2); !errdefs.Is(err, errdefs.NotFound) {
		t.Errorf("second remove: %v", err)
	}

	// Crash leftovers: a directory no metadata names, a half-deleted one,
	// a committed snapshot's workdir; unknown names stay.
	keep, _, _ := s.Upper(ctx, c1)
	for _, p := range []string{"999/fs/etc", ".trash-5-1/fs", filepath.Join(filepath.Base(filepath.Dir(keep)), "work/x"), "unknown/x"} {
		if err := os.MkdirAll(filepath.Join(s.dir, p), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Cleanup(ctx); err != nil {
		t.Fatal(err)
	}
	got := names(t, s.dir)
	want := []string{filepath.Base(filepath.Dir(keep)), metadataFile, "unknown"}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("after cleanup: %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(keep), "work")); !os.IsNotExist(err) {
		t.Errorf("committed workdir kept")
	}
	if got := read(t, filepath.Join(keep, "a")); got != "a" {
		t.Errorf("cleanup touched a live layer: %q", got)
	}
}

func TestErrors(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := open(t)
	c1 := unpack(t, s, "", layerTar(t, f("a", "a")))
	if _, err := s.Prepare(ctx, "a", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.View(ctx, "v", c1); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"duplicate key":        func() error { _, err := s.Prepare(ctx, "a", "", nil); return err }(),
		"missing parent":       func() error { _, err := s.Prepare(ctx, "b", "sha256:nope", nil); return err }(),
		"active parent":        func() error { _, err := s.Prepare(ctx, "b", "a", nil); return err }(),
		"view parent":          func() error { _, err := s.View(ctx, "b", "v"); return err }(),
		"commit view":          s.Commit(ctx, "x", "v"),
		"commit committed":     s.Commit(ctx, "x", c1),
		"commit onto existing": s.Commit(ctx, c1, "a"),
		"commit missing":       s.Commit(ctx, "x", "missing"),
		"stat missing":         func() error { _, err := s.Stat(ctx, "missing"); return err }(),
		"mounts missing":       func() error { _, err := s.Mounts(ctx, "missing"); return err }(),
		"upper of view":        func() error { _, _, err := s.Upper(ctx, "v"); return err }(),
		"usage missing":        func() error { _, _, err := s.Usage(ctx, "missing"); return err }(),
		"remove missing":       s.Remove(ctx, "missing"),
		"empty key":            func() error { _, err := s.Prepare(ctx, "", "", nil); return err }(),
	} {
		want := map[string]errdefs.Class{
			"duplicate key": errdefs.AlreadyExists, "commit onto existing": errdefs.AlreadyExists,
			"active parent": errdefs.FailedPrecondition, "view parent": errdefs.FailedPrecondition,
			"commit view": errdefs.FailedPrecondition, "commit committed": errdefs.FailedPrecondition,
			"upper of view": errdefs.FailedPrecondition, "empty key": errdefs.InvalidArgument,
		}[name]
		if want == errdefs.Internal {
			want = errdefs.NotFound
		}
		if !errdefs.Is(err, want) {
			t.Errorf("%s: got %v (%v), want %v", name, err, errdefs.ClassOf(err), want)
		}
	}
	// Nothing half-made by the failures.
	n := 0
	s.Walk(ctx, func(Info) error { n++; return nil })
	if n != 3 {
		t.Errorf("%d snapshots, want 3", n)
	}
}

func TestPersistenceAndInfo(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	c1 := unpack(t, s, "", layerTar(t, f("big", strings.Repeat("x", 100000))))
	if _, err := s.Prepare(ctx, "ctr", c1, map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root); !errdefs.Is(err, errdefs.Unavailable) {
		t.Errorf("second open: %v", err)
	}
	s.Close()

	s, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	info, err := s.Stat(ctx, "ctr")
	if err != nil {
		t.Fatal(err)
	}
	if info.Kind != Active || info.Parent != c1 || info.Labels["k"] != "v" || time.Since(info.Created) > time.Minute {
		t.Errorf("info %+v", info)
	}
	var keys []string
	s.Walk(ctx, func(i Info) error { keys = append(keys, i.Key+"="+i.Kind.String()); return nil })
	if want := []string{"ctr=active", c1 + "=committed"}; !slices.Equal(keys, want) {
		t.Errorf("walk %v", keys)
	}
	size, inodes, err := s.Usage(ctx, c1)
	if err != nil || size < 100000 || inodes != 2 {
		t.Errorf("usage %d %d %v", size, inodes, err)
	}
	if ci, _ := s.Stat(ctx, c1); ci.Labels["purpose"] != "unpack" {
		t.Errorf("labels lost at commit: %v", ci.Labels)
	}
	m, err := s.Mounts(ctx, c1)
	if err != nil || len(m) != 1 || m[0].Type != "bind" || !slices.Contains(m[0].Options, "ro") {
		t.Errorf("committed mounts %+v %v", m, err)
	}
}

// TestCommitOn: layers unpacked in parallel into parentless snapshots and
// chained at commit, as the image service pulls.
func TestCommitOn(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := open(t)
	var diffs []digest.Digest
	for i, data := range [][]byte{
		layerTar(t, d("x/"), f("x/a", "1"), f("x/b", "b")),
		layerTar(t, d("x/"), wh("x/.wh.b"), f("x/a", "2")),
	} {
		key := fmt.Sprint("extract-", i)
		if _, err := s.Prepare(ctx, key, "", nil); err != nil {
			t.Fatal(err)
		}
		up, _, _ := s.Upper(ctx, key)
		res, err := archive.Apply(ctx, up, bytes.NewReader(data), archive.ApplyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		diffs = append(diffs, res.DiffID)
	}
	c1 := chainID("", diffs[0])
	c2 := chainID(c1, diffs[1])
	if err := s.CommitOn(ctx, c2, "extract-1", c1); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("commit on a missing parent: %v", err)
	}
	if err := s.CommitOn(ctx, c1, "extract-0", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitOn(ctx, c2, "extract-1", c1); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, c1); !errdefs.Is(err, errdefs.FailedPrecondition) {
		t.Errorf("parent removable: %v", err)
	}
	vm, err := s.View(ctx, "v", c2)
	if err != nil {
		t.Fatal(err)
	}
	mnt := mount(t, vm)
	if got := names(t, filepath.Join(mnt, "x")); !slices.Equal(got, []string{"a"}) || read(t, filepath.Join(mnt, "x/a")) != "2" {
		t.Errorf("merged x: %v %q", got, read(t, filepath.Join(mnt, "x/a")))
	}
}

func TestMountsShape(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	s := open(t)
	m, err := s.Prepare(ctx, "base", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || m[0].Type != "bind" || !slices.Contains(m[0].Options, "rw") {
		t.Fatalf("parentless active: %+v", m)
	}
	mnt := mount(t, m)
	os.WriteFile(filepath.Join(mnt, "f"), []byte("x"), 0o644)
	up, _, _ := s.Upper(ctx, "base")
	if read(t, filepath.Join(up, "f")) != "x" {
		t.Error("bind mount does not write to fs")
	}
	if err := Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "c1", "base"); err != nil {
		t.Fatal(err)
	}
	vm, err := s.View(ctx, "v1", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if len(vm) != 1 || vm[0].Type != "bind" || !slices.Contains(vm[0].Options, "ro") {
		t.Fatalf("one-parent view: %+v", vm)
	}
	view := mount(t, vm)
	if err := os.WriteFile(filepath.Join(view, "g"), nil, 0o644); err == nil {
		t.Error("read-only bind is writable")
	}
	am, _ := s.Prepare(ctx, "a1", "c1", nil)
	if !slices.ContainsFunc(am[0].Options, func(o string) bool { return strings.HasPrefix(o, "lowerdir=") }) {
		t.Errorf("overlay without lowerdir: %+v", am)
	}
	if err := Unmount(t.TempDir()); err != nil {
		t.Errorf("unmount of a plain dir: %v", err)
	}
}
