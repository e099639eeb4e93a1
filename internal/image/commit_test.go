package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// upperOf prepares an active snapshot on ref's top layer and returns its
// upper directory, where a test writes what a container would.
func upperOf(t *testing.T, e *env, key, ref string) string {
	t.Helper()
	ctx := context.Background()
	st, _, err := e.svc.StateOf(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.snaps.Prepare(ctx, key, st.ChainID(), nil); err != nil {
		t.Fatal(err)
	}
	upper, _, err := e.svc.snaps.Upper(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	return upper
}

func TestCommitChangesAndLayers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (whiteouts are device nodes)")
	}
	ctx := context.Background()
	e := newEnv(t, nil)
	ref := pullTestImage(t, e, "commit/base:1")
	upper := upperOf(t, e, "ctr", ref)
	// What a container did: a new file in a new dir, a changed file, a
	// deleted one (whiteout), and the runtime's empty /etc/hosts stub.
	os.MkdirAll(filepath.Join(upper, "etc"), 0o755)
	os.WriteFile(filepath.Join(upper, "etc", "hello"), []byte("three"), 0o644)
	os.WriteFile(filepath.Join(upper, "etc", "hosts"), nil, 0o644)
	os.MkdirAll(filepath.Join(upper, "new", "dir"), 0o755)
	os.WriteFile(filepath.Join(upper, "new", "dir", "f"), []byte("f"), 0o644)
	os.MkdirAll(filepath.Join(upper, "data"), 0o755)
	if err := unix.Mknod(filepath.Join(upper, "data", "file"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	// The runtime's empty mount points (an image without them): not
	// changes; one the container wrote into is.
	os.Mkdir(filepath.Join(upper, "proc"), 0o755)
	os.Mkdir(filepath.Join(upper, "sys"), 0o755)
	os.MkdirAll(filepath.Join(upper, "dev", "x"), 0o755)
	ch, err := e.svc.Changes(ctx, "ctr")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	for _, c := range ch {
		got.WriteString(string("CAD"[c.Kind]) + " " + c.Path + "\n")
	}
	want := "C /data\nD /data/file\nA /dev\nA /dev/x\nC /etc\nC /etc/hello\nA /new\nA /new/dir\nA /new/dir/f\n"
	if got.String() != want {
		t.Fatalf("changes:\n%s\nwant:\n%s", got.String(), want)
	}
	id, err := e.svc.Commit(ctx, CommitOptions{Parent: ref, Snapshot: "ctr", Author: "a", Comment: "c", CreatedBy: "sh", Ref: "committed:1"})
	if err != nil {
		t.Fatal(err)
	}
	st, gotID, err := e.svc.StateOf(ctx, "committed:1")
	if err != nil || gotID != id || len(st.Layers) != 4 || st.Config.Author != "a" {
		t.Fatalf("committed: %v %s %d", err, gotID, len(st.Layers))
	}
	h := st.Config.History[len(st.Config.History)-1]
	if h.Comment != "c" || h.CreatedBy != "sh" || h.EmptyLayer {
		t.Fatalf("history: %+v", h)
	}
	// The new layer is unpacked as its chain's snapshot: the whiteout
	// and the files are there, the stub is not.
	top, _, err := e.svc.snaps.Upper(ctx, st.ChainID())
	if err != nil {
		t.Fatal(err)
	}
	var sb unix.Stat_t
	if err := unix.Lstat(filepath.Join(top, "data", "file"), &sb); err != nil || sb.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Fatalf("whiteout in the committed layer: %v %o", err, sb.Mode)
	}
	for _, stub := range []string{"etc/hosts", "proc", "sys"} {
		if _, err := os.Stat(filepath.Join(top, stub)); !os.IsNotExist(err) {
			t.Fatalf("mount stub %s committed: %v", stub, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(top, "new", "dir", "f")); string(b) != "f" {
		t.Fatalf("new file: %q", b)
	}
	// Nothing changed: an empty-layer entry, no new layer.
	upperOf(t, e, "ctr2", "committed:1")
	id2, err := e.svc.Commit(ctx, CommitOptions{Parent: "committed:1", Snapshot: "ctr2", Comment: "nothing"})
	if err != nil {
		t.Fatal(err)
	}
	st2, _, _ := e.svc.StateOf(ctx, id2.String())
	if len(st2.Layers) != 4 || !st2.Config.History[len(st2.Config.History)-1].EmptyLayer {
		t.Fatalf("empty commit: %d layers, history %+v", len(st2.Layers), st2.Config.History)
	}
	// CommitLayer turns the snapshot itself into the layer; the same
	// content again finds the chain there and drops its snapshot.
	for i, key := range []string{"copy1", "copy2"} {
		up := upperOf(t, e, key, "committed:1")
		os.WriteFile(filepath.Join(up, "copied"), []byte("same"), 0o644)
		os.Chtimes(filepath.Join(up, "copied"), fixedMtime, fixedMtime)
		l, err := e.svc.CommitLayer(ctx, key, st.ChainID())
		if err != nil || l == nil {
			t.Fatalf("CommitLayer %d: %v", i, err)
		}
		if _, err := e.svc.snaps.Stat(ctx, key); err == nil {
			t.Fatalf("%s still exists after CommitLayer", key)
		}
		if _, err := e.svc.snaps.Stat(ctx, l.ChainID.String()); err != nil {
			t.Fatalf("chain of CommitLayer %d: %v", i, err)
		}
	}
	// Whatever was made is sound, and a save/load round trip (which
	// verifies every blob against its diff ID) accepts it.
	// (Orphans are expected: the test's snapshots and CommitLayer's
	// layer have no holder here.)
	rep, err := e.svc.Check(ctx, false)
	if err != nil || len(rep.CorruptBlobs)+len(rep.MissingBlobs)+len(rep.MissingSnapshots)+len(rep.BrokenParents)+len(rep.BrokenImages) > 0 {
		t.Fatalf("check after commits: %+v %v", rep, err)
	}
	var saved bytes.Buffer
	if err := e.svc.Save(ctx, []string{"committed:1"}, &saved, DockerArchive); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"ctr", "ctr2"} {
		e.svc.snaps.Remove(ctx, k)
	}
	if _, err := e.svc.Remove(ctx, "committed:1", RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Load(ctx, &saved, nil); err != nil {
		t.Fatalf("load of a committed image: %v", err)
	}
}

func TestNewLayerLinkedMatchesNewLayer(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	ref := pullTestImage(t, e, "linked/base:1")
	st, _, _ := e.svc.StateOf(ctx, ref)
	mtime := fixedMtime
	fill := func(upper string) {
		os.MkdirAll(filepath.Join(upper, "etc"), 0o755)
		os.WriteFile(filepath.Join(upper, "etc", "hello"), []byte("changed"), 0o600)
		os.WriteFile(filepath.Join(upper, "etc", "resolv.conf"), nil, 0o644) // a stub
		os.MkdirAll(filepath.Join(upper, "data"), 0o700)
		unix.Setxattr(filepath.Join(upper, "data"), "trusted.overlay.opaque", []byte("y"), 0)
		os.WriteFile(filepath.Join(upper, "data", "only"), []byte("o"), 0o644)
		os.Link(filepath.Join(upper, "data", "only"), filepath.Join(upper, "data", "again"))
		unix.Mknod(filepath.Join(upper, "gone"), unix.S_IFCHR, 0)
		for _, p := range []string{"etc/hello", "etc", "data/only", "data", "etc/resolv.conf"} {
			os.Chtimes(filepath.Join(upper, p), mtime, mtime)
		}
	}
	fill(upperOf(t, e, "a", ref))
	fill(upperOf(t, e, "b", ref))
	l1, err := e.svc.NewLayerLinked(ctx, "a", st.ChainID())
	if err != nil || l1 == nil {
		t.Fatal(err)
	}
	dir, _, _ := e.svc.snaps.Upper(ctx, l1.ChainID.String())
	var sb unix.Stat_t
	if unix.Lstat(filepath.Join(dir, "gone"), &sb) != nil || sb.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Fatalf("whiteout not in the linked layer")
	}
	if !isOpaque(filepath.Join(dir, "data")) {
		t.Fatalf("opaque marker lost")
	}
	if _, err := os.Stat(filepath.Join(dir, "etc", "resolv.conf")); !os.IsNotExist(err) {
		t.Fatalf("stub linked: %v", err)
	}
	unix.Lstat(filepath.Join(dir, "data", "again"), &sb)
	if sb.Nlink != 4 { // data/only and data/again, here and in the container's upper
		t.Fatalf("hard links: %d", sb.Nlink)
	}
	l2, err := e.svc.NewLayer(ctx, "b", st.ChainID())
	if err != nil || l2 == nil || l2.DiffID != l1.DiffID || l2.ChainID != l1.ChainID {
		t.Fatalf("NewLayer %+v vs NewLayerLinked %+v: %v", l2, l1, err)
	}
}

// fixedMtime is the one mtime tests give files that two uppers must have
// alike (the test image's Created is zero, which Chtimes leaves
// unchanged: the files would keep their creation times, which differ
// whenever a second boundary falls between two fills).
var fixedMtime = time.Unix(1700000000, 0).UTC()
