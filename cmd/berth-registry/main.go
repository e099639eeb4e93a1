package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/internal/distribution/registry"
	"github.com/berth-dev/berth/internal/image/content"
)

const usage = `usage: berth-registry serve [flags]

Serve an OCI distribution-spec registry.

Flags:
`

type config struct {
	listen, root, tlsCert, tlsKey, htpasswd string
	readOnly                                bool
}

func main() {
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprint(os.Stderr, usage)
		newFlags(&config{}).PrintDefaults()
		os.Exit(2)
	}
	var cfg config
	fs := newFlags(&cfg)
	if err := fs.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	if fs.NArg() > 0 || (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		fmt.Fprintln(os.Stderr, "berth-registry: unexpected arguments, or only one of --tls-cert and --tls-key")
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		fmt.Fprintf(os.Stderr, "berth-registry: %v\n", err)
		os.Exit(1)
	}
}

func newFlags(cfg *config) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:5000", "address to listen on")
	fs.StringVar(&cfg.root, "root", "/var/lib/berth/registry", "directory holding the registry's content and metadata")
	fs.StringVar(&cfg.tlsCert, "tls-cert", "", "TLS certificate file (serve HTTPS)")
	fs.StringVar(&cfg.tlsKey, "tls-key", "", "TLS private key file")
	fs.StringVar(&cfg.htpasswd, "htpasswd", "", "htpasswd file of user:hash lines, bcrypt or SHA-crypt (require basic auth)")
	fs.BoolVar(&cfg.readOnly, "read-only", false, "refuse pushes and deletes")
	return fs
}

func serve(ctx context.Context, cfg config, log *slog.Logger) error {
	opts := registry.Options{ReadOnly: cfg.readOnly, Logger: log}
	if cfg.htpasswd != "" {
		f, err := os.Open(cfg.htpasswd)
		if err != nil {
			return err
		}
		opts.Htpasswd, err = registry.ParseHtpasswd(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.htpasswd, err)
		}
	}
	store, err := content.Open(filepath.Join(cfg.root, "content"))
	if err != nil {
		return err
	}
	reg, err := registry.New(store, filepath.Join(cfg.root, "registry"), opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: reg, ReadHeaderTimeout: 30 * time.Second}
	go pruneUploads(ctx, reg, log)

	errc := make(chan error, 1)
	go func() {
		if cfg.tlsCert != "" {
			errc <- srv.ServeTLS(ln, cfg.tlsCert, cfg.tlsKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	log.Info("registry listening", "addr", ln.Addr().String(), "root", cfg.root, "tls", cfg.tlsCert != "", "auth", cfg.htpasswd != "", "read-only", cfg.readOnly)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// pruneUploads discards upload sessions abandoned for a day, hourly.
func pruneUploads(ctx context.Context, reg *registry.Server, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := reg.PruneUploads(ctx, 24*time.Hour); err != nil && ctx.Err() == nil {
			log.Warn("prune uploads", "err", err)
		} else if n > 0 {
			log.Info("pruned abandoned uploads", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
