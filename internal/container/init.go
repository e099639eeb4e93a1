package container

import (
	"os"
	"os/exec"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// initPathInContainer is where --init's binary appears, as with dockerd.
const initPathInContainer = "/sbin/docker-init"

// wantsInit reports whether r runs under berth-init: HostConfig.Init when
// set, else the daemon's "init" default.
func (s *Service) wantsInit(r *Record) bool {
	if r.Host.Init != nil {
		return *r.Host.Init
	}
	return s.cfg.DefaultInit
}

// initBinary finds berth-init: the daemon's init-path, else berth-init
// beside berthd, else berth-init or docker-init on PATH.
func (s *Service) initBinary() (string, error) {
	if s.cfg.InitPath != "" {
		if _, err := os.Stat(s.cfg.InitPath); err != nil {
			return "", errdefs.Newf(errdefs.InvalidArgument, "init binary %s: %v", s.cfg.InitPath, err)
		}
		return s.cfg.InitPath, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "berth-init")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	for _, name := range []string{"berth-init", "docker-init"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
	}
	return "", errdefs.Newf(errdefs.InvalidArgument, "exec: \"berth-init\": executable file not found in $PATH (set the daemon's init-path)")
}

// applyInit makes the init PID 1 of sp: its binary bind-mounted read-only
// at /sbin/docker-init, and prepended to the process's arguments with
// "--".
func (s *Service) applyInit(r *Record, sp *specs.Spec) error {
	if !s.wantsInit(r) || sp.Process == nil {
		return nil
	}
	bin, err := s.initBinary()
	if err != nil {
		return err
	}
	sp.Mounts = append(sp.Mounts, specs.Mount{
		Destination: initPathInContainer, Type: "bind", Source: bin,
		Options: []string{"rbind", "ro", "nosuid", "nodev"},
	})
	sp.Process.Args = append([]string{initPathInContainer, "--"}, sp.Process.Args...)
	return nil
}
