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

// TestBerthRunFastPathKeepsSemantics runs the berth binary's start-up fast
// paths (only the command built, the client and its /_ping negotiation
// prepared while parsing, run's attach and wait sent together) against a
// real berthd and checks Docker's semantics: no output lost, the exit code
// passed on, --rm returns after the removal, -d prints the ID, and the
// endpoint and API version still come from contexts and
// DOCKER_API_VERSION.
func TestBerthRunFastPathKeepsSemantics(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")

	// A burst of output on both streams right after the start, then a
	// non-zero exit.
	out, errOut, code := d.cli(bins.cli, nil, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "seq 1 5000; echo err >&2; exit 5")
	if code != 5 {
		t.Fatalf("exit code %d, want 5 (stderr %q)", code, errOut)
	}
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 5000 || lines[0] != "1" || lines[4999] != "5000" {
		t.Fatalf("stdout has %d lines (%.40q...), want 1..5000", len(lines), out)
	}
	if errOut != "err\n" {
		t.Fatalf("stderr %q", errOut)
	}
	// --rm: the container is gone when run returns.
	if ids, _, _ := d.cli(bins.cli, nil, "ps", "-a", "-q"); strings.TrimSpace(ids) != "" {
		t.Fatalf("containers left after run --rm: %q", ids)
	}

	// -d prints the ID; the container runs to its exit.
	id, errOut, code := d.cli(bins.cli, nil, "run", "-d", "--network", "none", "busybox", "sh", "-c", "exit 7")
	id = strings.TrimSpace(id)
	if code != 0 || len(id) != 64 {
		t.Fatalf("run -d: exit %d, stdout %q, stderr %q", code, id, errOut)
	}
	if st, _, _ := d.cli(bins.cli, nil, "wait", id); strings.TrimSpace(st) != "7" {
		t.Fatalf("wait: %q, want 7", st)
	}
	d.cli(bins.cli, nil, "rm", id)

	// Engine errors keep their exit codes.
	if _, errOut, code := d.cli(bins.cli, nil, "run", "--rm", "busybox", "/no/such/binary"); code != 127 {
		t.Fatalf("missing binary: exit %d (%q)", code, errOut)
	}
	if _, errOut, code := d.cli(bins.cli, nil, "run", "--rm", "--no-such-flag", "busybox"); code != 125 || !strings.Contains(errOut, "unknown flag") {
		t.Fatalf("unknown flag: exit %d (%q)", code, errOut)
	}

	// The endpoint from a context made by the docker CLI, with neither
	// BERTH_HOST nor DOCKER_HOST set: the early client must read it.
	cfg := t.TempDir()
	env := func(extra ...string) []string {
		var e []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "DOCKER_") && !strings.HasPrefix(kv, "BERTH_") {
				e = append(e, kv)
			}
		}
		return append(append(e, "DOCKER_CONFIG="+cfg, "DOCKER_CLI_HINTS=false"), extra...)
	}
	run := func(env []string, bin string, args ...string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = env
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	if _, e, c := run(env(), bins.docker, "context", "create", "e2e-berth", "--docker", "host=unix://"+d.sock); c != 0 {
		t.Fatalf("docker context create: %d %s", c, e)
	}
	if _, e, c := run(env(), bins.docker, "context", "use", "e2e-berth"); c != 0 {
		t.Fatalf("docker context use: %d %s", c, e)
	}
	if _, err := os.Stat(filepath.Join(cfg, "config.json")); err != nil {
		t.Fatal(err)
	}
	if o, e, c := run(env(), bins.cli, "run", "--rm", "--network", "none", "busybox", "echo", "via context"); c != 0 || o != "via context\n" {
		t.Fatalf("run through the current context: exit %d out %q err %q", c, o, e)
	}
	// DOCKER_API_VERSION pins an older version: no negotiation, and the
	// daemon is spoken to in that version.
	if o, e, c := run(env("DOCKER_API_VERSION=1.41"), bins.cli, "version", "--format", "{{.Client.APIVersion}}"); c != 0 || strings.TrimSpace(o) != "1.41" {
		t.Fatalf("version with DOCKER_API_VERSION=1.41: exit %d out %q err %q", c, o, e)
	}
	if o, e, c := run(env("DOCKER_API_VERSION=1.41"), bins.cli, "run", "--rm", "--network", "none", "busybox", "echo", "v1.41"); c != 0 || o != "v1.41\n" {
		t.Fatalf("run with DOCKER_API_VERSION=1.41: exit %d out %q err %q", c, o, e)
	}
}
