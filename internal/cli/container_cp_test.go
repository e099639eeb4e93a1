package cli

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitCpArg(t *testing.T) {
	for in, want := range map[string][2]string{
		"c:/etc":      {"c", "/etc"},
		"/abs:path":   {"", "/abs:path"},
		"./file:name": {"", "./file:name"},
		"file":        {"", "file"},
		"c:":          {"c", ""},
		"-":           {"", "-"},
	} {
		if c, p := splitCpArg(in); c != want[0] || p != want[1] {
			t.Errorf("splitCpArg(%q) = %q, %q", in, c, p)
		}
	}
}

func TestPrepareArchiveCopy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst copyInfo
		dir      string
		err      error
		renamed  string // top entry after rebasing the source "src" entry
	}{
		{"file into dir", copyInfo{Path: "/l/f"}, copyInfo{Path: "/c/d", Exists: true, IsDir: true}, "/c/d", nil, "f"},
		{"file onto file", copyInfo{Path: "/l/f"}, copyInfo{Path: "/c/g", Exists: true}, "/c", nil, "g"},
		{"dir onto file", copyInfo{Path: "/l/d", IsDir: true}, copyInfo{Path: "/c/g", Exists: true}, "", errCannotCopyDir, ""},
		{"dir to new name", copyInfo{Path: "/l/d", IsDir: true}, copyInfo{Path: "/c/new"}, "/c", nil, "new"},
		{"dir content to new name", copyInfo{Path: "/l/d/.", IsDir: true}, copyInfo{Path: "/c/new"}, "/c", nil, "new"},
		{"file to missing dir", copyInfo{Path: "/l/f"}, copyInfo{Path: "/c/new/"}, "", errDirNotExists, ""},
		{"file to new name", copyInfo{Path: "/l/f"}, copyInfo{Path: "/c/new"}, "/c", nil, "new"},
		{"symlink followed, renamed", copyInfo{Path: "/l/target", RebaseName: "ln"}, copyInfo{Path: "/c/x"}, "/c", nil, "x"},
	} {
		_, srcBase := splitPathDirEntry(tc.src.Path)
		if tc.src.RebaseName != "" {
			srcBase = tc.src.RebaseName
		}
		var in bytes.Buffer
		tw := tar.NewWriter(&in)
		_ = tw.WriteHeader(&tar.Header{Name: srcBase, Typeflag: tar.TypeReg})
		_ = tw.Close()
		dir, r, err := prepareArchiveCopy(&in, tc.src, tc.dst)
		if err != tc.err || dir != tc.dir {
			t.Errorf("%s: dir %q err %v; want %q %v", tc.name, dir, err, tc.dir, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		h, err := tar.NewReader(r).Next()
		if err != nil || h.Name != tc.renamed {
			t.Errorf("%s: top entry %v %v, want %q", tc.name, h, err, tc.renamed)
		}
	}
}

// TestUntarLocalContained: an archive from a container cannot write
// outside the local destination.
func TestUntarLocalContained(t *testing.T) {
	base := t.TempDir()
	dst, outside := filepath.Join(base, "dst"), filepath.Join(base, "outside")
	for _, d := range []string{dst, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(hs ...*tar.Header) io.Reader {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hs {
			if h.Typeflag == tar.TypeReg {
				h.Size = 1
			}
			_ = tw.WriteHeader(h)
			if h.Size > 0 {
				_, _ = tw.Write([]byte("x"))
			}
		}
		_ = tw.Close()
		return &b
	}
	for name, r := range map[string]io.Reader{
		"climb":           mk(&tar.Header{Name: "../outside/pwned", Typeflag: tar.TypeReg}),
		"symlink escape":  mk(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: outside}, &tar.Header{Name: "l/pwned", Typeflag: tar.TypeReg}),
		"relative escape": mk(&tar.Header{Name: "u", Typeflag: tar.TypeSymlink, Linkname: "../outside"}, &tar.Header{Name: "u/pwned", Typeflag: tar.TypeReg}),
		"hardlink out":    mk(&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../outside/x"}),
		"climbing link":   mk(&tar.Header{Name: "d/l", Typeflag: tar.TypeSymlink, Linkname: "../../outside"}),
	} {
		if err := untarLocal(r, dst); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("wrote outside the destination: %v", ents)
	}
	// Absolute names land inside.
	if err := untarLocal(mk(&tar.Header{Name: "/abs/f", Typeflag: tar.TypeReg, Mode: 0o644}), dst); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "abs", "f")); err != nil || string(b) != "x" {
		t.Errorf("absolute name: %q %v", b, err)
	}
	if cpHumanSize(2048) != "2.05kB" || !strings.HasSuffix(cpHumanSize(0), "B") {
		t.Errorf("size wording: %s %s", cpHumanSize(2048), cpHumanSize(0))
	}
}
