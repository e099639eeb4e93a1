package image

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// TestGCKeepsHeldSnapshotThenCollectsAll pulls two images sharing their
// first two layers, prepares a writable snapshot on one of them as a
// container would (declared through Config.Holders), removes both images:
// GC keeps the held snapshot's chain and drops the rest. Once the writable
// snapshot is removed, GC leaves no blob, no snapshot directory and no
// metadata record.
func TestGCKeepsHeldSnapshotThenCollectsAll(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	var mu sync.Mutex
	var held []string
	e.svc.cfg.Holders = func(context.Context) ([]string, []digest.Digest, error) {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), held...), nil, nil
	}
	// The shared layers are built once: tarLayer's entry order follows
	// map iteration, so two builds of one map may differ.
	base := tarLayer(t, map[string]string{"etc/": "", "etc/os-release": "base\n", "bin/": "", "bin/sh": "shell"})
	libs := tarLayer(t, map[string]string{"usr/": "", "usr/lib/": "", "usr/lib/libc.so": "libc"})
	image := func(top map[string]string) v1.Image {
		img, err := mutate.AppendLayers(empty.Image, base, libs, tarLayer(t, top))
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", "amd64"
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			t.Fatal(err)
		}
		return img
	}
	imgA := image(map[string]string{"app/": "", "app/a": "alpha"})
	imgB := image(map[string]string{"app/": "", "app/b": "beta"})
	e.push(t, "shared/a:1", imgA)
	e.push(t, "shared/b:1", imgB)
	refA, refB := e.host+"/shared/a:1", e.host+"/shared/b:1"
	if _, err := e.svc.Pull(ctx, refA, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Pull(ctx, refB, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	chains := func(ref string) []string {
		var out []string
		e.svc.db.View(func(tx *bolt.Tx) error {
			r, err := e.svc.lookup(tx, ref)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range r.Layers {
				out = append(out, l.ChainID.String())
			}
			return nil
		})
		return out
	}
	chainsA, chainsB := chains(refA), chains(refB)
	if chainsA[0] != chainsB[0] || chainsA[1] != chainsB[1] || chainsA[2] == chainsB[2] {
		t.Fatalf("the images should share their first two chains: %v %v", chainsA, chainsB)
	}
	snapshotKeys := func() map[string]bool {
		keys := map[string]bool{}
		e.svc.snaps.Walk(ctx, func(i snapshotInfo) error { keys[i.Key] = true; return nil })
		return keys
	}
	if n := len(snapshotKeys()); n != 4 {
		t.Fatalf("%d snapshots after pulling both images, want 4 (two shared chains, two tops)", n)
	}

	// A container's writable layer on image A.
	res, err := e.svc.Resolve(ctx, refA)
	if err != nil {
		t.Fatal(err)
	}
	if res.ChainID != chainsA[2] {
		t.Fatalf("Resolve chain %s, want the top chain %s", res.ChainID, chainsA[2])
	}
	const rw = "container-rw-1"
	if _, err := e.svc.Snapshots().Prepare(ctx, rw, res.ChainID, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	held = []string{rw}
	mu.Unlock()

	for _, ref := range []string{refA, refB} {
		if _, err := e.svc.Remove(ctx, ref, RemoveOptions{NoPrune: true}); err != nil {
			t.Fatalf("remove %s: %v", ref, err)
		}
	}
	if _, err := e.svc.GC(ctx); err != nil {
		t.Fatal(err)
	}
	keys := snapshotKeys()
	for _, k := range append([]string{rw}, chainsA...) {
		if !keys[k] {
			t.Errorf("GC removed %s, which the held writable snapshot needs", k)
		}
	}
	if keys[chainsB[2]] || len(keys) != 4 {
		t.Errorf("after GC with a holder: snapshots %v, want only %s and its three ancestors", keys, rw)
	}
	if _, err := e.svc.Snapshots().Mounts(ctx, rw); err != nil {
		t.Errorf("held snapshot unusable after GC: %v", err)
	}
	blobs := 0
	e.svc.content.Walk(ctx, func(contentInfo) error { blobs++; return nil })
	if blobs != 0 {
		t.Errorf("%d blobs kept after both images were removed; nothing holds them", blobs)
	}

	// The container goes.
	if err := e.svc.Snapshots().Remove(ctx, rw); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	held = nil
	mu.Unlock()
	if _, err := e.svc.GC(ctx); err != nil {
		t.Fatal(err)
	}
	e.storesEmpty(t)
	// On disk: no blob file, no snapshot directory (the snapshotter's own
	// metadata file aside).
	filepath.WalkDir(filepath.Join(e.root, "content", "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("file left in the blobs dir: %s", p)
		}
		return nil
	})
	entries, err := os.ReadDir(filepath.Join(e.root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range entries {
		if de.Name() != "metadata.db" {
			t.Errorf("left in the snapshots dir: %s", de.Name())
		}
	}
	// Metadata: no image record, no reference.
	e.svc.db.View(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketRefs} {
			if n := tx.Bucket(b).Stats().KeyN; n != 0 {
				t.Errorf("bucket %s holds %d records", b, n)
			}
		}
		return nil
	})
}
