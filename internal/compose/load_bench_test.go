package compose

import (
	"context"
	"path/filepath"
	"testing"
)

func BenchmarkLoad(b *testing.B) {
	dir, _ := filepath.Abs(filepath.Join("testdata", "convert"))
	for i := 0; i < b.N; i++ {
		if _, err := Load(context.Background(), LoadOptions{WorkingDir: dir, ConfigPaths: []string{filepath.Join(dir, "compose.yaml")}, Environ: []string{"API_KEY=k"}}); err != nil {
			b.Fatal(err)
		}
	}
}
