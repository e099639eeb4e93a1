package cli

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestFindComposeBinary: berth-compose is taken from beside the berth
// executable first, then from PATH; when neither has it the error names
// both places.
func TestFindComposeBinary(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "berth")
	beside := filepath.Join(dir, ComposeBinary)
	onPath := filepath.Join(t.TempDir(), ComposeBinary)
	lookPath := func(found string) func(string) (string, error) {
		return func(name string) (string, error) {
			if name != ComposeBinary {
				t.Errorf("looked up %q", name)
			}
			if found == "" {
				return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
			}
			return found, nil
		}
	}

	// Not executable beside berth: PATH wins.
	if err := os.WriteFile(beside, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := findComposeBinary(exe, lookPath(onPath)); err != nil || got != onPath {
		t.Errorf("non-executable beside: %q %v, want %q", got, err, onPath)
	}
	if err := os.Chmod(beside, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findComposeBinary(exe, lookPath(onPath)); err != nil || got != beside {
		t.Errorf("beside: %q %v, want %q", got, err, beside)
	}
	if err := os.Remove(beside); err != nil {
		t.Fatal(err)
	}
	_, err := findComposeBinary(exe, lookPath(""))
	var se StatusError
	if !errors.As(err, &se) || se.StatusCode != 1 ||
		!strings.Contains(se.Status, "needs the berth-compose binary") || !strings.Contains(se.Status, beside) || !strings.Contains(se.Status, "PATH") {
		t.Errorf("missing everywhere: %#v", err)
	}
}

// TestComposeCommandListed: `berth compose` is still a command of berth
// (help, completion) and leaves its flags, --help included, to
// berth-compose.
func TestComposeCommandListed(t *testing.T) {
	c := &Cli{}
	root := c.newRootCommand()
	cmd, rest, err := root.Find([]string{"compose", "-f", "x.yaml", "up", "--help"})
	if err != nil || cmd.Name() != "compose" || !cmd.DisableFlagParsing || len(rest) != 4 {
		t.Fatalf("find compose: %v %v %v", cmd, rest, err)
	}
}

func TestParseCompletions(t *testing.T) {
	comps, dir := parseCompletions([]byte("up\tCreate and start containers\n--detach\tDetached mode\n:4\n"))
	if len(comps) != 2 || comps[0] != "up\tCreate and start containers" || comps[1] != "--detach\tDetached mode" || dir != 4 {
		t.Errorf("got %q %d", comps, dir)
	}
	if comps, dir := parseCompletions(nil); comps != nil || dir != 0 {
		t.Errorf("empty: %q %d", comps, dir)
	}
}

// TestComposeInProcessDoesNotExec: Main called with streams other than the
// process's own (as tests do) refuses `compose` instead of replacing the
// process.
func TestComposeInProcessDoesNotExec(t *testing.T) {
	var out, errb strings.Builder
	code := Main([]string{"compose", "version"}, strings.NewReader(""), &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "needs the process's own stdin, stdout and stderr") {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
}
