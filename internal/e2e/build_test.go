package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// buildDir writes files (name → content) into a new temporary directory.
func buildDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// dockerBuild runs the docker CLI's classic builder.
func (d *daemon) dockerBuild(stdin *strings.Reader, args ...string) (string, string, int) {
	d.t.Helper()
	os.Setenv("DOCKER_BUILDKIT", "0")
	if stdin == nil {
		return d.cli(bins.docker, nil, append([]string{"build"}, args...)...)
	}
	return d.cli(bins.docker, stdin, append([]string{"build"}, args...)...)
}

func TestBuildBasic(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	dir := buildDir(t, map[string]string{
		"Dockerfile": "FROM busybox\nARG GREETING=hello\nENV WHO=world\nRUN echo \"$GREETING $WHO\" > /greeting\nCOPY app/ /app/\nWORKDIR /app\nCMD [\"cat\", \"/greeting\"]\n",
		"app/a.txt":  "A\n",
	})
	o, e, code := d.dockerBuild(nil, "-t", "basic:1", dir)
	t.Logf("out:\n%s\nerr:\n%s", o, e)
	if code != 0 {
		t.Fatalf("build: %d", code)
	}
	o, e, code = d.cli(bins.docker, nil, "run", "--rm", "basic:1")
	if code != 0 || o != "hello world\n" {
		t.Fatalf("run: %d %q %q", code, o, e)
	}
	o, e, code = d.dockerBuild(nil, "-t", "basic:1", dir)
	t.Logf("out:\n%s\nerr:\n%s", o, e)
}
