package api_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportFence keeps the API layer thin: berth packages it may import,
// per directory (non-test files). The routers know the daemon only
// through their backend interfaces; the image router's adapters are the
// one place that names the image service and the registry client.
func TestImportFence(t *testing.T) {
	const mod = "github.com/berth-dev/berth/"
	common := []string{"internal/errdefs", "internal/api", "internal/api/filters", "internal/progress", "internal/apiext"}
	allowed := map[string][]string{
		".":                common,
		"filters":          common,
		"router/system":    common,
		"router/container": common,
		"router/exec":      common,
		"router/volume":    common,
		"router/image":     append([]string{"internal/image", "internal/image/manifest", "internal/image/reference", "internal/distribution"}, common...),
		"apitest":          append([]string{"internal/api/router/system", "internal/api/router/container", "internal/api/router/exec", "internal/api/router/image"}, common...),
	}
	for dir, ok := range allowed {
		files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, src, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if !strings.HasPrefix(p, mod) {
					continue
				}
				rel := strings.TrimPrefix(p, mod)
				found := false
				for _, a := range ok {
					found = found || a == rel
				}
				if !found {
					t.Errorf("%s imports %s", f, p)
				}
			}
		}
	}
}
