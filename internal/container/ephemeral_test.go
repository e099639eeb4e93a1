package container

import (
	"os"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	bolt "go.etcd.io/bbolt"
)

// TestEphemeralRecords: an auto-removed container's record is a file of
// its own, never a bbolt record; it is read back at a restart with the
// bbolt ones, follows saves and renames, is not brought back by a late
// save after its deletion, and one written in an earlier boot (a power
// loss) or that does not decode is left out.
func TestEphemeralRecords(t *testing.T) {
	root := t.TempDir()
	s := runTestService(t, root)
	id := func(c byte) string { return strings.Repeat(string(c), 64) }
	mk := func(i string, auto bool) *Record {
		r := &Record{ID: i, Name: "/n" + i[:4], Config: &container.Config{}, Host: &container.HostConfig{AutoRemove: auto},
			State: State{Status: container.StateCreated}, Ephemeral: auto}
		if err := os.MkdirAll(s.dataDir(i), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := s.store.create(r, nil); err != nil {
			t.Fatal(err)
		}
		return r
	}
	eph, durable := mk(id('a'), true), mk(id('b'), false)
	inBolt := func(i string) bool {
		found := false
		s.store.db.View(func(tx *bolt.Tx) error { found = tx.Bucket(bucketContainers).Get([]byte(i)) != nil; return nil })
		return found
	}
	if inBolt(eph.ID) || !inBolt(durable.ID) {
		t.Fatalf("in bbolt: ephemeral %v, durable %v", inBolt(eph.ID), inBolt(durable.ID))
	}
	s.store.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketNames).Get([]byte(eph.Name)); v != nil {
			t.Errorf("the ephemeral record's name is reserved in bbolt: %s", v)
		}
		return nil
	})
	if _, err := os.Stat(s.store.ephemeralPath(durable.ID)); err == nil {
		t.Fatal("a durable record has a record file")
	}
	// A rename and a save land in the file.
	eph.Name = "/renamed"
	if err := s.store.rename(eph, "/na"); err != nil {
		t.Fatal(err)
	}
	eph.Config.Labels = map[string]string{"k": "v"}
	if err := s.store.save(eph); err != nil {
		t.Fatal(err)
	}
	_, recs := reopen(t, s)
	if len(recs) != 2 {
		t.Fatalf("after a restart: %d records, want 2", len(recs))
	}
	got := recs[eph.ID]
	if got == nil || got.Name != "/renamed" || got.Config.Labels["k"] != "v" || !got.Ephemeral || !got.Host.AutoRemove {
		t.Fatalf("ephemeral record after a restart: %+v", got)
	}
	// Deleted, then a late saveIfExists (an exit written after the
	// removal) must not bring it back.
	if err := s.store.delete(eph, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.store.saveIfExists(eph); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.store.ephemeralPath(eph.ID)); err == nil {
		t.Fatal("saveIfExists brought a deleted ephemeral record back")
	}
	// deleteAll (Restore's) takes both kinds.
	e2 := mk(id('c'), true)
	if err := s.store.deleteAll([]*Record{e2, durable}); err != nil {
		t.Fatal(err)
	}
	if _, recs := reopen(t, s); len(recs) != 0 {
		t.Fatalf("after deleteAll: %v", recs)
	}
	// Written in an earlier boot: left out, and its file goes.
	old := mk(id('d'), true)
	old.Boot = "an-earlier-boot"
	b, _ := os.ReadFile(s.store.ephemeralPath(old.ID))
	os.WriteFile(s.store.ephemeralPath(old.ID), []byte(strings.Replace(string(b), s.store.boot, "an-earlier-boot", 1)), 0o600)
	// One torn by a crash during its create: reported, left out.
	torn := mk(id('e'), true)
	b, _ = os.ReadFile(s.store.ephemeralPath(torn.ID))
	os.WriteFile(s.store.ephemeralPath(torn.ID), b[:len(b)/2], 0o600)
	recs2, errs := s.store.all()
	if len(recs2) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), id('e')) {
		t.Fatalf("all with an earlier boot's and a torn record: %v %v", recs2, errs)
	}
	if _, err := os.Stat(s.store.ephemeralPath(old.ID)); err == nil {
		t.Fatal("an earlier boot's record file is still there")
	}
	if s.store.boot == "" {
		t.Fatal("no boot id read")
	}
}
