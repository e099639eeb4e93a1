package api_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
)

// hangupRouter hijacks and reports when the connection's context ends.
type hangupRouter struct{ ended chan struct{} }

func (h hangupRouter) Routes() []api.Route {
	return []api.Route{{Method: "POST", Path: "/test/hijack", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		c, err := api.Hijack(w, r, api.StreamContentType(ctx, true))
		if err != nil {
			return err
		}
		defer c.Close()
		io.WriteString(c, "ready\n")
		<-c.Context().Done()
		close(h.ended)
		return nil
	}}}
}

func serveOn(t *testing.T, routers ...api.Router) (*api.Server, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "berth-api")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.NewServer(api.Config{Logger: slog.New(slog.DiscardHandler)}, routers...)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return srv, sock
}

func hijack(t *testing.T, sock string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /test/hijack HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "ready\n" {
			return c, br
		}
	}
}

func TestHijackedConnNoticesHangup(t *testing.T) {
	h := hangupRouter{ended: make(chan struct{})}
	_, sock := serveOn(t, h)
	c, _ := hijack(t, sock)
	// A half-close (end of stdin) must not end the session.
	c.(*net.UnixConn).CloseWrite()
	select {
	case <-h.ended:
		t.Fatal("half-close ended the session")
	case <-time.After(200 * time.Millisecond):
	}
	c.Close()
	select {
	case <-h.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("hang-up not noticed")
	}
}

func TestShutdownEndsStreamsAndHijacked(t *testing.T) {
	h := hangupRouter{ended: make(chan struct{})}
	srv, sock := serveOn(t, append(apitest.NewFakes().Routers(), h)...)
	c, br := hijack(t, sock)
	defer c.Close()

	// An endless events stream.
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://d/events")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("events: %v %v", resp, err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	if _, err := io.ReadAll(resp.Body); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("events body: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("hijacked connection still open: %v", err)
	}
}

func TestMutualTLS(t *testing.T) {
	ca, caKey := newCert(t, "ca", nil, nil, true)
	srvCert, srvKey := newCert(t, "localhost", ca, caKey, false)
	cliCert, cliKey := newCert(t, "client", ca, caKey, false)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	srv, err := api.NewServer(api.Config{Logger: slog.New(slog.DiscardHandler)}, apitest.NewFakes().Routers()...)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(l, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12,
	})
	defer srv.Close()

	get := func(certs []tls.Certificate) (*http.Response, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs, ServerName: "localhost"}}}
		return c.Get("https://" + l.Addr().String() + "/v1.44/_ping")
	}
	resp, err := get([]tls.Certificate{{Certificate: [][]byte{cliCert.Raw}, PrivateKey: cliKey}})
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Api-Version") != api.MaxAPIVersion {
		t.Fatalf("with a client certificate: %v %v", resp, err)
	}
	resp.Body.Close()
	if resp, err := get(nil); err == nil {
		resp.Body.Close()
		t.Fatal("served a client without a certificate")
	}
}

func newCert(t *testing.T, cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:    []string{cn}, IsCA: isCA, BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c, key
}
