package cli

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const (
	modInternal   = "github.com/berth-dev/berth/internal/"
	selfPkg       = "github.com/berth-dev/berth/internal/cli"
	composeCliPkg = "github.com/berth-dev/berth/internal/cli/composecli"
	// internal/compose is held to the same rule as the CLI
	// (TestNoEngineImports there), so berth-compose may use it.
	composePkg = "github.com/berth-dev/berth/internal/compose"
	// internal/apiext holds only the wire names and types of berth's
	// extensions to the Engine API, which both sides speak; it imports
	// nothing of berth.
	apiextPkg = "github.com/berth-dev/berth/internal/apiext"
	// internal/memtrim gives a process's clean text pages back (the CLI
	// while it waits for a container); it imports nothing of berth.
	memtrimPkg = "github.com/berth-dev/berth/internal/memtrim"
)

// TestNoDaemonImports fences the CLI off from berth's daemon internals: the
// CLI talks to berthd only through the Engine API client and API types
// (and the wire types of berth's API extensions, internal/apiext, and the
// process utility internal/memtrim).
// internal/cli and cmd/berth may import no other internal package, and in
// particular nothing of Compose: `berth compose` runs the berth-compose
// binary, so that every other command starts without compose-go's package
// initialisation. internal/cli/composecli and cmd/berth-compose (the
// berth-compose binary) may add internal/compose.
func TestNoDaemonImports(t *testing.T) {
	berth := func(p string) bool { return p == selfPkg || p == apiextPkg || p == memtrimPkg }
	compose := func(p string) bool {
		return p == selfPkg || p == composeCliPkg || p == composePkg || p == apiextPkg || p == memtrimPkg
	}
	checkImports(t, filepath.Join("..", "apiext"), nil, func(string) bool { return false })
	checkImports(t, filepath.Join("..", "memtrim"), nil, func(string) bool { return false })
	checkImports(t, ".", []string{"composecli"}, berth)
	checkImports(t, filepath.Join("..", "..", "cmd", "berth"), nil, berth)
	checkImports(t, "composecli", nil, compose)
	checkImports(t, filepath.Join("..", "..", "cmd", "berth-compose"), nil, compose)
}

// checkImports walks the Go files below root (skipping testdata and the
// directories in skip) and reports every import of a berth internal
// package that allowed refuses, and, where internal/compose is refused,
// every import of compose-go.
func checkImports(t *testing.T, root string, skip []string, allowed func(string) bool) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (d.Name() == "testdata" || contains(skip, d.Name())) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		n++
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if strings.HasPrefix(p, modInternal) && !allowed(p) {
				t.Errorf("%s imports %s, which it may not", path, p)
			}
			if strings.HasPrefix(p, "github.com/compose-spec/") && !allowed(composePkg) {
				t.Errorf("%s imports %s: Compose belongs to berth-compose", path, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Errorf("no Go files under %s", root)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestBerthBinaryLinksNoCompose checks the whole dependency graph of
// cmd/berth, not just its direct imports: no package of Compose (berth's or
// compose-go, nor the JSON schema validator compose-go brings) may be
// linked into the berth binary.
func TestBerthBinaryLinksNoCompose(t *testing.T) {
	for _, p := range berthDeps(t) {
		if p == composeCliPkg || p == composePkg || strings.HasPrefix(p, composePkg+"/") ||
			strings.HasPrefix(p, "github.com/compose-spec/") || strings.Contains(p, "jsonschema") {
			t.Errorf("cmd/berth depends on %s", p)
		}
	}
}

// TestBerthBinaryLinksNoBuildKit keeps BuildKit's Dockerfile parser, and
// the protobuf runtime it brings (package initialisation that opens and
// hashes the executable, ~2.8 MB of binary), out of the berth binary:
// build's progress counts stage steps itself (stageTotals).
func TestBerthBinaryLinksNoBuildKit(t *testing.T) {
	for _, p := range berthDeps(t) {
		for _, heavy := range []string{"github.com/moby/buildkit/", "google.golang.org/protobuf/", "github.com/containerd/typeurl"} {
			if strings.HasPrefix(p, heavy) {
				t.Errorf("cmd/berth depends on %s", p)
			}
		}
	}
}

// berthDeps lists every package linked into the berth binary.
func berthDeps(t *testing.T) []string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/berth-dev/berth/cmd/berth").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !contains(deps, selfPkg) {
		t.Fatalf("go list -deps cmd/berth does not list %s:\n%s", selfPkg, out)
	}
	return deps
}
