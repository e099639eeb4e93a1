package metadata

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

func openTest(t *testing.T, opts ...Option) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "metadata.db")
	db, err := Open(path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestOpenLockTimeout(t *testing.T) {
	db, path := openTest(t)
	if db.Path() != path {
		t.Errorf("Path() = %q", db.Path())
	}
	start := time.Now()
	_, err := Open(path, WithLockTimeout(100*time.Millisecond))
	if !errdefs.Is(err, errdefs.Unavailable) || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("second Open: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second { // bbolt polls the lock every 50ms
		t.Errorf("second Open gave up after %v", d)
	}
	// Once the first closes, the lock is free.
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db2, err := Open(path, WithLockTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
}

func TestOpenErrors(t *testing.T) {
	if _, err := Open(filepath.Join(t.TempDir(), "missing-dir", "metadata.db")); err == nil {
		t.Error("Open in a missing directory succeeded")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "m.db"), WithMigrations(Migration{Version: 0, Apply: func(*Tx) error { return nil }})); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("version 0 migration: %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "m.db"), WithMigrations(Migration{Version: 1})); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("migration without Apply: %v", err)
	}
	noop := func(*Tx) error { return nil }
	if _, err := Open(filepath.Join(t.TempDir(), "m.db"), WithMigrations(Migration{Version: 2, Apply: noop}, Migration{Version: 2, Apply: noop})); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("repeated version: %v", err)
	}
}

func TestReadOnlySharedOpen(t *testing.T) {
	db, path := openTest(t)
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *Tx) error { return PutJSON(tx, []string{"a"}, "k", 1) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r1, err := Open(path, WithReadOnly(), WithLockTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	r2, err := Open(path, WithReadOnly(), WithLockTimeout(time.Second))
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	defer r2.Close()
	var v int
	if err := r2.View(ctx, func(tx *Tx) error { return GetJSON(tx, []string{"a"}, "k", &v) }); err != nil || v != 1 {
		t.Fatalf("read %d, %v", v, err)
	}
	if _, err := Open(path, WithLockTimeout(50*time.Millisecond)); !errdefs.Is(err, errdefs.Unavailable) {
		t.Errorf("writer opened beside readers: %v", err)
	}
}

func TestBuckets(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	err := db.Update(ctx, func(tx *Tx) error {
		if !tx.Writable() || tx.Context() != ctx {
			t.Error("Update tx not writable or lost its context")
		}
		b, err := tx.Bucket("containers", "abc", "mounts")
		if err != nil {
			return err
		}
		if got := strings.Join(b.Path(), "/"); got != "containers/abc/mounts" || !b.Exists() {
			t.Errorf("path %q exists %v", got, b.Exists())
		}
		for _, k := range []string{"b", "a", "c"} {
			if err := b.Put([]byte(k), []byte("v"+k)); err != nil {
				return err
			}
		}
		if err := b.Delete([]byte("c")); err != nil {
			return err
		}
		if err := b.Delete([]byte("never-there")); err != nil {
			return err
		}
		parent, err := tx.Bucket("containers", "abc")
		if err != nil {
			return err
		}
		if err := parent.Put([]byte("state"), []byte("running")); err != nil {
			return err
		}
		// A nested bucket through an existing one.
		n, err := parent.Bucket("net", "eth0")
		if err != nil {
			return err
		}
		if err := n.Put([]byte("ip"), []byte("10.0.0.2")); err != nil {
			return err
		}
		seq1, _ := parent.NextSequence()
		seq2, _ := parent.NextSequence()
		if seq1 != 1 || seq2 != 2 {
			t.Errorf("sequence %d %d", seq1, seq2)
		}
		if same, _ := parent.Bucket(); same != parent {
			t.Error("Bucket() with no path is not the bucket itself")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	err = db.View(ctx, func(tx *Tx) error {
		if tx.Writable() {
			t.Error("View tx writable")
		}
		b, err := tx.Bucket("containers", "abc", "mounts")
		if err != nil {
			return err
		}
		if got := string(b.Get([]byte("a"))); got != "va" {
			t.Errorf("Get(a) = %q", got)
		}
		if b.Get([]byte("c")) != nil {
			t.Error("deleted key still there")
		}
		var keys []string
		if err := b.ForEach(func(k, v []byte) error { keys = append(keys, string(k)+"="+string(v)); return nil }); err != nil {
			return err
		}
		if !slices.Equal(keys, []string{"a=va", "b=vb"}) {
			t.Errorf("ForEach = %v", keys)
		}
		parent, _ := tx.Bucket("containers", "abc")
		var nested []string
		_ = parent.ForEach(func(k, v []byte) error {
			if v == nil {
				nested = append(nested, string(k))
			}
			return nil
		})
		if !slices.Equal(nested, []string{"mounts", "net"}) || parent.Len() != 3 {
			t.Errorf("nested = %v, len %d", nested, parent.Len())
		}
		if parent.Get([]byte("mounts")) != nil {
			t.Error("Get of a nested bucket returned a value")
		}
		deep, _ := parent.Bucket("net", "eth0")
		if string(deep.Get([]byte("ip"))) != "10.0.0.2" {
			t.Error("nested Bucket from a Bucket")
		}

		// Missing buckets read as empty and refuse writes.
		missing, err := tx.Bucket("nope", "deeper")
		if err != nil {
			return err
		}
		if missing.Exists() || missing.Get([]byte("x")) != nil || missing.Len() != 0 {
			t.Error("missing bucket not empty")
		}
		sub, _ := missing.Bucket("more")
		if sub.Exists() || strings.Join(sub.Path(), "/") != "nope/deeper/more" {
			t.Errorf("sub of missing: %v", sub.Path())
		}
		for name, err := range map[string]error{
			"put":       b.Put([]byte("x"), nil),
			"delete":    b.Delete([]byte("a")),
			"delbucket": parent.DeleteBucket("net"),
			"txdelete":  tx.DeleteBucket("containers"),
			"missing":   missing.Put([]byte("x"), nil),
		} {
			if !errdefs.Is(err, errdefs.FailedPrecondition) {
				t.Errorf("%s in View: %v", name, err)
			}
		}
		if _, err := b.NextSequence(); !errdefs.Is(err, errdefs.FailedPrecondition) {
			t.Errorf("NextSequence in View: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBucketErrors(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	err := db.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Bucket(); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("empty path: %v", err)
		}
		if _, err := tx.Bucket("a", ""); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("empty name: %v", err)
		}
		if err := tx.DeleteBucket(); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("empty delete path: %v", err)
		}
		b, _ := tx.Bucket("a")
		if err := b.Put([]byte("leaf"), []byte("v")); err != nil {
			return err
		}
		// A path through a key holding a value.
		if _, err := tx.Bucket("a", "leaf", "x"); !errdefs.Is(err, errdefs.InvalidArgument) || !strings.Contains(err.Error(), "a/leaf") {
			t.Errorf("bucket through a value: %v", err)
		}
		if err := b.Put(nil, []byte("v")); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("empty key: %v", err)
		}
		if _, err := b.Bucket("sub"); err != nil {
			return err
		}
		if err := b.Delete([]byte("sub")); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("Delete of a bucket: %v", err)
		}
		if err := b.Put([]byte("sub"), []byte("v")); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("Put over a bucket: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeleteBucket(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	err := db.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Bucket("x", "y", "z"); err != nil {
			return err
		}
		if err := tx.DeleteBucket("x", "y", "z"); err != nil {
			return err
		}
		y, _ := tx.Bucket("x", "y")
		if y.Len() != 0 {
			t.Error("z still there")
		}
		for _, p := range [][]string{{"x", "nope"}, {"nope", "deeper"}, {"nope"}} {
			if err := tx.DeleteBucket(p...); err != nil {
				t.Errorf("DeleteBucket(%v) of missing: %v", p, err)
			}
		}
		if err := y.DeleteBucket("missing"); err != nil {
			t.Errorf("Bucket.DeleteBucket(missing): %v", err)
		}
		x, _ := tx.Bucket("x")
		_ = x.Put([]byte("val"), []byte("1"))
		if err := tx.DeleteBucket("x", "val"); err == nil {
			t.Error("DeleteBucket of a value succeeded")
		}
		return tx.DeleteBucket("x")
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(ctx, func(tx *Tx) error {
		if b, _ := tx.Bucket("x"); b.Exists() {
			t.Error("x not deleted")
		}
		return nil
	})
}

func TestJSONHelpers(t *testing.T) {
	type rec struct {
		Name  string
		Count int
	}
	db, _ := openTest(t)
	ctx := context.Background()
	path := []string{"images", "byid"}
	err := db.Update(ctx, func(tx *Tx) error {
		for i, n := range []string{"b", "a", "c"} {
			if err := PutJSON(tx, path, n, rec{Name: n, Count: i}); err != nil {
				return err
			}
		}
		if _, err := tx.Bucket(append(path, "nested-is-skipped")...); err != nil {
			return err
		}
		if err := PutJSON(tx, path, "bad", func() {}); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("PutJSON(func) = %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(ctx, func(tx *Tx) error {
		var r rec
		if err := GetJSON(tx, path, "a", &r); err != nil || r != (rec{"a", 1}) {
			t.Errorf("GetJSON = %+v, %v", r, err)
		}
		if err := GetJSON(tx, path, "zzz", &r); !errdefs.Is(err, errdefs.NotFound) {
			t.Errorf("missing key: %v", err)
		}
		if err := GetJSON(tx, []string{"no", "bucket"}, "a", &r); !errdefs.Is(err, errdefs.NotFound) {
			t.Errorf("missing bucket: %v", err)
		}
		if err := GetJSON(tx, nil, "a", &r); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("nil path: %v", err)
		}
		var names []string
		if err := ForEachJSON(tx, path, func(k string, v rec) error {
			names = append(names, k+":"+v.Name)
			return nil
		}); err != nil {
			return err
		}
		if !slices.Equal(names, []string{"a:a", "b:b", "c:c"}) {
			t.Errorf("ForEachJSON = %v", names)
		}
		stop := errors.New("stop")
		if err := ForEachJSON(tx, path, func(string, rec) error { return stop }); err != stop {
			t.Errorf("ForEachJSON error = %v", err)
		}
		if err := ForEachJSON(tx, nil, func(string, rec) error { return nil }); err == nil {
			t.Error("ForEachJSON(nil path) succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Undecodable values are reported with their location.
	_ = db.Update(ctx, func(tx *Tx) error {
		b, _ := tx.Bucket("images", "byid")
		return b.Put([]byte("corrupt"), []byte("{"))
	})
	_ = db.View(ctx, func(tx *Tx) error {
		var r rec
		if err := GetJSON(tx, path, "corrupt", &r); err == nil || !strings.Contains(err.Error(), "images/byid/corrupt") {
			t.Errorf("GetJSON(corrupt) = %v", err)
		}
		if err := ForEachJSON(tx, path, func(string, rec) error { return nil }); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("ForEachJSON(corrupt) = %v", err)
		}
		return nil
	})
}

func TestUpdateRollback(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	boom := errors.New("boom")
	committed := false
	err := db.Update(ctx, func(tx *Tx) error {
		tx.OnCommit(func() { committed = true })
		if err := PutJSON(tx, []string{"a"}, "k", 1); err != nil {
			return err
		}
		return boom
	})
	if err != boom || committed {
		t.Fatalf("Update = %v, committed %v", err, committed)
	}
	cctx, cancel := context.WithCancel(ctx)
	err = db.Update(cctx, func(tx *Tx) error {
		cancel() // cancelled while the transaction runs: nothing is kept
		return PutJSON(tx, []string{"a"}, "k", 2)
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Update = %v", err)
	}
	if err := db.Update(cctx, func(*Tx) error { t.Error("ran with a dead context"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("Update(dead ctx) = %v", err)
	}
	if err := db.View(cctx, func(*Tx) error { t.Error("ran with a dead context"); return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("View(dead ctx) = %v", err)
	}
	_ = db.View(ctx, func(tx *Tx) error {
		if b, _ := tx.Bucket("a"); b.Exists() {
			t.Error("rolled back bucket exists")
		}
		return nil
	})
	if err := db.Update(ctx, func(tx *Tx) error {
		tx.OnCommit(func() { committed = true })
		return PutJSON(tx, []string{"a"}, "k", 3)
	}); err != nil || !committed {
		t.Fatalf("Update = %v, OnCommit ran %v", err, committed)
	}
	if err := db.Check(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "metadata.db")
	var ran []int
	mig := func(v int, fn func(tx *Tx) error) Migration {
		return Migration{Version: v, Name: "step", Apply: func(tx *Tx) error {
			ran = append(ran, v)
			return fn(tx)
		}}
	}
	put := func(key string) func(tx *Tx) error {
		return func(tx *Tx) error { return PutJSON(tx, []string{"data"}, key, true) }
	}
	v1 := mig(1, put("one"))
	v2 := mig(2, put("two"))

	// A fresh database gets every migration.
	db, err := Open(path, WithMigrations(v1, v2))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := db.SchemaVersion(ctx); err != nil || v != 2 || !slices.Equal(ran, []int{1, 2}) {
		t.Fatalf("version %d, ran %v, %v", v, ran, err)
	}
	db.Close()

	// Reopening at the same schema runs nothing.
	ran = nil
	db, err = Open(path, WithMigrations(v1, v2))
	if err != nil || len(ran) != 0 {
		t.Fatalf("reopen ran %v, %v", ran, err)
	}
	db.Close()

	// A failing migration keeps nothing, not even the steps before it.
	ran = nil
	v3 := mig(3, put("three"))
	v4 := mig(4, func(*Tx) error { return errors.New("disk says no") })
	if _, err := Open(path, WithMigrations(v1, v2, v3, v4)); err == nil || !strings.Contains(err.Error(), "schema version 4 (step): disk says no") {
		t.Fatalf("failing migration: %v", err)
	}
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := db.SchemaVersion(ctx); v != 2 {
		t.Errorf("version after failed migration = %d", v)
	}
	_ = db.View(ctx, func(tx *Tx) error {
		var b bool
		if err := GetJSON(tx, []string{"data"}, "three", &b); !errdefs.Is(err, errdefs.NotFound) {
			t.Errorf("partial migration kept: %v", err)
		}
		return nil
	})
	db.Close()

	// A read-only open cannot migrate.
	if _, err := Open(path, WithReadOnly(), WithMigrations(v1, v2, v3)); !errdefs.Is(err, errdefs.FailedPrecondition) {
		t.Errorf("read-only migration: %v", err)
	}
	// An upgrade to 3, then an older berth (knows only up to 2) refuses.
	ran = nil
	db, err = Open(path, WithMigrations(v1, v2, v3))
	if err != nil || !slices.Equal(ran, []int{3}) {
		t.Fatalf("upgrade ran %v, %v", ran, err)
	}
	db.Close()
	if _, err := Open(path, WithMigrations(v1, v2)); !errdefs.Is(err, errdefs.FailedPrecondition) || !strings.Contains(err.Error(), "newer than this berth supports") {
		t.Errorf("downgrade: %v", err)
	}
	// Without migrations the version is left alone.
	db, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, _ := db.SchemaVersion(ctx); v != 3 {
		t.Errorf("version = %d", v)
	}
	// A corrupt version record is reported.
	_ = db.Update(ctx, func(tx *Tx) error {
		b, _ := tx.Bucket(metaBucket)
		return b.Put([]byte(schemaVersionKey), []byte("3"))
	})
	if _, err := db.SchemaVersion(ctx); err == nil {
		t.Error("short version record accepted")
	}
}
