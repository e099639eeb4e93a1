package main

import (
	"fmt"
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
