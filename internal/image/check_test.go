package image

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

func TestCheckFindsAndRepairs(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	good := pullTestImage(t, e, "check/good:1")
	bad := testImage(t, "amd64", map[string]string{"bad": strings.Repeat("b", 1000)})
	e.push(t, "check/bad:1", bad)
	if _, err := e.svc.Pull(ctx, e.host+"/check/bad:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	rep, err := e.svc.Check(ctx, false)
	if err != nil || !rep.OK() {
		t.Fatalf("check of sound stores: %+v %v", rep, err)
	}
	// Corrupt the bad image's layer blob and add a dangling reference.
	ls, _ := bad.Layers()
	ld, _ := ls[0].Digest()
	p := e.svc.content.Path(digest.Digest(ld.String()))
	os.Chmod(p, 0o644)
	data, _ := os.ReadFile(p)
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	e.svc.db.Update(func(tx *bolt.Tx) error {
		return setRef(tx, "docker.io/library/ghost:1", digest.FromString("ghost"))
	})
	rep, err = e.svc.Check(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	badID, _ := bad.ConfigName()
	if len(rep.CorruptBlobs) != 1 || rep.CorruptBlobs[0].String() != ld.String() ||
		len(rep.BrokenImages) != 1 || rep.BrokenImages[0].String() != badID.String() ||
		len(rep.DanglingRefs) != 1 || rep.DanglingRefs[0] != "docker.io/library/ghost:1" || len(rep.Repaired) != 0 {
		t.Fatalf("check: %+v", rep)
	}
	rep, err = e.svc.Check(ctx, true)
	if err != nil {
		t.Fatalf("repair: %v", err)
	}
	t.Logf("repaired: %q", rep.Repaired)
	joined := strings.Join(rep.Repaired, "\n")
	for _, want := range []string{"deleted corrupt blob " + ld.String(), "removed image " + badID.String(), "deleted dangling reference docker.io/library/ghost:1"} {
		if !strings.Contains(joined, want) {
			t.Errorf("repair report lacks %q", want)
		}
	}
	if rep, err := e.svc.Check(ctx, false); err != nil || !rep.OK() {
		t.Fatalf("check after repair: %+v %v", rep, err)
	}
	if _, err := e.svc.Inspect(ctx, good); err != nil {
		t.Fatalf("sound image lost: %v", err)
	}
	if _, err := e.svc.Inspect(ctx, e.host+"/check/bad:1"); err == nil {
		t.Fatal("broken image kept")
	}
	// An orphaned snapshot is found, and collected by repair.
	if _, err := e.svc.snaps.Prepare(ctx, "orphan", "", nil); err != nil {
		t.Fatal(err)
	}
	if rep, _ := e.svc.Check(ctx, false); len(rep.OrphanSnapshots) != 1 {
		t.Fatalf("orphan not found: %+v", rep)
	}
	if rep, err := e.svc.Check(ctx, true); err != nil || len(rep.Repaired) == 0 {
		t.Fatalf("orphan repair: %+v %v", rep, err)
	}
	if rep, _ := e.svc.Check(ctx, false); !rep.OK() {
		t.Fatalf("after orphan repair: %+v", rep)
	}
	e.removeAll(t)
}
