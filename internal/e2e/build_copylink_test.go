package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBuildCopyLinksUnchangedFiles: a COPY that misses the cache after
// an edit reuses, by hard link, the files of its earlier result that are
// exactly what it would write — and only those: the edited file, a file
// whose mode changed and one whose mtime changed are written anew, and a
// later COPY over files a lower layer has is never linked; a build of the
// same context sent as a tar in between (same cache keys, other mtimes)
// does not spoil it. The image holds the context's content, modes and
// mtimes either way.
func TestBuildCopyLinksUnchangedFiles(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	bt := bins.cli
	files := map[string]string{"Dockerfile": "FROM busybox\nCOPY a/ /c/\nCOPY b/ /c/\n"}
	for i := 0; i < 40; i++ {
		files[fmt.Sprintf("a/d%d/f%d.txt", i%4, i)] = fmt.Sprintf("file %d\n", i)
	}
	files["b/d0/f0.txt"] = "overwritten\n"
	files["b/new.txt"] = "new\n"
	dir := buildDir(t, files)
	os.Chmod(filepath.Join(dir, "a/d1/f1.txt"), 0o755)
	// What the image must hold: the context's files, b/ over a/.
	want := func() string {
		t.Helper()
		var lines []string
		for _, top := range []string{"a", "b"} {
			filepath.Walk(filepath.Join(dir, top), func(p string, fi os.FileInfo, err error) error {
				if err != nil || fi.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(filepath.Join(dir, top), p)
				b, _ := os.ReadFile(p)
				line := fmt.Sprintf("/c/%s %o %d %q", rel, fi.Mode().Perm(), fi.ModTime().Unix(), b)
				for i, l := range lines {
					if strings.HasPrefix(l, "/c/"+rel+" ") {
						lines = append(lines[:i], lines[i+1:]...)
						break
					}
				}
				lines = append(lines, line)
				return nil
			})
		}
		sort.Strings(lines)
		return strings.Join(lines, "\n") + "\n"
	}
	got := func(tag string) string {
		t.Helper()
		out := d.output(bt, "run", "--rm", tag, "sh", "-c", `find /c -type f | sort | while read f; do printf '%s %s "%s"\n' "$f" "$(stat -c '%a %Y' "$f")" "$(cat "$f" | sed 's/$/\\n/' | tr -d '\n')"; done`)
		return out
	}
	d.mustBuild(bt, nil, "-t", "link:1", dir)
	if g, w := got("link:1"), want(); g != w {
		t.Fatalf("first build:\n%s\nwant\n%s", g, w)
	}
	// The same context sent as a tar hits the same cache entries; its
	// files (whole-second mtimes) must not become the ones to link from.
	t.Setenv("BERTH_BUILD_CONTEXT", "tar")
	d.mustBuild(bt, nil, "--no-cache", "-t", "link:tar", dir)
	t.Setenv("BERTH_BUILD_CONTEXT", "")
	d.mustBuild(bt, nil, "-t", "link:tar", dir) // cache hits: the tar build's results
	// One file edited, one chmodded, one touched (same content).
	writeFile(t, filepath.Join(dir, "a/d2/f2.txt"), "edited\n")
	os.Chmod(filepath.Join(dir, "a/d3/f3.txt"), 0o600)
	later := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, "a/d0/f4.txt"), later, later)
	// b/ changes too, so its COPY misses and has an earlier result.
	writeFile(t, filepath.Join(dir, "b/new.txt"), "newer\n")
	d.mustBuild(bt, nil, "-t", "link:2", dir)
	if g, w := got("link:2"), want(); g != w {
		t.Fatalf("second build:\n%s\nwant\n%s", g, w)
	}
	// Which files share an inode with the first build's layer: the 37
	// unchanged ones of a/, none of b/'s.
	shared := map[string]bool{}
	paths, _ := filepath.Glob(filepath.Join(d.dataRoot, "snapshots", "*", "fs", "c", "*", "*"))
	paths2, _ := filepath.Glob(filepath.Join(d.dataRoot, "snapshots", "*", "fs", "c", "*"))
	for _, p := range append(paths, paths2...) {
		var st syscall.Stat_t
		if syscall.Lstat(p, &st) == nil && st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Nlink > 1 {
			rel := p[strings.Index(p, "/fs/c/")+len("/fs/c/"):]
			shared[rel] = true
		}
	}
	for _, f := range []string{"d2/f2.txt", "d3/f3.txt", "d0/f4.txt", "new.txt"} {
		if shared[f] {
			t.Errorf("%s is linked", f)
		}
	}
	if len(shared) != 37 {
		t.Errorf("%d files shared between the builds' layers, want 37: %v", len(shared), shared)
	}
}
