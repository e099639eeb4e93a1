package archive

import (
	"archive/tar"
	"bytes"
	stdgzip "compress/gzip"
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

func tarNames(t *testing.T, data []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		n := h.Name
		if h.Typeflag == tar.TypeLink {
			n += " => " + h.Linkname
		}
		names = append(names, n)
	}
}

// richLayer is an upper directory's worth of every kind of entry.
func richLayer() []ent {
	setuid := reg("usr/bin/prog", "#!/bin/sh\n")
	setuid.hdr.Mode, setuid.hdr.Uid, setuid.hdr.Gid = 0o4711, 0, 10
	withX := reg("etc/conf", "k=v\n")
	withX.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.tag": "conf", "SCHILY.xattr.trusted.note": "\x00\x01binary"}
	owned := dirE("home/app/")
	owned.hdr.Uid, owned.hdr.Gid, owned.hdr.Mode = 1000, 1000, 0o2750
	fifo := ent{hdr: tar.Header{Name: "run/ctl", Typeflag: tar.TypeFifo, Mode: 0o620, ModTime: t0}}
	return []ent{
		dirE("usr/"), dirE("usr/bin/"), setuid, hard("usr/bin/prog2", "usr/bin/prog"),
		dirE("etc/"), withX, sym("etc/alt", "/usr/bin/prog"),
		dirE("home/"), owned, reg("home/app/.profile", "export A=1\n"),
		dirE("dev/"), chr("dev/null", 1, 3), dirE("run/"), fifo,
		wh(".wh.removed"), dirE("opq/"), reg("opq/new", "n"), wh("opq/.wh..wh..opq"),
		dirE("usr/lib/"), wh("usr/lib/.wh.libold.so"),
		reg("a.txt", "after a/ in sort order"), dirE("a/"), reg("a/z", "z"),
	}
}

func TestDiffRoundTrip(t *testing.T) {
	requireRoot(t)
	upper := t.TempDir()
	mustApply(t, upper, richLayer()...)
	lower := t.TempDir()

	var out bytes.Buffer
	d1, n1, err := Diff(context.Background(), []string{lower}, upper, &out)
	if err != nil {
		t.Fatal(err)
	}
	if n1 != int64(out.Len()) {
		t.Errorf("size %d, wrote %d", n1, out.Len())
	}
	names := tarNames(t, out.Bytes())
	want := []string{
		"a/", "a/z", "a.txt", "dev/", "dev/null", "etc/", "etc/alt", "etc/conf",
		"home/", "home/app/", "home/app/.profile", "opq/", "opq/.wh..wh..opq", "opq/new",
		".wh.removed", "run/", "run/ctl", "usr/", "usr/bin/", "usr/bin/prog", "usr/bin/prog2 => usr/bin/prog",
		"usr/lib/", "usr/lib/.wh.libold.so",
	}
	if !slices.Equal(names, want) {
		t.Errorf("entries:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	// Same upper, same bytes.
	var again bytes.Buffer
	d2, _, err := Diff(context.Background(), []string{lower}, upper, &again)
	if err != nil || d2 != d1 || !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Errorf("not reproducible: %s %s %v", d1, d2, err)
	}
	// Apply(Diff(x)) == x.
	copyDir := t.TempDir()
	res, err := applyBytes(t, copyDir, out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if res.DiffID != d1 {
		t.Errorf("Apply saw %s, Diff returned %s", res.DiffID, d1)
	}
	if d := diffStates(treeState(t, upper), treeState(t, copyDir)); d != "" {
		t.Errorf("round trip differs:\n%s", d)
	}
}

func TestDiffHardlinkedWhiteouts(t *testing.T) {
	requireRoot(t)
	// Overlay makes whiteouts as links of one shared inode.
	upper := t.TempDir()
	if err := unix.Mknod(filepath.Join(upper, "x"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(upper, "x"), filepath.Join(upper, "y")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, _, err := Diff(context.Background(), nil, upper, &out); err != nil {
		t.Fatal(err)
	}
	if got := tarNames(t, out.Bytes()); !slices.Equal(got, []string{".wh.x", ".wh.y"}) {
		t.Errorf("got %v", got)
	}
}

func TestDiffRefusesRedirect(t *testing.T) {
	requireRoot(t)
	upper := t.TempDir()
	os.Mkdir(filepath.Join(upper, "moved"), 0o755)
	if err := unix.Setxattr(filepath.Join(upper, "moved"), "trusted.overlay.redirect", []byte("/orig"), 0); err != nil {
		t.Skip(err)
	}
	_, _, err := Diff(context.Background(), nil, upper, io.Discard)
	if !errdefs.Is(err, errdefs.NotImplemented) {
		t.Fatalf("got %v", err)
	}
}

func TestTarExport(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	mustApply(t, dir, richLayer()...)
	var out bytes.Buffer
	if err := Tar(context.Background(), dir, &out); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h.Name, ".wh.") {
			t.Errorf("export converted a whiteout: %s", h.Name)
		}
		for k := range h.PAXRecords {
			if strings.Contains(k, "overlay") {
				t.Errorf("export leaked %s on %s", k, h.Name)
			}
		}
		if h.Name == "removed" && h.Typeflag != tar.TypeChar {
			t.Errorf("whiteout device exported as %q", h.Typeflag)
		}
	}
}

func TestDiffCanceled(t *testing.T) {
	requireRoot(t)
	upper := t.TempDir()
	mustApply(t, upper, reg("f", "x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := Diff(ctx, nil, upper, io.Discard); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}

func TestParallelGzip(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	words := []string{"layer ", "overlay ", "berth ", "container ", "image ", "\n"}
	var text bytes.Buffer
	for text.Len() < 3*gzBlockSize+12345 {
		text.WriteString(words[rng.Intn(len(words))])
	}
	noise := make([]byte, gzBlockSize+7)
	rng.Read(noise)
	for name, in := range map[string][]byte{
		"empty": nil, "one": {1}, "block": text.Bytes()[:gzBlockSize],
		"text": text.Bytes(), "noise": noise,
	} {
		t.Run(name, func(t *testing.T) {
			enc := func() []byte {
				var b bytes.Buffer
				w := Compress(&b, Gzip, 0)
				// Odd write sizes cross block boundaries.
				for rest := in; len(rest) > 0; {
					n := min(len(rest), 70001)
					if _, err := w.Write(rest[:n]); err != nil {
						t.Fatal(err)
					}
					rest = rest[n:]
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				return b.Bytes()
			}
			blob := enc()
			zr, err := stdgzip.NewReader(bytes.NewReader(blob))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(got, in) {
				t.Fatalf("round trip: %v (len %d vs %d)", err, len(got), len(in))
			}
			if !bytes.Equal(enc(), blob) {
				t.Error("output is not deterministic")
			}
		})
	}
}

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n -= len(p); f.n < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestParallelGzipWriteError(t *testing.T) {
	w := Compress(&failWriter{n: 100}, Gzip, 1)
	noise := make([]byte, 3*gzBlockSize)
	rand.New(rand.NewSource(2)).Read(noise)
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		_, err = w.Write(noise)
	}
	if cerr := w.Close(); err == nil && cerr == nil {
		t.Fatal("no error")
	}
}

func BenchmarkCompressGzip(b *testing.B) {
	data := bytes.Repeat([]byte("some moderately compressible layer content 0123456789\n"), 200000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		w := Compress(io.Discard, Gzip, 0)
		w.Write(data)
		w.Close()
	}
}

func BenchmarkApplyGzip(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	var ents []ent
	rng := rand.New(rand.NewSource(3))
	for i := range 2000 {
		body := make([]byte, 4096+rng.Intn(60000))
		for j := range body {
			body[j] = byte('a' + rng.Intn(8))
		}
		ents = append(ents, reg("d"+string(rune('a'+i%20))+"/f"+itoa(i), string(body)))
	}
	data := buildTar(b, ents...)
	var blob bytes.Buffer
	w := Compress(&blob, Gzip, 0)
	w.Write(data)
	w.Close()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dir := b.TempDir()
		rc, _, _ := DecompressStream(bytes.NewReader(blob.Bytes()))
		if _, err := Apply(context.Background(), dir, rc, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		rc.Close()
		os.RemoveAll(dir)
	}
}

// stallingReader returns data, then blocks until release is closed.
type stallingReader struct {
	data    []byte
	release chan struct{}
}

func (s *stallingReader) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		<-s.release
		return 0, errors.New("closed")
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}

func TestStreamCloseDoesNotWaitForStalledSource(t *testing.T) {
	var blob bytes.Buffer
	w := Compress(&blob, Gzip, 1)
	w.Write(bytes.Repeat([]byte("abc"), 1<<20))
	w.Close()
	src := &stallingReader{data: blob.Bytes()[:blob.Len()/3], release: make(chan struct{})}
	defer close(src.release)
	rc, _, err := DecompressStream(src)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { rc.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a stalled source")
	}
}

func TestDiffRefusesMetacopy(t *testing.T) {
	requireRoot(t)
	for _, key := range []string{"trusted.overlay.metacopy", "user.overlay.metacopy"} {
		upper := t.TempDir()
		os.WriteFile(filepath.Join(upper, "f"), nil, 0o644)
		if err := unix.Setxattr(filepath.Join(upper, "f"), key, nil, 0); err != nil {
			t.Skip(err)
		}
		_, _, err := Diff(context.Background(), nil, upper, io.Discard)
		if !errdefs.Is(err, errdefs.NotImplemented) {
			t.Fatalf("%s: got %v", key, err)
		}
	}
}
