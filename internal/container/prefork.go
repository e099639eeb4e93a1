//go:build linux

package container

import (
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/container/spec"
	"github.com/berth-dev/berth/internal/shim"
)

// prepareShim has a shim (the warm spare) pre-fork rec's container init
// while start mounts the root filesystem and writes the bundle: the clone
// into new namespaces and cgroups, the init's exec and Go start-up leave
// the path of start (see shim.Prepare). Nil when it cannot help: the
// container joins a namespace (a network the daemon sets up,
// container:<ref> modes) or the layout cannot be known ahead. The runtime
// checks the pre-forked init against the final spec and falls back to an
// ordinary create when it does not fit.
func (s *Service) prepareShim(rec *Record) *shim.Prepared {
	if rec.Host == nil || rec.Config == nil || noPrefork {
		return nil
	}
	if nm := rec.Host.NetworkMode; !nm.IsNone() && !nm.IsHost() {
		return nil
	}
	nss, cgroupsPath, err := spec.Layout(spec.Input{ID: rec.ID, Config: rec.Config, HostConfig: rec.Host})
	if err != nil {
		return nil
	}
	for _, ns := range nss {
		if ns.Path != "" || ns.Type == specs.UserNamespace {
			return nil
		}
	}
	p, err := shim.Prepare(shim.PrepareOpts{
		Binary: s.cfg.ShimBinary, ID: rec.ID, RuntimeRoot: s.cfg.Runtime.Root(),
		CgroupsPath: cgroupsPath, Namespaces: nss, Terminal: rec.Config.Tty, Stdin: rec.Config.OpenStdin,
		WarmSpare: true,
	})
	if err != nil {
		s.log.Debug("prepare shim", "id", shortID(rec.ID), "err", err)
		return nil
	}
	return p
}

// noPrefork (BERTH_PREFORK=0 in berthd's environment) turns pre-forking
// off: for A/B measurements, and as a way out should it misbehave.
var noPrefork = os.Getenv("BERTH_PREFORK") == "0"
