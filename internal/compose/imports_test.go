package compose

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoEngineImports fences compose off from berth's engine: like the
// CLI, it may only use the Engine API client and types (and compose-go),
// so it drives berthd and dockerd alike.
func TestNoEngineImports(t *testing.T) {
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(".", e.Name()), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if strings.HasPrefix(p, "github.com/berth-dev/berth/") {
				t.Errorf("%s imports %s: compose may only use the Engine API client and types", e.Name(), p)
			}
		}
	}
}
