package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestRuntimeSet(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(p, []byte(`{"runtimes": {"crunny": {"path": "/opt/crun", "runtimeArgs": ["--debug"]}}, "default-runtime": "crunny"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Defaults()
	c.ExecRoot = "/run/bt"
	if err := LoadFile(p, &c, true); err != nil {
		t.Fatal(err)
	}
	r, err := newRuntimeSet(c)
	if err != nil {
		t.Fatal(err)
	}
	if r.Default() != "crunny" {
		t.Fatalf("default %q", r.Default())
	}
	o, err := r.Lookup("crunny")
	if err != nil || o.Path != "/opt/crun" || len(o.Args) != 1 || o.Args[0] != "--debug" || o.Root != "/run/bt/runtimes/crunny" || o.Name != "crunny" {
		t.Fatalf("lookup: %+v %v", o, err)
	}
	if o, err := r.Lookup("berth"); o != nil || err != nil {
		t.Fatalf("berth's own runtime: %+v %v", o, err)
	}
	if _, err := r.Lookup("nosuch"); !errdefs.Is(err, errdefs.InvalidArgument) || err.Error() != "unknown or invalid runtime name: nosuch" {
		t.Fatalf("unknown: %v", err)
	}
	info, def := r.info()
	if def != "crunny" || info["berth"].Path != "berth-shim" || info["crunny"].Path != "/opt/crun" {
		t.Fatalf("info %+v %q", info, def)
	}
	// runc is there when installed, unless the configuration defines it.
	if runc, err := exec.LookPath("runc"); err == nil {
		if info["runc"].Path != runc {
			t.Fatalf("implicit runc: %+v", info["runc"])
		}
		c2 := c
		c2.Runtimes = map[string]Runtime{"runc": {Path: "/opt/other-runc"}}
		if err := r.set(c2); err == nil {
			t.Fatal("default crunny accepted without crunny")
		}
		c2.DefaultRuntime = "runc"
		if err := r.set(c2); err != nil {
			t.Fatal(err)
		}
		if o, _ := r.Lookup("runc"); o == nil || o.Path != "/opt/other-runc" {
			t.Fatalf("configured runc: %+v", o)
		}
	}
}

func TestRuntimeSetErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Runtimes: map[string]Runtime{"berth": {Path: "/x"}}}, "runtime name 'berth' is reserved"},
		{Config{Runtimes: map[string]Runtime{"a/b": {Path: "/x"}}}, "invalid runtime name"},
		{Config{Runtimes: map[string]Runtime{"nopath": {}}}, "path is required"},
		{Config{DefaultRuntime: "nosuch"}, "default runtime nosuch cannot be found"},
	} {
		_, err := newRuntimeSet(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	// A failed set keeps what was there.
	r, err := newRuntimeSet(Config{Runtimes: map[string]Runtime{"mine": {Path: "/x"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.set(Config{DefaultRuntime: "nosuch"}); err == nil {
		t.Fatal("bad default accepted")
	}
	if _, err := r.Lookup("mine"); err != nil {
		t.Fatalf("runtime lost by a refused set: %v", err)
	}
}
