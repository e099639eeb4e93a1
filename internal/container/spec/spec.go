//go:build linux

package spec

import (
	"context"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultShmSize is /dev/shm's size when HostConfig.ShmSize is 0 (64 MiB).
const defaultShmSize = 64 << 20

// Generate builds the OCI runtime spec for a container from its Docker
// configuration, with dockerd's defaults and semantics: process (args,
// environment, working directory, terminal, user and groups, capabilities,
// no_new_privileges, rlimits, OOM score), seccomp, namespaces, mounts,
// masked and read-only paths, devices, resources, sysctls, hostname and
// domainname. The seccomp profile is chosen by HostConfig.SecurityOpt:
// Docker's default profile, none for "seccomp=unconfined" (and for
// privileged containers), or the Docker-format JSON profile in
// "seccomp=<json>".
//
// Errors in the configuration are InvalidArgument. ctx is only checked
// for cancellation: Generate does not block.
func Generate(ctx context.Context, in Input) (*specs.Spec, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if in.Config == nil || in.HostConfig == nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "container config and host config are required")
	}
	if in.ID == "" {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "container ID is required")
	}
	g := &generator{in: in, cfg: in.Config, hc: in.HostConfig, host: probeHost()}
	return g.generate()
}

type generator struct {
	in   Input
	cfg  *container.Config
	hc   *container.HostConfig
	host hostInfo
	sec  securityOptions
	s    *specs.Spec
}

func (g *generator) generate() (*specs.Spec, error) {
	var err error
	if g.sec, err = parseSecurityOpt(g.hc.SecurityOpt); err != nil {
		return nil, err
	}
	g.s = &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: g.in.Rootfs, Readonly: g.hc.ReadonlyRootfs},
		Process: &specs.Process{},
		Linux:   &specs.Linux{},
	}
	if len(g.hc.Annotations) > 0 {
		g.s.Annotations = make(map[string]string, len(g.hc.Annotations))
		for k, v := range g.hc.Annotations {
			g.s.Annotations[k] = v
		}
	}
	steps := []func() error{
		g.hostname,
		g.process,
		g.namespaces,
		g.mounts,
		g.paths,
		g.devices,
		g.resources,
		g.sysctls,
		g.cgroupsPath,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return g.s, nil
}

func (g *generator) hostname() error {
	h := g.cfg.Hostname
	if h == "" {
		switch {
		case g.hc.NetworkMode.IsHost():
			h = g.host.hostname
		default:
			h = g.in.ID
			if len(h) > 12 {
				h = h[:12]
			}
		}
	}
	g.s.Hostname = h
	return nil
}

func (g *generator) process() error {
	p := g.s.Process
	args := append(append([]string{}, g.cfg.Entrypoint...), g.cfg.Cmd...)
	if len(args) == 0 || (len(args) == 1 && args[0] == "") {
		return errdefs.Newf(errdefs.InvalidArgument, "no command specified")
	}
	p.Args = args
	p.Terminal = g.cfg.Tty
	if g.cfg.Tty && (g.hc.ConsoleSize[0] != 0 || g.hc.ConsoleSize[1] != 0) {
		p.ConsoleSize = &specs.Box{Height: g.hc.ConsoleSize[0], Width: g.hc.ConsoleSize[1]}
	}

	env := []string{"PATH=" + DefaultPath, "HOSTNAME=" + g.s.Hostname}
	if g.cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	p.Env = replaceOrAppendEnv(env, g.cfg.Env)

	cwd := g.cfg.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return errdefs.Newf(errdefs.InvalidArgument, "the working directory '%s' is invalid, it needs to be an absolute path", g.cfg.WorkingDir)
	}
	p.Cwd = path.Clean(cwd)
	if err := g.ensureCwd(); err != nil {
		return err
	}

	user, err := resolveUser(g.in.Rootfs, g.cfg.User, g.hc.GroupAdd)
	if err != nil {
		return err
	}
	if g.hc.Umask != nil {
		m := *g.hc.Umask
		user.Umask = &m
	}
	p.User = user

	caps, err := capabilities(g.hc.CapAdd, g.hc.CapDrop, g.hc.Privileged, g.host.capLast, g.host.capBounding)
	if err != nil {
		return err
	}
	// As dockerd: root gets the set in its bounding, effective and
	// permitted sets; any other user only in its bounding set, which is
	// what execve(2) leaves a non-root process anyway.
	p.Capabilities = &specs.LinuxCapabilities{Bounding: caps}
	if user.UID == 0 {
		p.Capabilities.Effective = append([]string(nil), caps...)
		p.Capabilities.Permitted = append([]string(nil), caps...)
	}
	p.NoNewPrivileges = g.sec.noNewPrivileges

	if g.s.Linux.Seccomp, err = seccompFor(g.sec.seccomp, g.hc.Privileged, caps, g.host); err != nil {
		return err
	}

	for _, ul := range g.hc.Ulimits {
		if ul == nil {
			continue
		}
		typ := "RLIMIT_" + strings.ToUpper(ul.Name)
		if _, ok := rlimitNames[typ]; !ok {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid ulimit type: %s", ul.Name)
		}
		if ul.Soft > ul.Hard && ul.Hard >= 0 {
			return errdefs.Newf(errdefs.InvalidArgument, "ulimit soft limit must be less than or equal to hard limit: %d > %d", ul.Soft, ul.Hard)
		}
		p.Rlimits = append(p.Rlimits, specs.POSIXRlimit{Type: typ, Soft: uint64(ul.Soft), Hard: uint64(ul.Hard)})
	}

	if g.hc.OomScoreAdj < -1000 || g.hc.OomScoreAdj > 1000 {
		return errdefs.Newf(errdefs.InvalidArgument, "Invalid value %d, range for oom score adj is [-1000, 1000]", g.hc.OomScoreAdj)
	}
	score := g.hc.OomScoreAdj
	p.OOMScoreAdj = &score
	return nil
}

// rlimitNames are the ulimit names Docker accepts, as OCI rlimit types.
var rlimitNames = map[string]struct{}{
	"RLIMIT_AS": {}, "RLIMIT_CORE": {}, "RLIMIT_CPU": {}, "RLIMIT_DATA": {}, "RLIMIT_FSIZE": {},
	"RLIMIT_LOCKS": {}, "RLIMIT_MEMLOCK": {}, "RLIMIT_MSGQUEUE": {}, "RLIMIT_NICE": {},
	"RLIMIT_NOFILE": {}, "RLIMIT_NPROC": {}, "RLIMIT_RSS": {}, "RLIMIT_RTPRIO": {},
	"RLIMIT_RTTIME": {}, "RLIMIT_SIGPENDING": {}, "RLIMIT_STACK": {},
}

// ensureCwd creates the working directory inside the rootfs when it is
// missing, as dockerd does when it starts a container (0755, root-owned).
// The path is resolved inside the root, so symlinks cannot lead out.
func (g *generator) ensureCwd() error {
	if g.in.Rootfs == "" || g.s.Process.Cwd == "/" {
		return nil
	}
	if err := pathrs.MkdirAll(g.in.Rootfs, g.s.Process.Cwd, 0o755); err != nil {
		if errors.Is(err, unix.ENOTDIR) {
			return errdefs.Newf(errdefs.InvalidArgument, "cannot use %s as the working directory: %w", g.s.Process.Cwd, err)
		}
		return errdefs.With(errdefs.Internal, fmt.Errorf("creating the working directory %s: %w", g.s.Process.Cwd, err))
	}
	return nil
}

// replaceOrAppendEnv applies overrides to defaults as dockerd does: a
// variable set in both takes the override's value at the default's
// place, new ones are appended, and a bare "NAME" removes NAME.
func replaceOrAppendEnv(defaults, overrides []string) []string {
	out := append([]string(nil), defaults...)
	index := map[string]int{}
	for i, e := range out {
		k, _, _ := strings.Cut(e, "=")
		index[k] = i
	}
	removed := map[int]bool{}
	for _, e := range overrides {
		k, _, hasValue := strings.Cut(e, "=")
		i, exists := index[k]
		switch {
		case !hasValue:
			if exists {
				removed[i] = true
			}
		case exists:
			out[i] = e
			delete(removed, i)
		default:
			out = append(out, e)
			index[k] = len(out) - 1
		}
	}
	final := out[:0:0]
	for i, e := range out {
		if !removed[i] {
			final = append(final, e)
		}
	}
	return final
}

func (g *generator) cgroupsPath() error {
	if g.in.CgroupsPath != "" {
		g.s.Linux.CgroupsPath = g.in.CgroupsPath
		return nil
	}
	parent := g.hc.CgroupParent
	if parent == "" {
		parent = DefaultCgroupParent
	}
	g.s.Linux.CgroupsPath = filepath.Join(parent, g.in.ID)
	return nil
}
