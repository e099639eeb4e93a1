package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// onTmpfs reports whether dir is on a tmpfs.
func onTmpfs(t *testing.T, dir string) bool {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == 0x01021994 // TMPFS_MAGIC
}

// TestExecRootTmpfs: berthd mounts a tmpfs of its own on an empty exec
// root that is on a disk file system (internal/daemon/execroot_linux.go).
// It stays while a container runs (a restarted berthd finds the container,
// exec works), and goes with the last berthd that stops with nothing
// running. An exec root that is not empty is left as it is.
func TestExecRootTmpfs(t *testing.T) {
	if onTmpfs(t, os.TempDir()) {
		t.Skip("the test roots are on a tmpfs already")
	}
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	if !onTmpfs(t, d.execRoot) {
		t.Fatal("the exec root is not a tmpfs")
	}
	d.mustCLI("run", "-d", "--network", "none", "--name", "up", "busybox", "sleep", "300")
	d.stop()
	if !onTmpfs(t, d.execRoot) {
		t.Fatal("the exec root's tmpfs went while a container runs")
	}
	d.start()
	if out := d.mustCLI("exec", "up", "echo", "still here"); out != "still here" {
		t.Fatalf("exec after a restart: %q", out)
	}
	d.mustCLI("rm", "-f", "up")
	waitFor(t, "the shim to exit", 10*time.Second, func() bool { return len(shimsUnder(d.execRoot)) == 0 })
	d.stop()
	if onTmpfs(t, d.execRoot) {
		t.Fatal("the exec root's tmpfs is still mounted after the last stop")
	}

	// Empty directories left by a berthd that ran without the tmpfs do
	// not keep it from being mounted.
	d.stop()
	if err := os.MkdirAll(filepath.Join(d.execRoot, "c", "old"), 0o711); err != nil {
		t.Fatal(err)
	}
	// And the runtime's seccomp filter cache (files), which it rewrites.
	if err := os.MkdirAll(filepath.Join(d.execRoot, "runtime-seccomp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.execRoot, "runtime-seccomp", "x.bpf"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	d.start()
	if !onTmpfs(t, d.execRoot) {
		t.Fatal("no tmpfs on an exec root of empty directories")
	}

	// An exec root with something in it (another berthd's state) keeps
	// its file system.
	d2 := startDaemonWith(t, func(d *daemon) {
		if err := os.MkdirAll(filepath.Join(d.execRoot, "c"), 0o711); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d.execRoot, "c", "left"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if onTmpfs(t, d2.execRoot) {
		t.Fatal("a tmpfs was mounted on a non-empty exec root")
	}
	if _, err := os.Stat(filepath.Join(d2.execRoot, "c", "left")); err != nil {
		t.Fatalf("the exec root's content is hidden: %v", err)
	}
	d2.importBusybox("busybox:latest")
	if out := d2.mustCLI("run", "--rm", "--network", "none", "busybox", "echo", "ok"); strings.TrimSpace(out) != "ok" {
		t.Fatalf("run on a disk exec root: %q", out)
	}
}
