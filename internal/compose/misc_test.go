package compose

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
)

func TestLogPrinter(t *testing.T) {
	var out bytes.Buffer
	lp := &LogPrinter{Out: &out, Project: "proj"}
	lp.Register("proj-web-1")
	lp.Register("proj-db-10")
	w := &lineWriter{lp: lp, name: "proj-web-1"}
	_, _ = w.Write([]byte("hello\npart"))
	_, _ = w.Write([]byte("ial\r\n"))
	_, _ = w.Write([]byte("no newline"))
	w.flush()
	lp.Status("proj-db-10", "exited with code 0")
	want := "web-1  | hello\nweb-1  | partial\nweb-1  | no newline\ndb-10 exited with code 0\n"
	if out.String() != want {
		t.Fatalf("got %q\nwant %q", out.String(), want)
	}
	out.Reset()
	lp = &LogPrinter{Out: &out, NoPrefix: true}
	lp.Line("custom", "x")
	if out.String() != "x\n" {
		t.Fatalf("no prefix: %q", out.String())
	}
	out.Reset()
	lp = &LogPrinter{Out: &out, Color: true}
	lp.Line("a", "x")
	if out.String() != "\x1b[36ma  |\x1b[0m x\n" {
		t.Fatalf("colour: %q", out.String())
	}
}

func TestParsePublish(t *testing.T) {
	cases := map[string]string{
		"80":                  "/0/80/tcp",
		"8080:80":             "/8080/80/tcp",
		"127.0.0.1:53:53/udp": "127.0.0.1/53/53/udp",
	}
	for spec, want := range cases {
		pc, err := ParsePublish(spec)
		if err != nil {
			t.Fatalf("%s: %v", spec, err)
		}
		pub := pc.Published
		if pub == "" {
			pub = "0"
		}
		if got := pc.HostIP + "/" + pub + "/" + strconv.Itoa(int(pc.Target)) + "/" + pc.Protocol; got != want {
			t.Errorf("%s: %s want %s", spec, got, want)
		}
	}
	if _, err := ParsePublish("a:b:c:d"); err == nil {
		t.Error("bad spec accepted")
	}
}

// TestBuildContext checks the classic-builder context: .dockerignore
// exclusions and exceptions, the Dockerfile always sent, inline
// Dockerfiles added.
func TestBuildContext(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"Dockerfile":       "FROM busybox\n",
		".dockerignore":    "# comment\n*.log\nbuild/\n!build/keep.txt\n**/secret\n",
		"main.go":          "package main\n",
		"app.log":          "noise",
		"build/out.bin":    "x",
		"build/keep.txt":   "keep",
		"deep/a/secret":    "s",
		"deep/a/other.txt": "o",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := writeContext(&buf, dir, "Dockerfile", "FROM scratch\n"); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var files []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			files = append(files, h.Name)
		}
	}
	sort.Strings(files)
	want := []string{inlineDockerfile, ".dockerignore", "Dockerfile", "build/keep.txt", "deep/a/other.txt", "main.go"}
	sort.Strings(want)
	if len(files) != len(want) {
		t.Fatalf("context files %v, want %v", files, want)
	}
	for i := range want {
		if files[i] != want[i] {
			t.Fatalf("context files %v, want %v", files, want)
		}
	}
}
