package shim_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSpawnSpecBytes: with SpawnOpts.Spec the shim creates the container
// from those bytes, sent after the boot config, and not from the
// bundle's file: a cold create and one from the warm spare's pre-forked
// init both run the bytes' spec. The bundle's file is left as it is.
func TestSpawnSpecBytes(t *testing.T) {
	defer shim.ReleaseSpare()
	run := func(t *testing.T, y *ctr, wantPreforked bool) {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(y.opts.Bundle, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		y.editBundle(t, func(s *specs.Spec) { s.Hostname = "from-file" })
		y.opts.Spec = data
		c := y.spawn()
		if c.Preforked() != wantPreforked {
			t.Errorf("pre-forked %v, want %v", c.Preforked(), wantPreforked)
		}
		if stdout := startOutput(t, c); stdout != "host=from-bytes\n" {
			t.Errorf("output %q", stdout)
		}
		if e := wait(t, c); e.Code != 0 {
			t.Errorf("exit %+v", e)
		}
		if b, err := os.ReadFile(filepath.Join(y.opts.Bundle, "config.json")); err != nil || string(b) == string(data) {
			t.Errorf("the bundle's file was changed: %v", err)
		}
	}
	const script = `echo "host=$(hostname)"`
	hostname := func(s *specs.Spec) { s.Hostname = "from-bytes" }
	t.Run("cold", func(t *testing.T) {
		run(t, newCtr(t, script, hostname), false)
	})
	t.Run("spare", func(t *testing.T) {
		y := newCtr(t, script, hostname)
		sp, s := spareFor(t, y, nil)
		if id, _ := startSpare(t, sp, y.opts.Env); id != y.id {
			t.Fatalf("spare id %q, want %q", id, y.id)
		}
		p := shim.ClaimSpare(shim.PrepareOpts{
			Binary: y.opts.Binary, ID: y.id, RuntimeRoot: y.opts.RuntimeRoot, Env: y.opts.Env,
			CgroupsPath: s.Linux.CgroupsPath, Namespaces: s.Linux.Namespaces,
		})
		if p == nil {
			t.Fatal("the spare was not claimed")
		}
		y.opts.Prepared = p
		run(t, y, true)
	})
}
