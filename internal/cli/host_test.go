package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

func writeContext(t *testing.T, configDir, name, host string) {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	dir := filepath.Join(configDir, "contexts", "meta", hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	meta := `{"Name":"` + name + `","Metadata":{"Description":""},"Endpoints":{"docker":{"Host":"` + host + `","SkipTLSVerify":false}}}`
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolveHost(t *testing.T) {
	cfg := t.TempDir()
	writeContext(t, cfg, "remote", "unix:///ctx/remote.sock")
	writeContext(t, cfg, "current", "unix:///ctx/current.sock")
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"currentContext":"current"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	emptyCfg := t.TempDir()
	for _, tc := range []struct {
		name       string
		hosts      []string
		contextArg string
		configDir  string
		env        map[string]string
		want       string
		wantErr    bool
	}{
		{name: "default", configDir: emptyCfg, want: DefaultHost},
		{name: "current context", configDir: cfg, want: "unix:///ctx/current.sock"},
		{name: "flag", hosts: []string{"tcp://1.2.3.4:2375"}, configDir: cfg, env: map[string]string{"BERTH_HOST": "unix:///b.sock"}, want: "tcp://1.2.3.4:2375"},
		{name: "berth host wins over docker host", configDir: cfg, env: map[string]string{"BERTH_HOST": "unix:///b.sock", "DOCKER_HOST": "unix:///d.sock"}, want: "unix:///b.sock"},
		{name: "docker host", configDir: cfg, env: map[string]string{"DOCKER_HOST": "unix:///d.sock"}, want: "unix:///d.sock"},
		{name: "docker context env", configDir: cfg, env: map[string]string{"DOCKER_CONTEXT": "remote"}, want: "unix:///ctx/remote.sock"},
		{name: "docker host wins over docker context", configDir: cfg, env: map[string]string{"DOCKER_CONTEXT": "remote", "DOCKER_HOST": "unix:///d.sock"}, want: "unix:///d.sock"},
		{name: "context flag wins over env", contextArg: "remote", configDir: cfg, env: map[string]string{"DOCKER_HOST": "unix:///d.sock", "BERTH_HOST": "unix:///b.sock"}, want: "unix:///ctx/remote.sock"},
		{name: "default context", contextArg: "default", configDir: cfg, want: DefaultHost},
		{name: "missing context", contextArg: "nope", configDir: cfg, wantErr: true},
		{name: "host and context", hosts: []string{"unix:///x"}, contextArg: "remote", configDir: cfg, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"BERTH_HOST", "DOCKER_HOST", "DOCKER_CONTEXT"} {
				t.Setenv(k, tc.env[k])
			}
			c := &Cli{hosts: tc.hosts, contextArg: tc.contextArg, configDir: tc.configDir}
			got, err := c.resolveHost()
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if got != tc.want {
				t.Errorf("host = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestContextFlagEndToEnd(t *testing.T) {
	f := newFakeEngine(t)
	f.reply("GET /containers/json", 200, []any{})
	cfg := t.TempDir()
	writeContext(t, cfg, "fake", f.host)
	t.Setenv("BERTH_HOST", "unix:///nonexistent.sock")
	stdout, stderr, code := runBerth(t, nil, "", "--config", cfg, "--context", "fake", "ps", "-q")
	if code != 0 || stdout != "" {
		t.Errorf("code=%d stdout=%q stderr=%q", code, stdout, stderr)
	}
	stdout, stderr, code = runBerth(t, nil, "", "-H", f.host, "ps")
	if code != 0 || stdout != "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n" {
		t.Errorf("-H: code=%d stdout=%q stderr=%q", code, stdout, stderr)
	}
}
