package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "daemon.json")
	if err := os.WriteFile(p, []byte(`{"data-root":"/srv/berth","log-driver":"local","log-opts":{"max-size":"5m"},
		"insecure-registries":["10.0.0.0/8"],"registry-mirrors":["http://127.0.0.1:5001"],"live-restore":true,
		"default-ulimits":{"nofile":{"Name":"nofile","Soft":1024,"Hard":2048}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := Defaults()
	if err := LoadFile(p, &c, true); err != nil {
		t.Fatal(err)
	}
	if c.DataRoot != "/srv/berth" || c.ExecRoot != "/run/berth" || c.LogDriver != "local" || c.LogOpts["max-size"] != "5m" ||
		len(c.InsecureRegistries) != 1 || len(c.RegistryMirrors) != 1 || c.LiveRestore == nil || !*c.LiveRestore {
		t.Fatalf("loaded %+v", c)
	}
	if u := c.ulimits(); len(u) != 1 || u[0].Name != "nofile" || u[0].Soft != 1024 {
		t.Fatalf("ulimits %+v", u)
	}
	if lc := logConfig(c); lc.Type != "local" {
		t.Fatalf("log config %+v", lc)
	}
}

func TestLoadFileErrors(t *testing.T) {
	dir := t.TempDir()
	c := Defaults()
	if err := LoadFile(filepath.Join(dir, "missing.json"), &c, false); err != nil {
		t.Fatalf("missing optional file: %v", err)
	}
	if err := LoadFile(filepath.Join(dir, "missing.json"), &c, true); err == nil {
		t.Fatal("missing required file accepted")
	}
	p := filepath.Join(dir, "typo.json")
	os.WriteFile(p, []byte(`{"data-rot":"/x"}`), 0o600)
	err := LoadFile(p, &c, true)
	if !errdefs.Is(err, errdefs.InvalidArgument) || !strings.Contains(err.Error(), "data-rot") {
		t.Fatalf("unknown key: %v", err)
	}
	os.WriteFile(p, []byte(`{"data-root":`), 0o600)
	if err := LoadFile(p, &c, true); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("truncated json: %v", err)
	}
	bad := Defaults()
	bad.LogLevel = "loud"
	if err := bad.Validate(); err == nil {
		t.Fatal("bad log level accepted")
	}
}
