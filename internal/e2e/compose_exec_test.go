package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestComposeExecsBerthCompose: `berth compose` runs the berth-compose
// binary found beside berth (then on PATH), passing berth's global options
// on; without berth-compose it fails with a message naming where it looked,
// while berth's other commands are unaffected.
func TestComposeExecsBerthCompose(t *testing.T) {
	d := startDaemon(t)
	// run runs a berth binary with only the given environment: no
	// BERTH_HOST/DOCKER_HOST unless passed.
	run := func(bin string, env []string, args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append([]string{"HOME=" + t.TempDir(), "DOCKER_CONFIG=" + t.TempDir()}, env...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("%s %v: %v", bin, args, err)
			}
			code = ee.ExitCode()
		}
		return out.String(), errb.String(), code
	}

	// Beside berth (bins.dir holds both), with -H given to berth and
	// BERTH_HOST pointing nowhere: the global option reached berth-compose.
	if out, errOut, code := run(bins.cli, []string{"PATH=/usr/bin:/bin", "BERTH_HOST=unix:///nonexistent.sock"},
		"-H", "unix://"+d.sock, "compose", "-p", "execpath", "ps", "--format", "{{.Name}}"); code != 0 || out != "" {
		t.Errorf("berth -H compose ps: exit %d\nstdout: %q\nstderr: %s", code, out, errOut)
	}
	if out, errOut, code := run(bins.cli, []string{"PATH=/usr/bin:/bin"}, "compose", "version", "--short"); code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("berth compose version: exit %d %q %q", code, out, errOut)
	}

	if out, errOut, code := run(bins.cli, []string{"PATH=/usr/bin:/bin"}, "help", "compose"); code != 0 ||
		!strings.HasPrefix(out, "Usage:  berth compose [OPTIONS] COMMAND") || !strings.Contains(out, "\n  up ") {
		t.Errorf("berth help compose: exit %d %q %q", code, out, errOut)
	}
	// Shell completion of compose's flags is berth-compose's.
	if out, errOut, code := run(bins.cli, []string{"PATH=/usr/bin:/bin"}, "__complete", "-H", "unix://"+d.sock, "compose", "-f", "x.yaml", "up", "--det"); code != 0 || !strings.HasPrefix(out, "--detach\t") {
		t.Errorf("completion: exit %d %q %q", code, out, errOut)
	}

	// A berth alone in its directory.
	lone := t.TempDir()
	loneBerth := filepath.Join(lone, "berth")
	b, err := os.ReadFile(bins.cli)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(loneBerth, b, 0o755); err != nil {
		t.Fatal(err)
	}
	// On PATH.
	if out, errOut, code := run(loneBerth, []string{"PATH=" + bins.dir + ":/usr/bin:/bin"}, "compose", "version", "--short"); code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("berth-compose on PATH: exit %d %q %q", code, out, errOut)
	}
	// Nowhere.
	_, errOut, code := run(loneBerth, []string{"PATH=" + lone + ":/usr/bin:/bin"}, "compose", "up", "-d")
	want := "berth: 'compose' needs the berth-compose binary, not found beside berth (" + filepath.Join(lone, "berth-compose") + ") or on PATH"
	if code != 1 || strings.TrimSpace(errOut) != want {
		t.Errorf("berth-compose missing: exit %d, stderr %q, want %q", code, errOut, want)
	}
	if out, errOut, code := run(loneBerth, []string{"BERTH_HOST=unix://" + d.sock}, "ps", "-q"); code != 0 || out != "" {
		t.Errorf("berth ps without berth-compose: exit %d %q %q", code, out, errOut)
	}
}
