package build

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

func TestParseErrorsNameTheLine(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"FROM busybox\nRUN true\nFROBNICATE x\n", "line 3: unknown instruction: FROBNICATE"},
		{"RUN true\n", "line 1"},
		{"FROM busybox\n\n\nHEALTHCHECK --interval=x CMD true\n", "line 4"},
		{"FROM busybox\nCOPY\n", "line 2"},
		{"FROM busybox\nENV\n", "line 2"},
		{"", "file with no instructions"},
		{"# only a comment\n", "file with no instructions"},
		{"FROM busybox\nRUN <<EOF\nunterminated\n", ""},
	} {
		_, err := parseDockerfile([]byte(c.src))
		if c.want == "" {
			// Must not panic; an error or a parse is both fine.
			continue
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("%q: %v, want %q (InvalidArgument)", c.src, err, c.want)
		}
	}
	df, err := parseDockerfile([]byte("ARG V=1\nFROM busybox:$V AS One\nRUN true\nFROM one\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(df.metaArgs) != 1 || len(df.stages) != 2 {
		t.Fatalf("stages %d meta %d", len(df.stages), len(df.metaArgs))
	}
	if i, ok := df.stageIndex("ONE", 2); !ok || i != 0 {
		t.Fatalf("stage by name, case-insensitive: %d %v", i, ok)
	}
	if _, ok := df.stageIndex("one", 0); ok {
		t.Fatalf("a stage cannot refer to itself or later ones")
	}
	if i, ok := df.stageIndex("0", 1); !ok || i != 0 {
		t.Fatalf("stage by index: %d %v", i, ok)
	}
}

func newTestDispatcher(env []string, args map[string]string) *dispatcher {
	st := &image.State{}
	st.Config.Config.Env = env
	d := &dispatcher{s: &session{df: &dockerfile{escape: '\\'}, opts: Options{}}, st: st, args: newEnvMap()}
	for k, v := range args {
		d.args.Set(k, v)
	}
	return d
}

func TestExpansion(t *testing.T) {
	d := newTestDispatcher([]string{"A=env", "P=/usr/bin"}, map[string]string{"A": "arg", "B": "argb"})
	ex := d.expander()
	for in, want := range map[string]string{
		"$A":             "env", // ENV wins over ARG
		"${B}":           "argb",
		"${C:-default}":  "default",
		"${B:+set}":      "set",
		"'$A'":           "$A",
		`"$A $B"`:        "env argb",
		`\$A`:            "$A",
		"${P}/local":     "/usr/bin/local",
		"${NOPE}x":       "x",
		"${B%b}":         "arg",
		"${B#arg}":       "b",
		"pre-${A}-post":  "pre-env-post",
		"${B/arg/ARG}":   "ARGb",
		"${A:-$B}":       "env",
		"${UNSET:-$B}":   "argb",
		"no expansion $": "no expansion $",
	} {
		got, err := ex(in)
		if err != nil || got != want {
			t.Errorf("expand %q = %q, %v; want %q", in, got, err, want)
		}
	}
	// Only ARGs that ENV does not set reach RUN's environment.
	if got := d.argsEnv(); len(got) != 1 || got[0] != "B=argb" {
		t.Errorf("argsEnv = %v", got)
	}
	d.s.opts.BuildArgs = map[string]*string{"HTTP_PROXY": ptr("http://p"), "OTHER": ptr("x")}
	if got := strings.Join(d.argsEnv(), ","); got != "B=argb,HTTP_PROXY=http://p" {
		t.Errorf("argsEnv with a proxy build arg = %v", got)
	}
}

func ptr(s string) *string { return &s }

func TestCommandLine(t *testing.T) {
	d := newTestDispatcher(nil, nil)
	run := func(src string) []string {
		df, err := parseDockerfile([]byte("FROM scratch\n" + src))
		if err != nil {
			t.Fatal(err)
		}
		return d.commandLine(df.stages[0].Commands[0].(*instructions.RunCommand).ShellDependantCmdLine)
	}
	if got := run("RUN echo hi\n"); strings.Join(got, "|") != "/bin/sh|-c|echo hi" {
		t.Errorf("shell form: %q", got)
	}
	if got := run(`RUN ["echo", "hi"]` + "\n"); strings.Join(got, "|") != "echo|hi" {
		t.Errorf("exec form: %q", got)
	}
	if got := run("RUN <<EOF\necho a\necho b\nEOF\n"); got[2] != "echo a\necho b\n" {
		t.Errorf("heredoc script: %q", got)
	}
	if got := run("RUN cat <<EOF > /f\nline\nEOF\n"); got[2] != "cat <<EOF > /f\nline\nEOF\n" {
		t.Errorf("heredoc as input: %q", got)
	}
	d.st.Config.Config.Shell = []string{"/bin/bash", "-ec"}
	if got := run("RUN echo hi\n"); strings.Join(got, "|") != "/bin/bash|-ec|echo hi" {
		t.Errorf("SHELL: %q", got)
	}
}

// contextOf makes a tarFS of files (name → content; a name ending in
// "@" + target is a symlink).
func contextOf(t *testing.T, files map[string]string) *tarFS {
	t.Helper()
	var hs []tar.Header
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		if name, target, ok := strings.Cut(n, "@"); ok {
			tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n]))})
		tw.Write([]byte(files[n]))
	}
	_ = hs
	tw.Close()
	fsys, _, err := readContext(&buf, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fsys.Close)
	return fsys
}

func TestDockerignore(t *testing.T) {
	files := map[string]string{".dockerignore": "# comment\nsecret.txt\n**/*.log\n!deep/keep.log\nnode_modules\n"}
	for _, f := range []string{"a.txt", "secret.txt", "logs/x.log", "deep/er/y.log", "deep/keep.log", "deep/er/z.txt", "node_modules/m/index.js", "Dockerfile"} {
		files[f] = f
	}
	c := &buildContext{fsys: contextOf(t, files)}
	if err := c.loadIgnore("Dockerfile"); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]bool{
		"a.txt": false, "secret.txt": true, "logs/x.log": true, "deep/er/y.log": true,
		"deep/keep.log": false, "deep/er/z.txt": false, "node_modules/m/index.js": true, "node_modules": true,
	} {
		if got := c.ignored(f); got != want {
			t.Errorf("ignored(%q) = %v, want %v", f, got, want)
		}
	}
	sels, err := selectSources(c.fsys, ".", c.ignored, c.exceptions())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range sels[0].files {
		if !f.info.IsDir() {
			got = append(got, f.rel)
		}
	}
	want := ".dockerignore Dockerfile a.txt deep/er/z.txt deep/keep.log"
	if strings.Join(got, " ") != want {
		t.Errorf("selected %q, want %q", strings.Join(got, " "), want)
	}
	// A per-Dockerfile ignore file wins.
	files["Dockerfile.dockerignore"] = "a.txt\n"
	c = &buildContext{fsys: contextOf(t, files)}
	c.loadIgnore("Dockerfile")
	if !c.ignored("a.txt") || c.ignored("secret.txt") {
		t.Errorf("Dockerfile.dockerignore not preferred")
	}
	// Globs and missing sources.
	sels, err = selectSources(c.fsys, "deep/*/*.txt", nil, false)
	if err != nil || len(sels) != 1 || sels[0].base != "z.txt" {
		t.Errorf("glob: %+v %v", sels, err)
	}
	if _, err := selectSources(c.fsys, "nope/*", nil, false); !errdefs.Is(err, errdefs.NotFound) {
		t.Errorf("missing source: %v", err)
	}
}

func TestContextSymlinksStayInside(t *testing.T) {
	fsys := contextOf(t, map[string]string{
		"real/f": "content", "up@../../../etc": "", "abs@/real": "", "loop@loop": "", "dir/rel@../real/f": "",
	})
	for in, want := range map[string]string{
		"up/passwd": "etc/passwd", "abs/f": "real/f", "dir/rel": "real/f", "../../x": "x", "real/../real/f": "real/f",
	} {
		got, err := fsys.Resolve(in)
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := fsys.Resolve("loop/x"); err == nil {
		t.Errorf("a symlink loop resolved")
	}
	b, err := readFile(fsys, "abs/f")
	if err != nil || string(b) != "content" {
		t.Errorf("read through a symlink: %q %v", b, err)
	}
	if _, err := selectSources(fsys, "up/passwd", nil, false); !errdefs.Is(err, errdefs.NotFound) {
		t.Errorf("a source through a symlink out of the context: %v", err)
	}
}

func TestChecksumIgnoresTimesNotContent(t *testing.T) {
	dir := t.TempDir()
	fsys := hostFS{root: dir}
	p := filepath.Join(dir, "src", "f")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("one"), 0o644)
	sum := func() string {
		sels, err := selectSources(fsys, "src", nil, false)
		if err != nil {
			t.Fatal(err)
		}
		s, err := checksum(sels)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := sum()
	later := time.Now().Add(time.Hour)
	os.Chtimes(p, later, later)
	if b := sum(); b != a {
		t.Errorf("mtime changed the checksum")
	}
	os.WriteFile(p, []byte("two"), 0o644)
	c := sum()
	if c == a {
		t.Errorf("content did not change the checksum")
	}
	os.Chmod(p, 0o755)
	if d := sum(); d == c {
		t.Errorf("mode did not change the checksum")
	}
	os.Symlink("f", filepath.Join(dir, "src", "l"))
	if e := sum(); e == c {
		t.Errorf("a new symlink did not change the checksum")
	}
	if cacheKey("p1", "RUN", []string{"a"}) == cacheKey("p2", "RUN", []string{"a"}) {
		t.Errorf("cache key ignores the parent")
	}
	if cacheKey("p", "RUN", []string{"a b"}) == cacheKey("p", "RUN", []string{"a", "b"}) {
		t.Errorf("cache key is ambiguous")
	}
}

func tarOf(t *testing.T, entries ...tar.Header) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "data"
			h.Size = 4
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func TestReadContext(t *testing.T) {
	for _, c := range []struct {
		name    string
		entries []tar.Header
		bad     bool
	}{
		{"dotdot", []tar.Header{{Name: "../x", Typeflag: tar.TypeReg}}, true},
		{"nested dotdot", []tar.Header{{Name: "a/../../x", Typeflag: tar.TypeReg}}, true},
		{"hardlink out", []tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}}, true},
		{"hardlink to nothing", []tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "nothing"}}, true},
		{"symlink then through it", []tar.Header{
			{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
			{Name: "l/written", Typeflag: tar.TypeReg},
		}, false},
		{"absolute", []tar.Header{{Name: "/abs/file", Typeflag: tar.TypeReg}}, false},
	} {
		fsys, _, err := readContext(bytes.NewReader(tarOf(t, c.entries...)), t.TempDir())
		if c.bad != (err != nil) || c.bad && !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("%s: %v", c.name, err)
		}
		if fsys != nil {
			fsys.Close()
		}
	}
	fsys, df, err := readContext(strings.NewReader("FROM busybox\n"), t.TempDir())
	if !errors.Is(err, errNotArchive) || string(df) != "FROM busybox\n" {
		t.Errorf("a bare Dockerfile: %q %v", df, err)
	}
	fsys.Close()
	if _, _, err := readContext(bytes.NewReader([]byte{0x1f, 0x8b, 8, 0, 0, 0}), t.TempDir()); err == nil {
		t.Errorf("truncated gzip accepted")
	}
	// Contents are read back from the spool, hashed as they came.
	fsys = contextOf(t, map[string]string{"a/b": "bee", "c": "sea"})
	b, err := readFile(fsys, "a/b")
	if err != nil || string(b) != "bee" {
		t.Errorf("a/b: %q %v", b, err)
	}
	if sum, ok := fsys.Sum("c"); !ok || fmt.Sprintf("%x", sum) != fmt.Sprintf("%x", sha256.Sum256([]byte("sea"))) {
		t.Errorf("sum of c: %x", sum)
	}
	if ents, _ := fsys.ReadDir(""); len(ents) != 2 || ents[0].Name() != "a" || !ents[0].IsDir() {
		t.Errorf("root listing: %v", ents)
	}
}

func TestCheckPlatform(t *testing.T) {
	native := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	for p, ok := range map[string]bool{"linux": true, "linux/amd64": true, "Linux/AMD64": true, "linux/arm64": false, "windows/amd64": false} {
		if err := checkPlatform(native, p); (err == nil) != ok {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestCacheEviction(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := openCache(db)
	if err != nil {
		t.Fatal(err)
	}
	// Two chains: old (a → a2) and new (b → b2), 100 bytes per layer.
	for _, e := range []struct{ key, parent string }{{"a", ""}, {"a2", "a"}, {"b", ""}, {"b2", "b"}, {"bm", "b2"}} {
		size := int64(100)
		if e.key == "bm" {
			size = 0
		}
		if err := c.put(e.key, &cacheEntry{State: &image.State{}, Parent: e.parent, Size: size}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Millisecond) // LastUsed must differ (put stamps now)
	if err := c.touch([]string{"b", "b2", "bm"}); err != nil {
		t.Fatal(err)
	}
	if removed, err := c.evict(1000); err != nil || len(removed) != 0 {
		t.Fatalf("under budget: %v %v", removed, err)
	}
	removed, err := c.evict(250)
	if err != nil || strings.Join(removed, ",") != "a,a2" {
		t.Fatalf("evict to 250: %v %v", removed, err)
	}
	removed, _ = c.evict(50)
	if strings.Join(removed, ",") != "b,b2,bm" {
		t.Fatalf("evict to 50: %v", removed)
	}
	du, _ := c.usage()
	if du.TotalCount != 0 {
		t.Fatalf("left: %+v", du)
	}
}
