package bench

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// The reference build of issue 8's performance section: a 2,000-file
// context, two stages, a few RUN steps.
const refDockerfile = `FROM busybox AS build
WORKDIR /src
COPY . .
RUN find . -type f | wc -l > /count && cat files/0/f0.txt > /first
RUN mkdir /out && cp /count /first /out/

FROM busybox
COPY --from=build /out /app
RUN ls /app > /listing
CMD ["cat", "/app/count"]
`

// RefContext writes the reference build's context into dir: the
// Dockerfile and 2,000 small files in 20 directories.
func RefContext(dir string) error {
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(refDockerfile), 0o644); err != nil {
		return err
	}
	for i := 0; i < 2000; i++ {
		p := filepath.Join(dir, "files", fmt.Sprint(i/100), fmt.Sprintf("f%d.txt", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(strings.Repeat(fmt.Sprintf("file %d\n", i), 20)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// tarContext is what a CLI sends: the context directory as a tar.
func tarContext(dir string) (*bytes.Buffer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &buf, tw.Close()
}

// build sends dir to berthd's POST /build and reads the stream to its end.
func (e *engine) build(b *testing.B, dir string, noCache bool) {
	t0 := time.Now()
	buf, err := tarContext(dir)
	if err != nil {
		b.Fatal(err)
	}
	e.tarTime += time.Since(t0)
	res, err := e.client.ImageBuild(context.Background(), buf, client.ImageBuildOptions{Tags: []string{"ref:latest"}, NoCache: noCache})
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	for {
		var m struct {
			Error string `json:"error"`
		}
		if err := dec.Decode(&m); err == io.EOF {
			return
		} else if err != nil {
			b.Fatal(err)
		}
		if m.Error != "" {
			b.Fatal(m.Error)
		}
	}
}

func refEngine(b *testing.B) (*engine, string) {
	e := startEngine(b)
	// The RUN steps need a shell and a few tools.
	data, err := os.ReadFile(DefaultBusybox)
	if err != nil {
		b.Fatal(err)
	}
	var img bytes.Buffer
	tw := tar.NewWriter(&img)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data))})
	tw.Write(data)
	for _, a := range []string{"sh", "find", "wc", "cat", "cp", "mkdir", "ls", "true"} {
		tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox"})
	}
	tw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777})
	tw.Close()
	rc, err := e.client.ImageImport(context.Background(), client.ImageImportSource{Source: &img, SourceName: "-"}, "busybox:latest", client.ImageImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rc.Close()
	dir := b.TempDir()
	if err := RefContext(dir); err != nil {
		b.Fatal(err)
	}
	return e, dir
}

// BenchmarkBuildCold builds the reference build without the cache (the
// base image present, as after a pull).
func BenchmarkBuildCold(b *testing.B) {
	e, dir := refEngine(b)
	for b.Loop() {
		e.build(b, dir, true)
	}
}

// BenchmarkBuildCached rebuilds the unchanged reference build: every step
// a cache hit (issue 8's budget: 50 ms).
func BenchmarkBuildCached(b *testing.B) {
	e, dir := refEngine(b)
	e.build(b, dir, false)
	e.tarTime = 0
	for b.Loop() {
		e.build(b, dir, false)
	}
	b.ReportMetric(float64(e.tarTime.Microseconds())/float64(b.N)/1000, "client-tar-ms/op")
}

// BenchmarkBuildOneChange rebuilds after editing one source file: the
// COPY of the context and what follows run again.
func BenchmarkBuildOneChange(b *testing.B) {
	e, dir := refEngine(b)
	e.build(b, dir, false)
	n := 0
	for b.Loop() {
		n++
		b.StopTimer()
		if err := os.WriteFile(filepath.Join(dir, "files", "7", "f700.txt"), []byte(fmt.Sprint("edit ", n)), 0o644); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		e.build(b, dir, false)
	}
}
