package spec

import (
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// MergeImageConfig fills in cfg, in place, from the image's config, as
// dockerd does when a container is created:
//
//   - User, WorkingDir and StopSignal come from the image when cfg leaves
//     them empty.
//   - Env: cfg's variables first, then every image variable whose name cfg
//     does not set (so the container wins by key; the order is dockerd's).
//   - Entrypoint and Cmd: when cfg has no Entrypoint, it takes the image's
//     Cmd (only if cfg has no Cmd either) and the image's Entrypoint (only
//     if cfg.Entrypoint is nil, not an explicitly empty list). When cfg
//     sets an Entrypoint the image's Cmd is dropped and only cfg.Cmd is
//     used. An Entrypoint of [""] (`--entrypoint ""`) resets the image's
//     entrypoint: it is cleared here after the merge.
//   - Labels, ExposedPorts and Volumes: the union, cfg winning on labels.
//   - Healthcheck: the image's, with every field cfg sets overriding it.
//   - Shell: the image's when cfg has none. OnBuild is ignored (it only
//     matters to builds).
//
// It fails with InvalidArgument when the image lists an exposed port that
// cannot be parsed. A nil img leaves cfg unchanged.
func MergeImageConfig(cfg *container.Config, img *dockerspec.DockerOCIImageConfig) error {
	if cfg == nil {
		return errdefs.Newf(errdefs.InvalidArgument, "container config is missing")
	}
	if img == nil {
		clearEmptyEntrypoint(cfg)
		return nil
	}
	if cfg.User == "" {
		cfg.User = img.User
	}

	for p := range img.ExposedPorts {
		port, err := network.ParsePort(p)
		if err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "image exposes an invalid port %q: %w", p, err)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		cfg.ExposedPorts[port] = struct{}{}
	}

	if len(cfg.Env) == 0 {
		cfg.Env = append([]string(nil), img.Env...)
	} else {
		set := make(map[string]bool, len(cfg.Env))
		for _, e := range cfg.Env {
			k, _, _ := strings.Cut(e, "=")
			set[k] = true
		}
		for _, e := range img.Env {
			k, _, _ := strings.Cut(e, "=")
			if !set[k] {
				cfg.Env = append(cfg.Env, e)
			}
		}
	}

	if len(img.Labels) > 0 && cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	for k, v := range img.Labels {
		if _, ok := cfg.Labels[k]; !ok {
			cfg.Labels[k] = v
		}
	}

	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = append([]string(nil), img.Cmd...)
			cfg.ArgsEscaped = img.ArgsEscaped
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = append([]string(nil), img.Entrypoint...)
			if len(cfg.Entrypoint) == 0 {
				cfg.Entrypoint = nil
			}
		}
	}
	clearEmptyEntrypoint(cfg)

	if h := img.Healthcheck; h != nil {
		if cfg.Healthcheck == nil {
			c := *h
			c.Test = append([]string(nil), h.Test...)
			cfg.Healthcheck = &c
		} else {
			u := cfg.Healthcheck
			if len(u.Test) == 0 {
				u.Test = append([]string(nil), h.Test...)
			}
			if u.Interval == 0 {
				u.Interval = h.Interval
			}
			if u.Timeout == 0 {
				u.Timeout = h.Timeout
			}
			if u.StartPeriod == 0 {
				u.StartPeriod = h.StartPeriod
			}
			if u.StartInterval == 0 {
				u.StartInterval = h.StartInterval
			}
			if u.Retries == 0 {
				u.Retries = h.Retries
			}
		}
	}

	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if len(img.Volumes) > 0 && cfg.Volumes == nil {
		cfg.Volumes = map[string]struct{}{}
	}
	for v := range img.Volumes {
		cfg.Volumes[v] = struct{}{}
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.StopSignal
	}
	if len(cfg.Shell) == 0 && len(img.Shell) > 0 {
		cfg.Shell = append([]string(nil), img.Shell...)
	}
	return nil
}

// clearEmptyEntrypoint turns the CLI's `--entrypoint ""` ([""]) into no
// entrypoint once it has done its job of hiding the image's.
func clearEmptyEntrypoint(cfg *container.Config) {
	if len(cfg.Entrypoint) == 1 && cfg.Entrypoint[0] == "" {
		cfg.Entrypoint = []string{}
	}
}
