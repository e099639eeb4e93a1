package runtime_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/runtime"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestPreforkSpecFromBytes: create takes the configuration from the bytes
// the caller hands it (CreateOpts.Config), not from the bundle's file:
// the container, from a pre-forked init, runs with that spec (hostname,
// environment, the seccomp filter compiled from its profile), and the
// runtime's record, written with those bytes in place of the spec's
// encoding, holds it whole, profile included.
func TestPreforkSpecFromBytes(t *testing.T) {
	r, root := libRuntimeRoot(t)
	ret := uint(1)
	bundle := shBundle(t, `echo "host=$(hostname) foo=$FOO"; /probe syscall getcwd; /probe status | grep Seccomp:`, func(s *specs.Spec) {
		s.Hostname = "from-bytes"
		s.Process.Env = append(s.Process.Env, "FOO=a\nb \"c\"")
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: &ret}}}
	})
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	spec := bundleSpec(t, bundle)
	// The file now says otherwise: what runs must be the bytes'.
	other := *spec
	other.Hostname = "from-file"
	b, _ := json.Marshal(&other)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	io, out := preforkIO(t)
	id := "bt-spec-bytes"
	ctx := context.Background()
	pf := preforkFor(t, r, id, spec, io)
	ctr, err := r.CreateContainer(ctx, id, runtime.CreateOpts{Bundle: bundle, IO: io, Preforked: pf, Config: data})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	deleted := false
	defer func() {
		if !deleted {
			_ = ctr.Delete(ctx)
		}
	}()
	if !ctr.Preforked() {
		t.Fatal("the pre-forked init was not used")
	}
	// The record: the configuration, whole, as a spec.
	sb, err := os.ReadFile(filepath.Join(root, id, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		ID       string      `json:"id"`
		Config   *specs.Spec `json:"config"`
		Creating bool        `json:"creating"`
	}
	if err := json.Unmarshal(sb, &rec); err != nil {
		t.Fatalf("state.json: %v\n%s", err, sb)
	}
	if rec.ID != id || rec.Creating || rec.Config == nil || rec.Config.Hostname != "from-bytes" || rec.Config.Linux.Seccomp == nil ||
		len(rec.Config.Linux.Seccomp.Syscalls) != 1 || rec.Config.Process.Env[len(rec.Config.Process.Env)-1] != "FOO=a\nb \"c\"" {
		t.Errorf("state.json: %s", sb)
	}
	if err := ctr.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
	if _, err := ctr.Wait(); err != nil {
		t.Fatal(err)
	}
	deleted = true
	if err := ctr.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	got := readBack(out)
	for _, want := range []string{"host=from-bytes foo=a\nb \"c\"", "\nEPERM\n", "Seccomp:\t2"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
}

// TestPreforkReleasedOnBadConfig: a create that fails on its
// configuration, before it looks at the pre-forked init it was given,
// lets that init go with its cgroups and state directory.
func TestPreforkReleasedOnBadConfig(t *testing.T) {
	r, root := libRuntimeRoot(t)
	bundle := shBundle(t, "true", nil)
	spec := bundleSpec(t, bundle)
	io, _ := preforkIO(t)
	id := "bt-bad-config"
	ctx := context.Background()
	pf, err := r.Prefork(ctx, id, runtime.PreforkOpts{CgroupsPath: spec.Linux.CgroupsPath, Namespaces: spec.Linux.Namespaces, IO: io})
	if err != nil {
		t.Fatalf("prefork: %v", err)
	}
	pid := pf.Pid()
	if _, err := r.CreateContainer(ctx, id, runtime.CreateOpts{Bundle: bundle, IO: io, Preforked: pf, Config: []byte(`{"ociVersion": `)}); err == nil {
		t.Fatal("a bad config was created")
	}
	if !processGone(pid) {
		t.Errorf("pre-forked init %d still runs", pid)
	}
	if _, err := os.Stat(filepath.Join(root, id)); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
	if left := cgroupLeft(t, spec.Linux.CgroupsPath); len(left) > 0 {
		t.Errorf("cgroups left: %v", left)
	}
}
