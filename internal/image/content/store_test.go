package content

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func randomBlob(t *testing.T, n int) ([]byte, digest.Digest) {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b, digest.FromBytes(b)
}

func walkAll(t *testing.T, s *Store) map[digest.Digest]int64 {
	t.Helper()
	got := map[digest.Digest]int64{}
	if err := s.Walk(context.Background(), func(i Info) error { got[i.Digest] = i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestPutOpenInfo(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	b, d := randomBlob(t, 100_000)
	if err := s.Put(ctx, bytes.NewReader(b), d, int64(len(b))); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx, d)
	if err != nil || info.Size != int64(len(b)) || info.Digest != d || info.CreatedAt.IsZero() {
		t.Fatalf("info = %+v, %v", info, err)
	}
	st, err := os.Stat(s.Path(d))
	if err != nil || st.Mode().Perm() != 0o444 {
		t.Fatalf("blob mode = %v, %v; want 0444", st.Mode(), err)
	}
	r, err := s.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Size() != int64(len(b)) {
		t.Fatalf("size %d", r.Size())
	}
	part := make([]byte, 10)
	if _, err := r.ReadAt(part, 500); err != nil || !bytes.Equal(part, b[500:510]) {
		t.Fatalf("ReadAt: %v", err)
	}
	all, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(all, b) {
		t.Fatalf("read back differs: %v", err)
	}
	// Putting it again is a no-op that does not read the reader.
	if err := s.Put(ctx, iotestErrReader{}, d, int64(len(b))); err != nil {
		t.Fatalf("second put: %v", err)
	}
	// Unknown size and digest: committed under the computed digest.
	b2, d2 := randomBlob(t, 10)
	if err := s.Put(ctx, bytes.NewReader(b2), "", -1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, d2); err != nil {
		t.Fatal(err)
	}
	// The empty blob is a blob.
	empty := digest.FromBytes(nil)
	if err := s.Put(ctx, bytes.NewReader(nil), empty, 0); err != nil {
		t.Fatal(err)
	}
	if i, err := s.Info(ctx, empty); err != nil || i.Size != 0 {
		t.Fatalf("empty blob: %+v %v", i, err)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("must not be read") }

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	d := digest.FromString("nothing")
	if _, err := s.Info(ctx, d); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("Info: %v", err)
	}
	if _, err := s.Open(ctx, d); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Delete(ctx, d); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("Delete: %v", err)
	}
	if err := s.Abort(ctx, "nope"); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("Abort: %v", err)
	}
	if _, err := s.Status(ctx, "nope"); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("Status: %v", err)
	}
}

func TestBadDigests(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	hex64 := strings.Repeat("a", 64)
	bad := []digest.Digest{
		"",
		"sha256:",
		"sha256:../../../../etc/passwd",
		digest.Digest("sha256:" + hex64 + "/../x"),
		digest.Digest("sha256:" + strings.Repeat("A", 64)),
		digest.Digest("sha256:" + hex64[:63]),
		digest.Digest("sha512:" + strings.Repeat("a", 128)),
		"md5:d41d8cd98f00b204e9800998ecf8427e",
		digest.Digest("../sha256:" + hex64),
		digest.Digest(hex64),
	}
	for _, d := range bad {
		if err := ValidateDigest(d); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("ValidateDigest(%q) = %v", d, err)
		}
		if _, err := s.Info(ctx, d); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("Info(%q) = %v", d, err)
		}
		if _, err := s.Open(ctx, d); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("Open(%q) = %v", d, err)
		}
		if err := s.Delete(ctx, d); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("Delete(%q) = %v", d, err)
		}
		if p := s.Path(d); p != "" {
			t.Errorf("Path(%q) = %q", d, p)
		}
		if d != "" {
			if _, err := s.Writer(ctx, "ref", d, 1); !errdefs.Is(err, errdefs.InvalidArgument) {
				t.Errorf("Writer(%q) = %v", d, err)
			}
			if err := s.Put(ctx, strings.NewReader("x"), d, 1); !errdefs.Is(err, errdefs.InvalidArgument) {
				t.Errorf("Put(%q) = %v", d, err)
			}
		}
	}
	if _, err := s.Writer(ctx, "", "", 0); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("empty ref: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "..", "x")); err == nil {
		t.Fatal("something escaped the root")
	}
}

func TestDigestMismatchLeavesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	b, _ := randomBlob(t, 4096)
	want := digest.FromString("something else")
	w, err := s.Writer(ctx, "ref-mismatch", want, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	err = w.Commit(ctx)
	if !errdefs.Is(err, errdefs.InvalidArgument) || !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("commit = %v; want invalid argument digest mismatch", err)
	}
	if got := digest.FromBytes(b); !strings.Contains(err.Error(), string(got)) || !strings.Contains(err.Error(), string(want)) {
		t.Fatalf("error %q does not name both digests", err)
	}
	if len(walkAll(t, s)) != 0 {
		t.Fatal("a blob became visible")
	}
	if _, err := s.Info(ctx, digest.FromBytes(b)); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("computed digest visible: %v", err)
	}
	if _, err := s.Status(ctx, "ref-mismatch"); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("ingest kept after mismatch: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("close after failed commit: %v", err)
	}
	// The ref is free again.
	w2, err := s.Writer(ctx, "ref-mismatch", "", -1)
	if err != nil || w2.Offset() != 0 {
		t.Fatalf("reopen: %v offset %d", err, w2.Offset())
	}
	w2.Close()
	// Put with a wrong digest: the same.
	if err := s.Put(ctx, bytes.NewReader(b), want, -1); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("put mismatch: %v", err)
	}
	if len(walkAll(t, s)) != 0 {
		t.Fatal("a blob became visible")
	}
}

func TestSizeMismatch(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	b, d := randomBlob(t, 1000)

	// Too short: kept, can be completed.
	w, err := s.Writer(ctx, "short", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b[:600])
	err = w.Commit(ctx)
	if !errdefs.Is(err, errdefs.FailedPrecondition) || !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("short commit = %v", err)
	}
	if _, err := s.Info(ctx, d); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatal("short blob visible")
	}
	w.Write(b[600:])
	if err := w.Commit(ctx); err != nil {
		t.Fatalf("completed commit: %v", err)
	}

	// Too long: discarded.
	b2, d2 := randomBlob(t, 1000)
	w, err = s.Writer(ctx, "long", d2, 999)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b2)
	err = w.Commit(ctx)
	if !errdefs.Is(err, errdefs.InvalidArgument) || !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("long commit = %v", err)
	}
	if _, err := s.Info(ctx, d2); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatal("long blob visible")
	}
	if _, err := s.Status(ctx, "long"); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatal("long ingest kept")
	}
	if err := s.Put(ctx, bytes.NewReader(b2), d2, 5); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("put size mismatch: %v", err)
	}
}

func TestPartialNeverVisible(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	b, d := randomBlob(t, 1<<20)
	w, err := s.Writer(ctx, "partial", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < len(b); off += 64 << 10 {
		w.Write(b[off : off+64<<10])
		if _, err := s.Info(ctx, d); !errdefs.Is(err, errdefs.NotFound) {
			t.Fatalf("visible at %d: %v", off, err)
		}
		if _, err := s.Open(ctx, d); !errdefs.Is(err, errdefs.NotFound) {
			t.Fatalf("openable at %d: %v", off, err)
		}
		if len(walkAll(t, s)) != 0 {
			t.Fatalf("walked at %d", off)
		}
	}
	if st, err := s.Status(ctx, "partial"); err != nil || st.Offset != int64(len(b)) || st.Ref != "partial" {
		t.Fatalf("status = %+v, %v", st, err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := walkAll(t, s); got[d] != int64(len(b)) || len(got) != 1 {
		t.Fatalf("walk = %v", got)
	}
}

func TestResumeAfterClose(t *testing.T) {
	for _, tc := range []struct {
		name        string
		dropState   bool // resume by re-hashing the data
		reopenStore bool // resume from another Store on the same root
	}{
		{"hashstate", false, false},
		{"rehash", true, false},
		{"restart", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s, root := newStore(t)
			b, d := randomBlob(t, 300_000)
			w, err := s.Writer(ctx, "pull-"+string(d), d, int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			w.Write(b[:123_456])
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Fatal("write after close succeeded")
			}
			if tc.dropState {
				ents, _ := os.ReadDir(filepath.Join(root, "ingest"))
				os.Remove(filepath.Join(root, "ingest", ents[0].Name(), "hashstate"))
			}
			if tc.reopenStore {
				if s, err = Open(root); err != nil {
					t.Fatal(err)
				}
			}
			w, err = s.Writer(ctx, "pull-"+string(d), d, int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			if w.Offset() != 123_456 {
				t.Fatalf("resumed at %d", w.Offset())
			}
			if w.Digest() != digest.FromBytes(b[:123_456]) {
				t.Fatal("resumed digest state is wrong")
			}
			// Cut back and rewrite a little.
			if err := w.Truncate(100_000); err != nil || w.Offset() != 100_000 || w.Digest() != digest.FromBytes(b[:100_000]) {
				t.Fatalf("truncate: %v at %d", err, w.Offset())
			}
			if err := w.Truncate(100_001); !errdefs.Is(err, errdefs.InvalidArgument) {
				t.Fatalf("truncate forward: %v", err)
			}
			w.Write(b[100_000:123_456])
			// Another partial round, then finish.
			w.Write(b[123_456:200_000])
			w.Close()
			w, err = s.Writer(ctx, "pull-"+string(d), d, int64(len(b)))
			if err != nil || w.Offset() != 200_000 {
				t.Fatalf("second resume: %v at %d", err, w.Offset())
			}
			w.Write(b[200_000:])
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			r, err := s.Open(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if !bytes.Equal(got, b) {
				t.Fatal("resumed blob differs")
			}
			if ing, _ := s.ListIngests(ctx); len(ing) != 0 {
				t.Fatalf("ingests left: %+v", ing)
			}
		})
	}
}

func TestConcurrentWritersSameBlob(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	b, d := randomBlob(t, 512<<10)
	const n = 16
	var wrote, skipped atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Writer(ctx, "pull-"+string(d), d, int64(len(b)))
			if errdefs.Is(err, errdefs.AlreadyExists) {
				skipped.Add(1)
				return
			}
			if err != nil {
				errs <- err
				return
			}
			defer w.Close()
			if w.Offset() != 0 {
				errs <- errors.New("second writer saw a partial ingest of a committed blob")
				return
			}
			for off := 0; off < len(b); off += 32 << 10 {
				w.Write(b[off : off+32<<10])
			}
			if err := w.Commit(ctx); err != nil {
				errs <- err
				return
			}
			wrote.Add(1)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if wrote.Load() != 1 || skipped.Load() != n-1 {
		t.Fatalf("wrote %d skipped %d; want 1 and %d", wrote.Load(), skipped.Load(), n-1)
	}

	// Different refs for the same blob race to commit: all succeed.
	b2, d2 := randomBlob(t, 256<<10)
	var wg2 sync.WaitGroup
	errs2 := make(chan error, n)
	for i := 0; i < n; i++ {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			errs2 <- s.Put(ctx, bytes.NewReader(b2), d2, int64(len(b2)))
		}()
	}
	wg2.Wait()
	close(errs2)
	for err := range errs2 {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := walkAll(t, s); len(got) != 2 || got[d2] != int64(len(b2)) {
		t.Fatalf("walk = %v", got)
	}
}

func TestSecondWriterWaits(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	w, err := s.Writer(ctx, "busy", "", -1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hello"))

	// Same store: waits until ctx ends.
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Writer(tctx, "busy", "", -1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second writer = %v; want deadline exceeded", err)
	}
	// Another Store on the same root (as another process would be): the
	// flock holds it off too.
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	tctx2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, err := s2.Writer(tctx2, "busy", "", -1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("writer from another store = %v; want deadline exceeded", err)
	}
	// Other refs are not blocked.
	if w3, err := s.Writer(ctx, "other", "", -1); err != nil {
		t.Fatal(err)
	} else {
		w3.Close()
	}

	got := make(chan *Writer)
	go func() {
		w2, err := s2.Writer(ctx, "busy", "", -1)
		if err != nil {
			t.Error(err)
		}
		got <- w2
	}()
	select {
	case <-got:
		t.Fatal("second writer did not wait")
	case <-time.After(20 * time.Millisecond):
	}
	w.Close()
	select {
	case w2 := <-got:
		if w2.Offset() != 5 {
			t.Fatalf("waiter resumed at %d", w2.Offset())
		}
		// Abort waits for the open writer; free it from another goroutine.
		go func() { time.Sleep(10 * time.Millisecond); w2.Close() }()
		if err := s.Abort(ctx, "busy"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Status(ctx, "busy"); !errdefs.Is(err, errdefs.NotFound) {
			t.Fatal("aborted ingest still there")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second writer never got the ingest")
	}
}

func TestWalkAndDelete(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	want := map[digest.Digest]int64{}
	for i := 0; i < 20; i++ {
		b, d := randomBlob(t, i*10)
		if err := s.Put(ctx, bytes.NewReader(b), d, int64(len(b))); err != nil {
			t.Fatal(err)
		}
		want[d] = int64(len(b))
	}
	got := walkAll(t, s)
	if len(got) != len(want) {
		t.Fatalf("walked %d, want %d", len(got), len(want))
	}
	for d, n := range want {
		if got[d] != n {
			t.Fatalf("%s: size %d want %d", d, got[d], n)
		}
	}
	stop := errors.New("stop")
	calls := 0
	if err := s.Walk(ctx, func(Info) error { calls++; return stop }); err != stop || calls != 1 {
		t.Fatalf("walk stop: %v after %d", err, calls)
	}
	n := 0
	for d := range want {
		if n%2 == 0 {
			if err := s.Delete(ctx, d); err != nil {
				t.Fatal(err)
			}
			delete(want, d)
		}
		n++
	}
	if got := walkAll(t, s); len(got) != len(want) {
		t.Fatalf("after delete walked %d, want %d", len(got), len(want))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Walk(cctx, func(Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("walk with cancelled ctx: %v", err)
	}
}

func TestCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	b, d := randomBlob(t, 5000)

	// A crash mid-ingest: the directory has data but no hashstate, and a
	// stray temporary file sits next to it and in blobs/.
	w, err := s.Writer(ctx, "crashed", d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b[:3000])
	w.f.Close() // no Close: simulate the process dying (lock released below)
	w.unlock()
	os.WriteFile(filepath.Join(root, "blobs", "sha256", ".tmp-junk"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "blobs", "sha256", "not-a-digest"), []byte("x"), 0o644)
	os.MkdirAll(filepath.Join(root, "ingest", "half-made-dir"), 0o700) // no ref file

	s, err = Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := walkAll(t, s); len(got) != 0 {
		t.Fatalf("walk saw leftovers: %v", got)
	}
	if _, err := s.Info(ctx, d); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatal("partial visible after crash")
	}
	ing, err := s.ListIngests(ctx)
	if err != nil || len(ing) != 1 || ing[0].Ref != "crashed" || ing[0].Offset != 3000 {
		t.Fatalf("ingests = %+v, %v", ing, err)
	}
	w, err = s.Writer(ctx, "crashed", d, int64(len(b)))
	if err != nil || w.Offset() != 3000 {
		t.Fatalf("resume after crash: %v at %d", err, w.Offset())
	}
	w.Write(b[3000:])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}

	// A crash after the link but before the ingest was removed: the next
	// writer reports AlreadyExists and cleans up.
	b2, d2 := randomBlob(t, 100)
	w, _ = s.Writer(ctx, "late", d2, -1)
	w.Write(b2)
	w.f.Chmod(0o444)
	os.Link(filepath.Join(w.dir, "data"), s.Path(d2))
	w.f.Close()
	w.unlock()
	if _, err := s.Writer(ctx, "late", d2, -1); !errdefs.Is(err, errdefs.AlreadyExists) {
		t.Fatalf("writer after late crash: %v", err)
	}
	if _, err := s.Status(ctx, "late"); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatal("stale ingest kept")
	}
}

func TestWriterAlreadyExistsAndCancel(t *testing.T) {
	ctx := context.Background()
	s, _ := newStore(t)
	b, d := randomBlob(t, 10)
	if err := s.Put(ctx, bytes.NewReader(b), d, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer(ctx, "x", d, 10); !errdefs.Is(err, errdefs.AlreadyExists) {
		t.Fatalf("writer of existing blob: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	b2, d2 := randomBlob(t, 10)
	if err := s.Put(cctx, bytes.NewReader(b2), d2, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("put with cancelled ctx: %v", err)
	}
	if _, err := s.Info(ctx, d2); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatal("cancelled put visible")
	}
}
