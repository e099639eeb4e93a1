package cli

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoDaemonImports fences the CLI off from berth's daemon internals: the
// CLI talks to berthd only through the Engine API client and API types.
// Every Go file of internal/cli (and below) and cmd/berth is checked; the
// only internal package allowed is internal/compose, itself fenced.
func TestNoDaemonImports(t *testing.T) {
	const internal = "github.com/berth-dev/berth/internal/"
	const self = "github.com/berth-dev/berth/internal/cli"
	// internal/compose is held to the same rule (TestNoEngineImports
	// there), so the CLI may use it.
	const composePkg = "github.com/berth-dev/berth/internal/compose"
	for _, root := range []string{".", filepath.Join("..", "..", "cmd", "berth")} {
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "testdata" {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") {
				return nil
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				return err
			}
			for _, imp := range f.Imports {
				p := strings.Trim(imp.Path.Value, `"`)
				if strings.HasPrefix(p, internal) && p != self && !strings.HasPrefix(p, self+"/") && p != composePkg {
					t.Errorf("%s imports %s: the CLI may only use the Engine API client and types", path, p)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}
