package cli

import (
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Header().Set("Api-Version", "1.50")
			_, _ = w.Write([]byte("OK"))
			return
		}
		writeJSON(w, 200, []map[string]any{{"Id": "cccccccccccc3333", "Names": []string{"/tls"}}})
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures
	srv.StartTLS()
	t.Cleanup(srv.Close)
	certDir := t.TempDir()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(filepath.Join(certDir, "ca.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	host := "tcp://" + srv.Listener.Addr().String()
	t.Setenv("DOCKER_CERT_PATH", "")
	t.Setenv("DOCKER_TLS_VERIFY", "")

	stdout, stderr, code := runBerth(t, nil, "", "-H", host, "--tlsverify", "--tlscacert", filepath.Join(certDir, "ca.pem"), "ps", "-q")
	if code != 0 || stdout != "cccccccccccc\n" {
		t.Errorf("--tlsverify: code=%d stdout=%q stderr=%q", code, stdout, stderr)
	}
	// --tls without verification.
	stdout, stderr, code = runBerth(t, nil, "", "-H", host, "--tls", "ps", "-q")
	if code != 0 || stdout != "cccccccccccc\n" {
		t.Errorf("--tls: code=%d stdout=%q stderr=%q", code, stdout, stderr)
	}
	// The environment form: DOCKER_TLS_VERIFY with ca.pem in DOCKER_CERT_PATH.
	t.Setenv("DOCKER_CERT_PATH", certDir)
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	stdout, stderr, code = runBerth(t, nil, "", "-H", host, "ps", "-q")
	if code != 0 || stdout != "cccccccccccc\n" {
		t.Errorf("env: code=%d stdout=%q stderr=%q", code, stdout, stderr)
	}
	// Verification against the wrong CA fails.
	other := t.TempDir()
	_ = os.WriteFile(filepath.Join(other, "ca.pem"), []byte("not a cert"), 0o600)
	t.Setenv("DOCKER_CERT_PATH", other)
	if _, _, code = runBerth(t, nil, "", "-H", host, "ps", "-q"); code == 0 {
		t.Error("bad CA accepted")
	}
	// Plain HTTP to a TLS endpoint fails.
	t.Setenv("DOCKER_TLS_VERIFY", "")
	if _, _, code = runBerth(t, nil, "", "-H", host, "ps", "-q"); code == 0 {
		t.Error("plain HTTP to a TLS daemon succeeded")
	}
}
