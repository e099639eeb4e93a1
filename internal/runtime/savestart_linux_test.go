package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSaveWhileStarting: with CreateOpts.SaveWhileStarting the final state
// record is written in the background; once Start returns it is on disk
// (the container's bundle and configuration, running), and a Delete right
// after create, with the write maybe still going on, leaves no state
// behind. Both with a pre-forked init (whose earlier record has no
// configuration) and without.
func TestSaveWhileStarting(t *testing.T) {
	r := libRuntime(t)
	ctx := context.Background()
	for _, pre := range []bool{false, true} {
		name := "ordinary"
		if pre {
			name = "preforked"
		}
		t.Run(name, func(t *testing.T) {
			bundle := shBundle(t, `read x; echo got $x`, func(s *specs.Spec) { s.Hostname = "sws" })
			spec := bundleSpec(t, bundle)
			stdinR, stdinW, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdinR.Close()
			defer stdinW.Close()
			out := tempFile(t)
			io := runtime.IO{Stdin: stdinR, Stdout: out, Stderr: out}
			id := "bt-sws-" + name
			o := runtime.CreateOpts{Bundle: bundle, IO: io, SaveWhileStarting: true}
			if pre {
				pf, err := r.Prefork(ctx, id, runtime.PreforkOpts{CgroupsPath: spec.Linux.CgroupsPath, Namespaces: spec.Linux.Namespaces, IO: io})
				if err != nil {
					t.Fatal(err)
				}
				defer pf.Release()
				o.Preforked = pf
			}
			ctr, err := r.CreateContainer(ctx, id, o)
			if err != nil {
				t.Fatal(err)
			}
			if err := ctr.Start(ctx); err != nil {
				_ = ctr.Delete(ctx)
				t.Fatal(err)
			}
			st, err := r.State(ctx, id)
			if err != nil || st.Status != runtime.StatusRunning || st.Bundle != bundle || st.Pid != ctr.Pid() {
				t.Errorf("state once started: %+v, %v", st, err)
			}
			b, _ := os.ReadFile(filepath.Join(r.Root(), id, "state.json"))
			if !strings.Contains(string(b), `"hostname":"sws"`) || strings.Contains(string(b), `"creating":true`) {
				t.Errorf("state.json once started: %s", b)
			}
			stdinW.WriteString("x\n")
			if _, err := ctr.Wait(); err != nil {
				t.Fatal(err)
			}
			if err := ctr.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			if got := readBack(out); got != "got x\n" {
				t.Errorf("output %q", got)
			}
			// Created and deleted at once: the record being written does
			// not outlive the delete.
			ctr, err = r.CreateContainer(ctx, id+"-2", runtime.CreateOpts{Bundle: bundle, IO: io, SaveWhileStarting: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := ctr.Delete(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(r.Root(), id+"-2")); !os.IsNotExist(err) {
				t.Errorf("state directory left after delete: %v", err)
			}
			if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
				t.Errorf("cgroups left: %v", left)
			}
		})
	}
}
