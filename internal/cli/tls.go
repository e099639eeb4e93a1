package cli

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/moby/moby/client"
	"github.com/spf13/pflag"
)

// tlsOptions are docker's TLS flags for tcp:// endpoints. --tlsverify (or
// DOCKER_TLS_VERIFY) verifies the daemon against --tlscacert; --tls alone
// encrypts without verifying. Client certificates are sent when present.
// Default files are ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH, else
// in the config directory.
type tlsOptions struct {
	tls, verify      bool
	caFile, certFile string
	keyFile          string
}

func (o *tlsOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.tls, "tls", false, "Use TLS; implied by --tlsverify")
	fs.BoolVar(&o.verify, "tlsverify", os.Getenv("DOCKER_TLS_VERIFY") != "", "Use TLS and verify the remote")
	fs.StringVar(&o.caFile, "tlscacert", "", "Trust certs signed only by this CA (default ca.pem in the cert path)")
	fs.StringVar(&o.certFile, "tlscert", "", "Path to TLS certificate file (default cert.pem in the cert path)")
	fs.StringVar(&o.keyFile, "tlskey", "", "Path to TLS key file (default key.pem in the cert path)")
}

// clientOpts returns the client options for TLS, or none when TLS is off.
func (o *tlsOptions) clientOpts(configDir string) ([]client.Opt, error) {
	if !o.tls && !o.verify {
		return nil, nil
	}
	certDir := os.Getenv("DOCKER_CERT_PATH")
	if certDir == "" {
		certDir = configDir
	}
	pick := func(v, name string) (string, bool) {
		if v != "" {
			return v, true
		}
		return filepath.Join(certDir, name), false
	}
	caFile, _ := pick(o.caFile, "ca.pem")
	certFile, certSet := pick(o.certFile, "cert.pem")
	keyFile, keySet := pick(o.keyFile, "key.pem")

	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.verify {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("could not read CA certificate %q: %w", caFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("failed to append certificates from PEM file: %q", caFile)
		}
		cfg.RootCAs = pool
	} else {
		cfg.InsecureSkipVerify = true
	}
	// A client certificate is optional unless named explicitly.
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	switch {
	case err == nil:
		cfg.Certificates = []tls.Certificate{cert}
	case certSet || keySet:
		return nil, fmt.Errorf("could not load X509 key pair: %w", err)
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("could not load X509 key pair: %w", err)
	}
	return []client.Opt{client.WithHTTPClient(&http.Client{
		Transport: &http.Transport{TLSClientConfig: cfg},
	})}, nil
}
