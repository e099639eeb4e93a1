package metadata

import (
	"context"
	"slices"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestRefCounting(t *testing.T) {
	db, _ := openTest(t)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	update := func(fn func(tx *Tx)) {
		t.Helper()
		must(db.Update(ctx, func(tx *Tx) error { fn(tx); return nil }))
	}
	view := func(fn func(tx *Tx)) {
		t.Helper()
		must(db.View(ctx, func(tx *Tx) error { fn(tx); return nil }))
	}
	refs := func(tx *Tx, kind, key string) []string {
		t.Helper()
		r, err := Refs(tx, kind, key)
		must(err)
		return r
	}
	unref := func(tx *Tx, kind string) []string {
		t.Helper()
		r, err := Unreferenced(tx, kind)
		must(err)
		return r
	}

	update(func(tx *Tx) {
		// Two images share a base layer; a blob is written but unused.
		must(IncRef(tx, "blob", "sha256:base", "image/a"))
		must(IncRef(tx, "blob", "sha256:base", "image/b"))
		must(IncRef(tx, "blob", "sha256:base", "image/a")) // idempotent
		must(IncRef(tx, "blob", "sha256:top-a", "image/a"))
		must(IncRef(tx, "snapshot", "chain1", "image/a"))
		must(Track(tx, "blob", "sha256:orphan"))
		must(Track(tx, "blob", "sha256:base")) // tracking a held object changes nothing
	})
	view(func(tx *Tx) {
		if got := refs(tx, "blob", "sha256:base"); !slices.Equal(got, []string{"image/a", "image/b"}) {
			t.Errorf("Refs(base) = %v", got)
		}
		if got := unref(tx, "blob"); !slices.Equal(got, []string{"sha256:orphan"}) {
			t.Errorf("Unreferenced(blob) = %v", got)
		}
		if got := unref(tx, "snapshot"); len(got) != 0 {
			t.Errorf("Unreferenced(snapshot) = %v", got)
		}
		if got := unref(tx, "volume"); got != nil {
			t.Errorf("Unreferenced(unknown kind) = %v", got)
		}
		if got := refs(tx, "blob", "sha256:unknown"); got != nil {
			t.Errorf("Refs(unknown) = %v", got)
		}
		if !Tracked(tx, "blob", "sha256:orphan") || Tracked(tx, "blob", "sha256:unknown") || Tracked(tx, "", "x") {
			t.Error("Tracked")
		}
		held, err := Held(tx, "image/a")
		must(err)
		want := []Ref{{"blob", "sha256:base"}, {"blob", "sha256:top-a"}, {"snapshot", "chain1"}}
		if !slices.Equal(held, want) {
			t.Errorf("Held(image/a) = %v", held)
		}
		// Writes in a View are refused.
		for name, err := range map[string]error{
			"IncRef": IncRef(tx, "blob", "x", "h"),
			"DecRef": DecRef(tx, "blob", "sha256:base", "image/a"),
			"Track":  Track(tx, "blob", "y"),
		} {
			if !errdefs.Is(err, errdefs.FailedPrecondition) {
				t.Errorf("%s in View: %v", name, err)
			}
		}
	})

	// Deleting image b releases its refs; base is still held by a.
	update(func(tx *Tx) {
		must(ReleaseHolder(tx, "image/b"))
		must(DecRef(tx, "blob", "sha256:base", "image/b")) // again: no-op
		must(DecRef(tx, "blob", "sha256:never", "image/b"))
	})
	view(func(tx *Tx) {
		if got := refs(tx, "blob", "sha256:base"); !slices.Equal(got, []string{"image/a"}) {
			t.Errorf("Refs(base) after b = %v", got)
		}
		if held, _ := Held(tx, "image/b"); held != nil {
			t.Errorf("Held(image/b) = %v", held)
		}
		if got := unref(tx, "blob"); !slices.Equal(got, []string{"sha256:orphan"}) {
			t.Errorf("Unreferenced(blob) = %v", got)
		}
	})

	// Forget refuses held objects, then the collector's cycle.
	update(func(tx *Tx) {
		if err := Forget(tx, "blob", "sha256:base"); !errdefs.Is(err, errdefs.Conflict) {
			t.Errorf("Forget(held) = %v", err)
		}
		must(DecRef(tx, "blob", "sha256:top-a", "image/a"))
		must(ReleaseHolder(tx, "image/a"))
	})
	var deleted []string
	update(func(tx *Tx) {
		for _, kind := range []string{"blob", "snapshot"} {
			keys := unref(tx, kind)
			for _, k := range keys {
				must(Forget(tx, kind, k))
			}
			tx.OnCommit(func() { deleted = append(deleted, keys...) })
		}
		must(Forget(tx, "blob", "sha256:gone-already"))
	})
	if !slices.Equal(deleted, []string{"sha256:base", "sha256:orphan", "sha256:top-a", "chain1"}) {
		t.Errorf("collected %v", deleted)
	}
	view(func(tx *Tx) {
		for _, kind := range []string{"blob", "snapshot"} {
			if got := unref(tx, kind); len(got) != 0 {
				t.Errorf("after GC Unreferenced(%s) = %v", kind, got)
			}
		}
		if b, _ := tx.Bucket(byHolderBucket); b.Len() != 0 {
			t.Errorf("%d holders left", b.Len())
		}
	})
}

func TestRefArgs(t *testing.T) {
	db, _ := openTest(t)
	err := db.Update(context.Background(), func(tx *Tx) error {
		for name, err := range map[string]error{
			"empty kind":    IncRef(tx, "", "k", "h"),
			"nul kind":      IncRef(tx, "a\x00b", "k", "h"),
			"empty key":     IncRef(tx, "blob", "", "h"),
			"nul key":       DecRef(tx, "blob", "a\x00", "h"),
			"empty holder":  IncRef(tx, "blob", "k", ""),
			"track":         Track(tx, "", "k"),
			"unreferenced":  func() error { _, err := Unreferenced(tx, ""); return err }(),
			"refs":          func() error { _, err := Refs(tx, "blob", ""); return err }(),
			"held":          func() error { _, err := Held(tx, ""); return err }(),
			"release":       ReleaseHolder(tx, ""),
			"forget":        Forget(tx, "blob", ""),
			"decref holder": DecRef(tx, "blob", "k", ""),
		} {
			if !errdefs.Is(err, errdefs.InvalidArgument) {
				t.Errorf("%s: %v", name, err)
			}
		}
		// Keys with '/' and ':' are fine: they are bucket names, not paths.
		if err := IncRef(tx, "snapshot", "a/b:c", "container/x"); err != nil {
			return err
		}
		r, err := Refs(tx, "snapshot", "a/b:c")
		if err != nil || !slices.Equal(r, []string{"container/x"}) {
			t.Errorf("Refs = %v, %v", r, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
