package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-dev/berth/internal/runtime"
)

// TestPreforkStateAhead: a pre-forked init's state directory gets an
// empty file at Prefork that create's save of the final record writes
// into (its inode becomes state.json's), so no file is created on the
// start path; no temporary file is left.
func TestPreforkStateAhead(t *testing.T) {
	r, root := libRuntimeRoot(t)
	bundle := shBundle(t, "true", nil)
	spec := bundleSpec(t, bundle)
	io, _ := preforkIO(t)
	id := "bt-ahead"
	pf := preforkFor(t, r, id, spec, io)
	dir := filepath.Join(root, id)
	var ahead syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, ".state-ahead"), &ahead); err != nil || ahead.Size != 0 {
		t.Fatalf("the file made ahead: %v (size %d)", err, ahead.Size)
	}
	ctx := context.Background()
	ctr, err := r.CreateContainer(ctx, id, runtime.CreateOpts{Bundle: bundle, IO: io, Preforked: pf})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	defer func() {
		_ = ctr.Signal(syscall.SIGKILL)
		_, _ = ctr.Wait()
		if err := ctr.Delete(ctx); err != nil {
			t.Errorf("delete: %v", err)
		}
		if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
			t.Errorf("cgroups left: %v", left)
		}
	}()
	if !ctr.Preforked() {
		t.Fatal("the pre-forked init was not used")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(dir, "state.json"), &st); err != nil || st.Ino != ahead.Ino || st.Size == 0 {
		t.Errorf("state.json: %v, inode %d (the file made ahead: %d), size %d", err, st.Ino, ahead.Ino, st.Size)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".state") {
			t.Errorf("left in the state directory: %s", e.Name())
		}
	}
	if got, err := r.State(ctx, id); err != nil || got.Status != "created" {
		t.Errorf("state: %+v %v", got, err)
	}
}
