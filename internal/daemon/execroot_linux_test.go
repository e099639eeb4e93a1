package daemon

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMountExecRootPidfile: with berthd's pidfile in the exec root (the
// default), the tmpfs is mounted all the same and the pidfile moves onto
// it (readable where it was, nothing left hidden under the tmpfs); a file
// of anything else keeps the tmpfs off; Close's unmount takes it away.
func TestMountExecRootPidfile(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	base := t.TempDir()
	var st unix.Statfs_t
	if err := unix.Statfs(base, &st); err != nil || st.Type == unix.TMPFS_MAGIC {
		t.Skip("the test directory is a tmpfs already")
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := filepath.Join(base, "x")
	pidfile := filepath.Join(dir, "berthd.pid")
	if err := os.MkdirAll(filepath.Join(dir, "c"), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pidfile, []byte("4242"), 0o644); err != nil {
		t.Fatal(err)
	}
	mountExecRoot(dir, pidfile, log)
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	if !isExecTmpfs(dir) {
		t.Fatal("no tmpfs mounted over the pidfile and empty directories")
	}
	if b, err := os.ReadFile(pidfile); err != nil || string(b) != "4242" {
		t.Fatalf("pidfile on the tmpfs: %q %v", b, err)
	}
	unmountExecRoot(dir, log)
	if isExecTmpfs(dir) {
		t.Fatal("still mounted after unmountExecRoot with nothing in use")
	}
	if _, err := os.Stat(pidfile); err == nil {
		t.Fatal("a pidfile was left hidden under the tmpfs")
	}
	// Anything else in it: no tmpfs.
	if err := os.WriteFile(filepath.Join(dir, "c", "state"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	mountExecRoot(dir, pidfile, log)
	if isExecTmpfs(dir) {
		t.Fatal("a tmpfs was mounted over another berthd's state")
	}
}
