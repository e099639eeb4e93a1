package build

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/moby/api/types/mount"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// run executes a RUN step in a container on the current state and makes
// its changes a layer. The container is removed whatever happens.
func (d *dispatcher) run(ctx context.Context, c *instructions.RunCommand) error {
	args := d.commandLine(c.ShellDependantCmdLine)
	envArgs := d.argsEnv()
	network := instructions.GetNetwork(c)
	if network == "" || network == instructions.NetworkDefault {
		network = d.s.opts.NetworkMode
	}
	switch network {
	case "", "default", "bridge", "none", "host":
	default:
		return errdefs.Newf(errdefs.InvalidArgument, "network mode %q not supported by the builder (none, host, default)", network)
	}
	mounts := instructions.GetMounts(c)
	var mountKey []string
	for _, m := range mounts {
		mountKey = append(mountKey, fmt.Sprintf("%s|%s|%s|%s|%s|%v", m.Type, m.Target, m.Source, m.From, m.CacheID, m.ReadOnly))
	}
	createdBy := strings.Join(args, " ")
	if len(envArgs) > 0 {
		createdBy = fmt.Sprintf("|%d %s %s", len(envArgs), strings.Join(envArgs, " "), createdBy)
	}
	// Secrets change nothing in the key: their content is never part of
	// the image (BuildKit does the same).
	key := cacheKey(d.key, "RUN", args, envArgs, network, mountKey)
	parent := d.st.Clone()
	return d.stepWith(key, "RUN "+strings.Join(args, " "), func() (*image.State, int64, error) {
		rm, secretEnv, cleanup, err := d.s.runMounts(ctx, d, mounts)
		if err != nil {
			return nil, 0, err
		}
		defer cleanup()
		cfg := parent.Config.Config
		env := append([]string(nil), cfg.Env...)
		for _, kv := range envArgs {
			k, v, _ := strings.Cut(kv, "=")
			env = setEnv(env, k, v)
		}
		// Secrets as variables exist for this process only (the
		// container is removed; its config is never an image's).
		for _, kv := range secretEnv {
			k, v, _ := strings.Cut(kv, "=")
			env = setEnv(env, k, v)
		}
		if !hasEnv(env, "PATH") {
			env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
		}
		runner := d.s.b.cfg.Runner
		t0 := time.Now()
		res, err := runner.Run(ctx, RunRequest{
			Parent: parent, Args: args, Env: env, User: cfg.User, WorkDir: cfg.WorkingDir,
			NetworkMode: network, ExtraHosts: d.s.opts.ExtraHosts, Mounts: rm,
			Resources: d.s.opts.Resources, ShmSize: d.s.opts.ShmSize,
			Output:  streamWriter{d},
			Started: func(id string) { d.printf(" ---> Running in %s\n", shortID(id)) },
		})
		removed := false
		remove := func() {
			if res.ContainerID != "" && !removed {
				removed = true
				if rerr := runner.Remove(context.WithoutCancel(ctx), res.ContainerID); rerr != nil {
					d.s.b.cfg.Log.Warn("build: remove intermediate container", "id", res.ContainerID, "err", rerr)
				}
				d.printf("Removing intermediate container %s\n", shortID(res.ContainerID))
			}
		}
		defer remove()
		if err != nil {
			return nil, 0, err
		}
		if res.ExitCode != 0 {
			return nil, 0, &RunError{Cmd: args, Code: res.ExitCode}
		}
		var stubs []string
		for _, m := range rm {
			stubs = append(stubs, strings.TrimPrefix(m.Target, "/"))
		}
		t1 := time.Now()
		layer, err := d.s.b.cfg.Images.NewLayerLinked(ctx, res.Snapshot, parent.ChainID(), stubs...)
		if err != nil {
			return nil, 0, err
		}
		t2 := time.Now()
		remove()
		d.s.b.cfg.Log.Debug("build run", "run", t1.Sub(t0), "layer", t2.Sub(t1), "remove", time.Since(t2))
		st, size := withLayer(parent, layer, createdBy)
		return st, size, nil
	}, true)
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			return true
		}
	}
	return false
}

// runMounts turns RUN --mount flags into container mounts: cache mounts
// are directories under the builder's root kept across builds, secrets
// files written for this step only, bind mounts read from the context
// (or a stage's root filesystem) read-only unless rw, tmpfs a tmpfs.
func (s *session) runMounts(ctx context.Context, d *dispatcher, ms []*instructions.Mount) ([]mount.Mount, []string, func(), error) {
	var out []mount.Mount
	var secretEnv []string
	var cleanups []func()
	nSSH := 0
	cleanup := func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	for _, m := range ms {
		target := m.Target
		if target != "" && !path.IsAbs(target) {
			target = path.Join("/", d.st.Config.Config.WorkingDir, target)
		}
		switch m.Type {
		case instructions.MountTypeCache:
			id := m.CacheID
			if id == "" {
				id = target
			}
			s.noteCacheMount(id) // for --cache-to
			dir := filepath.Join(s.b.cfg.Root, "cache-mounts", cacheMountName(id))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				cleanup()
				return nil, nil, nil, err
			}
			if m.UID != nil || m.GID != nil || m.Mode != nil {
				uid, gid := 0, 0
				if m.UID != nil {
					uid = int(*m.UID)
				}
				if m.GID != nil {
					gid = int(*m.GID)
				}
				_ = os.Chown(dir, uid, gid)
				if m.Mode != nil {
					_ = os.Chmod(dir, os.FileMode(*m.Mode))
				}
			}
			out = append(out, mount.Mount{Type: mount.TypeBind, Source: dir, Target: target})
		case instructions.MountTypeSSH:
			if target == "" {
				target = fmt.Sprintf("/run/buildkit/ssh_agent.%d", nSSH)
			}
			if nSSH == 0 {
				secretEnv = append(secretEnv, "SSH_AUTH_SOCK="+target)
			}
			nSSH++
			sm, release, err := s.sshMount(m, target)
			if err != nil {
				cleanup()
				return nil, nil, nil, err
			}
			cleanups = append(cleanups, release)
			if sm != nil {
				out = append(out, *sm)
			}
		case instructions.MountTypeTmpfs:
			out = append(out, mount.Mount{Type: mount.TypeTmpfs, Target: target, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: m.SizeLimit}})
		case instructions.MountTypeSecret:
			id := m.CacheID
			if id == "" && m.Target != "" {
				id = path.Base(m.Target)
			}
			if target == "" {
				target = "/run/secrets/" + id
			}
			data, ok := s.opts.Secrets[id]
			if ok && m.Env != nil {
				secretEnv = append(secretEnv, *m.Env+"="+string(data))
				if m.Target == "" {
					continue
				}
			}
			if !ok {
				if m.Required {
					cleanup()
					return nil, nil, nil, errdefs.Newf(errdefs.InvalidArgument, "secret %s: not provided", id)
				}
				continue
			}
			dir, err := os.MkdirTemp(s.b.cfg.Root, "mnt-")
			if err != nil {
				cleanup()
				return nil, nil, nil, err
			}
			cleanups = append(cleanups, func() { os.RemoveAll(dir) })
			f := filepath.Join(dir, "secret")
			mode := os.FileMode(0o400)
			if m.Mode != nil {
				mode = os.FileMode(*m.Mode)
			}
			if err := os.WriteFile(f, data, mode); err != nil {
				cleanup()
				return nil, nil, nil, err
			}
			if m.UID != nil || m.GID != nil {
				uid, gid := 0, 0
				if m.UID != nil {
					uid = int(*m.UID)
				}
				if m.GID != nil {
					gid = int(*m.GID)
				}
				_ = os.Chown(f, uid, gid)
			}
			out = append(out, mount.Mount{Type: mount.TypeBind, Source: f, Target: target, ReadOnly: true})
		case instructions.MountTypeBind:
			var root string
			if m.From == "" {
				dir, err := s.ctx.unpack()
				if err != nil {
					cleanup()
					return nil, nil, nil, err
				}
				root = dir
			} else {
				j, ok := s.df.stageIndex(m.From, d.sr.idx)
				if ok && !d.sr.dependsOn(j) {
					ok = false
				}
				if !ok {
					cleanup()
					return nil, nil, nil, errdefs.Newf(errdefs.InvalidArgument, "RUN --mount from=%s: only earlier stages are supported", m.From)
				}
				dir, release, err := s.mountState(ctx, s.stages[j].state)
				if err != nil {
					cleanup()
					return nil, nil, nil, err
				}
				cleanups = append(cleanups, release)
				root = dir
			}
			src, err := secureJoin(root, m.Source)
			if err != nil {
				cleanup()
				return nil, nil, nil, err
			}
			out = append(out, mount.Mount{Type: mount.TypeBind, Source: src, Target: target, ReadOnly: m.ReadOnly})
		default:
			cleanup()
			return nil, nil, nil, errdefs.Newf(errdefs.NotImplemented, "RUN --mount=type=%s is not supported", m.Type)
		}
	}
	return out, secretEnv, cleanup, nil
}

func cacheMountName(id string) string {
	// "", "." and ".." would name the cache-mounts directory itself or
	// the builder's root (with every build's scratch space).
	switch id {
	case "":
		return "_"
	case ".", "..":
		return strings.ReplaceAll(id, ".", "_2e")
	}
	var b strings.Builder
	for _, r := range id {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			b.WriteRune(r)
		} else {
			b.WriteString("_" + strconv.FormatInt(int64(r), 16))
		}
	}
	return b.String()
}
