package image

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// du is the snapshotter's measure of a directory: the blocks of every
// inode once, the directory itself included.
func du(t *testing.T, dir string) (int64, int64) {
	t.Helper()
	seen := map[uint64]bool{}
	var size, inodes int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !seen[st.Ino] {
			seen[st.Ino] = true
			inodes++
			size += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return size, inodes
}

// TestCommitLayerOneWalk: CommitLayer writes the same blob and diff ID
// as a separate diff walk of the same upper, records the disk usage a
// walk of the committed snapshot measures, and still tells an upper of
// unchanged copied-up directories (no layer, nothing left in the content
// store) from one with a new directory.
func TestCommitLayerOneWalk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (whiteouts are device nodes)")
	}
	ctx := context.Background()
	e := newEnv(t, nil)
	ref := pullTestImage(t, e, "onewalk/base:1")
	st, _, err := e.svc.StateOf(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	mtime := fixedMtime
	fill := func(upper string) {
		os.MkdirAll(filepath.Join(upper, "src", "a", "b"), 0o755)
		os.WriteFile(filepath.Join(upper, "src", "a", "b", "f"), []byte("content of f"), 0o640)
		os.WriteFile(filepath.Join(upper, "src", "big"), make([]byte, 70<<10), 0o644)
		os.Link(filepath.Join(upper, "src", "big"), filepath.Join(upper, "src", "big2"))
		os.Symlink("a/b/f", filepath.Join(upper, "src", "link"))
		if err := unix.Mknod(filepath.Join(upper, "gone"), unix.S_IFCHR, 0); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{"src/a/b/f", "src/a/b", "src/a", "src/big", "src", "gone"} {
			os.Chtimes(filepath.Join(upper, p), mtime, mtime)
		}
		unix.Lutimes(filepath.Join(upper, "src", "link"), []unix.Timeval{unix.NsecToTimeval(mtime.UnixNano()), unix.NsecToTimeval(mtime.UnixNano())})
	}
	upA := upperOf(t, e, "a", ref)
	fill(upA)
	fill(upperOf(t, e, "b", ref))
	wantSize, wantInodes := du(t, upA)
	// The blob as before: a separate diff walk of the same content.
	_, lowers, _ := e.svc.snaps.Upper(ctx, "b")
	upB, _, _ := e.svc.snaps.Upper(ctx, "b")
	wantBlob, wantDiffID, err := e.svc.writeLayerBlob(ctx, "b", lowers, upB, newStubFilter(upB, lowers, nil))
	if err != nil {
		t.Fatal(err)
	}
	l, err := e.svc.CommitLayer(ctx, "a", st.ChainID())
	if err != nil || l == nil {
		t.Fatalf("CommitLayer: %v %v", l, err)
	}
	if l.Blob.Digest != wantBlob.Digest || l.Blob.Size != wantBlob.Size || l.DiffID != wantDiffID {
		t.Fatalf("CommitLayer wrote %s (%d bytes, diff %s), a diff walk %s (%d bytes, diff %s)",
			l.Blob.Digest, l.Blob.Size, l.DiffID, wantBlob.Digest, wantBlob.Size, wantDiffID)
	}
	if l.Size != wantSize {
		t.Fatalf("layer size %d, du %d", l.Size, wantSize)
	}
	if size, inodes, err := e.svc.snaps.Usage(ctx, l.ChainID.String()); err != nil || size != wantSize || inodes != wantInodes {
		t.Fatalf("recorded usage %d bytes %d inodes (%v), du %d %d", size, inodes, err, wantSize, wantInodes)
	}
	e.svc.snaps.Remove(ctx, "b")

	// Only directories: an unchanged copy-up is no layer...
	prep := func(key string) string {
		if _, err := e.svc.snaps.Prepare(ctx, key, l.ChainID.String(), nil); err != nil {
			t.Fatal(err)
		}
		up, _, err := e.svc.snaps.Upper(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return up
	}
	up := prep("dirs")
	var lst unix.Stat_t
	_, lowers, _ = e.svc.snaps.Upper(ctx, "dirs")
	if err := unix.Lstat(filepath.Join(lowers[0], "src"), &lst); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(up, "src"), 0)
	unix.Chmod(filepath.Join(up, "src"), lst.Mode&0o7777)
	os.Lchown(filepath.Join(up, "src"), int(lst.Uid), int(lst.Gid))
	before, _ := e.svc.content.ListIngests(ctx)
	if l2, err := e.svc.CommitLayer(ctx, "dirs", l.ChainID.String()); err != nil || l2 != nil {
		t.Fatalf("unchanged directory: layer %+v, %v", l2, err)
	}
	if _, err := e.svc.snaps.Stat(ctx, "dirs"); err == nil {
		t.Fatal("the snapshot of an empty change is still there")
	}
	if after, _ := e.svc.content.ListIngests(ctx); len(after) != len(before) {
		t.Fatalf("ingests %d before, %d after", len(before), len(after))
	}
	// ...a new directory is one.
	up = prep("newdir")
	os.Mkdir(filepath.Join(up, "empty"), 0o755)
	if l3, err := e.svc.CommitLayer(ctx, "newdir", l.ChainID.String()); err != nil || l3 == nil {
		t.Fatalf("new directory: layer %+v, %v", l3, err)
	}
}
