package cli

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoginLogout(t *testing.T) {
	cfg := t.TempDir()
	t.Setenv("DOCKER_CONFIG", cfg)
	// An existing config keeps its unrelated settings.
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"psFormat":"{{.ID}}","auths":{}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f := newFakeEngine(t)
	f.reply("POST /auth", 200, map[string]string{"Status": "Login Succeeded"})

	stdout, stderr, code := runBerth(t, f, "hunter2\n", "login", "-u", "bob", "--password-stdin", "registry.example.com:5000")
	if code != 0 || stdout != "Login Succeeded\n" {
		t.Fatalf("login: code=%d stdout=%q stderr=%q", code, stdout, stderr)
	}
	var sent struct{ Username, Password, ServerAddress string }
	_ = json.Unmarshal(f.requests("POST /auth")[0].Body, &sent)
	if sent.Username != "bob" || sent.Password != "hunter2" || sent.ServerAddress != "registry.example.com:5000" {
		t.Errorf("auth request = %+v", sent)
	}
	b, _ := os.ReadFile(filepath.Join(cfg, "config.json"))
	var file struct {
		PsFormat string `json:"psFormat"`
		Auths    map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	if file.PsFormat != "{{.ID}}" {
		t.Errorf("psFormat lost: %s", b)
	}
	if got := file.Auths["registry.example.com:5000"].Auth; got != base64.StdEncoding.EncodeToString([]byte("bob:hunter2")) {
		t.Errorf("stored auth = %q", got)
	}
	if st, _ := os.Stat(filepath.Join(cfg, "config.json")); st.Mode().Perm() != 0o600 {
		t.Errorf("config.json mode = %v", st.Mode())
	}

	// Pushes to that registry carry the credentials.
	f.handle("POST /images/*/push", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"status":"The push refers to repository [registry.example.com:5000/app]"}` + "\n"))
	})
	stdout, stderr, code = runBerth(t, f, "", "push", "registry.example.com:5000/app:v1")
	if code != 0 || stdout != "The push refers to repository [registry.example.com:5000/app]\n" {
		t.Errorf("push: code=%d stdout=%q stderr=%q", code, stdout, stderr)
	}
	push := f.requests("POST /images/*/push")[0]
	raw, _ := base64.URLEncoding.DecodeString(push.Header.Get("X-Registry-Auth"))
	if !strings.Contains(string(raw), `"username":"bob"`) || push.Query["tag"][0] != "v1" {
		t.Errorf("push auth=%s query=%v", raw, push.Query)
	}

	stdout, _, code = runBerth(t, f, "", "logout", "registry.example.com:5000")
	if code != 0 || stdout != "Removing login credentials for registry.example.com:5000\n" {
		t.Errorf("logout: code=%d stdout=%q", code, stdout)
	}
	b, _ = os.ReadFile(filepath.Join(cfg, "config.json"))
	if strings.Contains(string(b), "registry.example.com") {
		t.Errorf("credentials not removed: %s", b)
	}
	stdout, _, code = runBerth(t, f, "", "logout", "registry.example.com:5000")
	if code != 0 || stdout != "Removing login credentials for registry.example.com:5000\n" {
		t.Errorf("second logout: %d %q", code, stdout)
	}
}

func TestLoginFailure(t *testing.T) {
	f := newFakeEngine(t)
	f.reply("POST /auth", 401, map[string]string{"message": "login attempt to https://registry-1.docker.io/v2/ failed with status: 401 Unauthorized"})
	_, stderr, code := runBerth(t, f, "", "login", "-u", "bob", "-p", "bad")
	if code != 1 || !strings.Contains(stderr, "Error response from daemon: login attempt") || !strings.Contains(stderr, "WARNING! Using --password via the CLI is insecure") {
		t.Errorf("code=%d stderr=%q", code, stderr)
	}
	if sent := f.requests("POST /auth"); len(sent) != 1 || !strings.Contains(string(sent[0].Body), indexServer) {
		t.Errorf("auth request = %+v", sent)
	}
}

func TestAuthKey(t *testing.T) {
	for in, want := range map[string]string{
		"":                            indexServer,
		"docker.io":                   indexServer,
		"https://index.docker.io/v1/": indexServer,
		"registry.example.com:5000":   "registry.example.com:5000",
		"https://ghcr.io":             "ghcr.io",
	} {
		if got := authKey(in); got != want {
			t.Errorf("authKey(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"busybox": indexServer, "library/busybox:1": indexServer, "ghcr.io/a/b:c": "ghcr.io", "localhost:5000/x": "localhost:5000",
	} {
		if got := registryOf(in); got != want {
			t.Errorf("registryOf(%q) = %q, want %q", in, got, want)
		}
	}
}
