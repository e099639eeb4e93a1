package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/berth-dev/berth/internal/daemon"
)

// addRuntimeFlags adds --add-runtime name=path entries to cfg's runtimes
// (a flag overrides the file's runtime of the same name).
func addRuntimeFlags(cfg *daemon.Config, flags []string) error {
	for _, v := range flags {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("invalid runtime %q: want name=path", v)
		}
		if cfg.Runtimes == nil {
			cfg.Runtimes = map[string]daemon.Runtime{}
		} else if _, dup := cfg.Runtimes[name]; dup {
			// Copy before changing: the map may be shared with the file's.
			m := make(map[string]daemon.Runtime, len(cfg.Runtimes))
			for k, r := range cfg.Runtimes {
				m[k] = r
			}
			cfg.Runtimes = m
		}
		cfg.Runtimes[name] = daemon.Runtime{Path: path}
	}
	return nil
}

// reloader reloads the configuration on SIGHUP, as dockerd.
type reloader struct {
	load    func() (daemon.Config, error)
	changed func(flag string) bool
}

// serve applies a reload for every signal on hup until ctx ends; an
// invalid file is logged and changes nothing.
func (r reloader) serve(ctx context.Context, d *daemon.Daemon, hup <-chan os.Signal, level *slog.LevelVar, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		next, err := r.load()
		if err == nil {
			next, err = d.Reload(next, r.changed)
		}
		if err != nil {
			log.Error("reload: the configuration is unchanged", "err", err)
			continue
		}
		level.Set(logLevel(next))
	}
}

// logLevel is the slog level of log-level and debug.
func logLevel(cfg daemon.Config) slog.Level {
	if cfg.Debug {
		return slog.LevelDebug
	}
	switch strings.ToLower(cfg.LogLevel) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error", "fatal", "panic":
		return slog.LevelError
	}
	return slog.LevelInfo
}
