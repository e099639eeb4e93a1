package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExecFormatErrorIsTheContainersExit: a program that is found and
// executable but that the kernel refuses to execute does not fail the
// start, as with Docker (runc's init answers start before its execve):
// `docker start -a` prints "exec /bad: exec format error" (the
// container's stderr) and exits 255; logs, wait and inspect show the
// same, with no start error recorded.
func TestExecFormatErrorIsTheContainersExit(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	bad := filepath.Join(t.TempDir(), "bad")
	if err := os.WriteFile(bad, []byte("neither ELF nor script\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const msg = "exec /bad: exec format error\n"
	for _, attach := range []bool{true, false} {
		name := "execfail-detached"
		if attach {
			name = "execfail-attached"
		}
		t.Run(name, func(t *testing.T) {
			if out, errOut, code := d.cli(bins.docker, nil, "create", "--name", name, "busybox", "/bad"); code != 0 {
				t.Fatalf("create: %d %q %q", code, out, errOut)
			}
			if _, errOut, code := d.cli(bins.docker, nil, "cp", bad, name+":/bad"); code != 0 {
				t.Fatalf("cp: %d %q", code, errOut)
			}
			if attach {
				out, errOut, code := d.cli(bins.docker, nil, "start", "-a", name)
				if code != 255 || out != "" || errOut != msg {
					t.Fatalf("start -a: code %d, stdout %q, stderr %q; want 255 and %q", code, out, errOut, msg)
				}
			} else {
				if out, errOut, code := d.cli(bins.docker, nil, "start", name); code != 0 || strings.TrimSpace(out) != name {
					t.Fatalf("start: code %d, stdout %q, stderr %q", code, out, errOut)
				}
				if out, errOut, code := d.cli(bins.docker, nil, "wait", name); code != 0 || strings.TrimSpace(out) != "255" {
					t.Fatalf("wait: code %d, stdout %q, stderr %q", code, out, errOut)
				}
			}
			if out, errOut, code := d.cli(bins.docker, nil, "logs", name); code != 0 || out != "" || errOut != msg {
				t.Fatalf("logs: code %d, stdout %q, stderr %q", code, out, errOut)
			}
			out, errOut, code := d.cli(bins.docker, nil, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} [{{.State.Error}}]", name)
			if code != 0 || strings.TrimSpace(out) != "exited 255 []" {
				t.Fatalf("inspect: code %d, %q %q", code, out, errOut)
			}
			if _, errOut, code := d.cli(bins.docker, nil, "rm", name); code != 0 {
				t.Fatalf("rm: %d %q", code, errOut)
			}
		})
	}
}
