package daemon

import (
	"context"
	"maps"
	"strings"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	apicontainer "github.com/moby/moby/api/types/container"

	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	"github.com/berth-dev/berth/internal/image"
)

// commit makes an image from a container (POST /commit) as dockerd does:
// the request's config with the changes applied, its empty fields filled
// from the container's config; the container paused during the diff
// unless pause=false.
func (d *Daemon) commit(ctx context.Context, o imagerouter.CommitOptions) (string, error) {
	insp, err := d.containers.Inspect(ctx, o.Container, false)
	if err != nil {
		return "", err
	}
	var cfg dockerspec.DockerOCIImageConfig
	if o.Config != nil {
		cfg = imageConfigOf(o.Config)
	}
	if err := image.ApplyChanges(&cfg, o.Changes); err != nil {
		return "", err
	}
	var ctrCfg dockerspec.DockerOCIImageConfig
	var cmd []string
	if insp.Config != nil {
		ctrCfg = imageConfigOf(insp.Config)
		cmd = insp.Config.Cmd
	}
	mergeCommitConfig(&cfg, &ctrCfg)
	key, err := d.containers.SnapshotKey(o.Container)
	if err != nil {
		return "", err
	}
	if o.Pause && insp.State != nil && insp.State.Running && !insp.State.Paused {
		if err := d.containers.Pause(ctx, insp.ID); err == nil {
			defer func() { _ = d.containers.Unpause(context.WithoutCancel(ctx), insp.ID) }()
		}
	}
	id, err := d.images.Commit(ctx, image.CommitOptions{
		Parent: insp.Image, Snapshot: key, Config: cfg,
		Author: o.Author, Comment: o.Comment, CreatedBy: strings.Join(cmd, " "), Ref: o.Ref,
	})
	if err != nil {
		return "", err
	}
	attrs := map[string]string{"comment": o.Comment, "imageID": id.String(), "imageRef": o.Ref, "name": strings.TrimPrefix(insp.Name, "/")}
	d.publish("commit", insp.ID, attrs)
	return id.String(), nil
}

// imageConfigOf is the image part of a container config.
func imageConfigOf(c *apicontainer.Config) dockerspec.DockerOCIImageConfig {
	var out dockerspec.DockerOCIImageConfig
	out.User = c.User
	for p := range c.ExposedPorts {
		if out.ExposedPorts == nil {
			out.ExposedPorts = map[string]struct{}{}
		}
		out.ExposedPorts[p.String()] = struct{}{}
	}
	out.Env = append([]string(nil), c.Env...)
	out.Entrypoint = append([]string(nil), c.Entrypoint...)
	out.Cmd = append([]string(nil), c.Cmd...)
	out.Volumes = maps.Clone(c.Volumes)
	out.WorkingDir = c.WorkingDir
	out.Labels = maps.Clone(c.Labels)
	out.StopSignal = c.StopSignal
	out.ArgsEscaped = c.ArgsEscaped
	out.Healthcheck = c.Healthcheck
	out.OnBuild = append([]string(nil), c.OnBuild...)
	out.Shell = append([]string(nil), c.Shell...)
	return out
}

// mergeCommitConfig fills what the user's config leaves empty from the
// container's (dockerd's merge for commit): env by key, labels, ports and
// volumes as unions, the command only when neither entrypoint nor command
// was given.
func mergeCommitConfig(user, ctr *dockerspec.DockerOCIImageConfig) {
	if user.User == "" {
		user.User = ctr.User
	}
	for p := range ctr.ExposedPorts {
		if user.ExposedPorts == nil {
			user.ExposedPorts = map[string]struct{}{}
		}
		user.ExposedPorts[p] = struct{}{}
	}
	if len(user.Env) == 0 {
		user.Env = ctr.Env
	} else {
		set := map[string]bool{}
		for _, e := range user.Env {
			k, _, _ := strings.Cut(e, "=")
			set[k] = true
		}
		for _, e := range ctr.Env {
			if k, _, _ := strings.Cut(e, "="); !set[k] {
				user.Env = append(user.Env, e)
			}
		}
	}
	for k, v := range ctr.Labels {
		if user.Labels == nil {
			user.Labels = map[string]string{}
		}
		if _, ok := user.Labels[k]; !ok {
			user.Labels[k] = v
		}
	}
	if len(user.Entrypoint) == 0 {
		if len(user.Cmd) == 0 {
			user.Cmd = ctr.Cmd
		}
		if user.Entrypoint == nil {
			user.Entrypoint = ctr.Entrypoint
		}
	}
	if len(user.Entrypoint) == 0 && user.Entrypoint != nil {
		user.Entrypoint = nil
	}
	if user.Healthcheck == nil {
		user.Healthcheck = ctr.Healthcheck
	}
	if user.WorkingDir == "" {
		user.WorkingDir = ctr.WorkingDir
	}
	for v := range ctr.Volumes {
		if user.Volumes == nil {
			user.Volumes = map[string]struct{}{}
		}
		user.Volumes[v] = struct{}{}
	}
	if len(user.OnBuild) == 0 {
		user.OnBuild = ctr.OnBuild
	}
	if user.StopSignal == "" {
		user.StopSignal = ctr.StopSignal
	}
	if len(user.Shell) == 0 {
		user.Shell = ctr.Shell
	}
}

// containerChanges lists the container's filesystem changes (GET
// /containers/{id}/changes).
func (d *Daemon) containerChanges(ctx context.Context, name string) ([]apicontainer.FilesystemChange, error) {
	key, err := d.containers.SnapshotKey(name)
	if err != nil {
		return nil, err
	}
	ch, err := d.images.Changes(ctx, key)
	if err != nil {
		return nil, err
	}
	out := make([]apicontainer.FilesystemChange, 0, len(ch))
	for _, c := range ch {
		out = append(out, apicontainer.FilesystemChange{Path: c.Path, Kind: apicontainer.ChangeType(c.Kind)})
	}
	return out, nil
}
