package build

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkContext2000 reads and checksums a 2,000-file context, the
// daemon's share of a fully cached rebuild of issue 8's reference build.
func BenchmarkContext2000(b *testing.B) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < 2000; i++ {
		data := strings.Repeat(fmt.Sprintf("file %d\n", i), 20)
		tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("files/%d/f%d.txt", i/100, i), Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()})
		tw.Write([]byte(data))
	}
	tw.Close()
	for b.Loop() {
		dir := b.TempDir()
		t0 := time.Now()
		fsys, _, err := readContext(bytes.NewReader(buf.Bytes()), dir)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		sels, err := selectSources(fsys, ".", nil, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := checksum(sels); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(t1.Sub(t0).Microseconds()), "read-µs")
		b.ReportMetric(float64(time.Since(t1).Microseconds()), "checksum-µs")
		fsys.Close()
	}
}

// BenchmarkDirContext2000 walks and checksums a 2,000-file context read
// in place with a warm checksum cache: the daemon's share of a fully
// cached rebuild from `berth build` on the local socket.
func BenchmarkDirContext2000(b *testing.B) {
	old := racyWindow
	racyWindow = -time.Hour // the files were just written: cache them all the same
	defer func() { racyWindow = old }()
	dir := b.TempDir()
	for i := 0; i < 2000; i++ {
		p := filepath.Join(dir, "files", fmt.Sprint(i/100), fmt.Sprintf("f%d.txt", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("file %d\n", i), 20)), 0o644)
	}
	bl := &Builder{}
	fsys := bl.dirContext(dir)
	sum := func() {
		sels, err := selectSources(fsys, ".", nil, false)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := checksum(sels); err != nil {
			b.Fatal(err)
		}
	}
	sum()
	for b.Loop() {
		sum()
	}
}
