package compose

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
)

// RunOptions are `compose run`'s flags.
type RunOptions struct {
	Service     string
	Command     []string // replaces the service command when not empty
	Entrypoint  []string // replaces the entrypoint when not nil
	Env         []string // -e KEY=VAL or KEY
	Labels      map[string]string
	Name        string
	User        string
	WorkingDir  string
	Tty         bool
	Interactive bool
	AutoRemove  bool // --rm
	// ServicePorts publishes the service's ports (they are not by default);
	// Publish adds -p mappings.
	ServicePorts bool
	Publish      []types.ServicePortConfig
	Volumes      []types.ServiceVolumeConfig
	NoDeps       bool
	UseAliases   bool
	Images       ImageOptions
}

// RunCreate prepares a one-off container of a service, as `compose run`
// does: dependencies are brought up (unless NoDeps), then the container
// <project>-<service>-run-<slug> is created with the oneoff labels, the
// run's overrides and no published ports unless asked. It returns the
// container; the caller attaches, starts and waits for it.
func (e *Engine) RunCreate(ctx context.Context, p *types.Project, o RunOptions) (container.Summary, error) {
	s, ok := p.Services[o.Service]
	if !ok {
		return container.Summary{}, serviceNotFound(o.Service)
	}
	if !o.NoDeps {
		deps := dependencyClosure(p, o.Service)
		if len(deps) > 0 {
			dp, err := p.WithSelectedServices(deps)
			if err != nil {
				return container.Summary{}, err
			}
			if err := e.Up(ctx, dp, UpOptions{Services: deps, Images: o.Images, IgnoreOrphans: true}); err != nil {
				return container.Summary{}, err
			}
		}
	}
	one, err := p.WithSelectedServices([]string{o.Service}, types.IgnoreDependencies)
	if err != nil {
		return container.Summary{}, err
	}
	if err := e.ensureImages(ctx, one, o.Images); err != nil {
		return container.Summary{}, err
	}
	s = one.Services[o.Service]
	s.CustomLabels = copyLabels(p.Services[o.Service].CustomLabels, one.Services[o.Service].CustomLabels)
	if len(o.Command) > 0 {
		s.Command = o.Command
	}
	if o.Entrypoint != nil {
		s.Entrypoint = o.Entrypoint
	}
	if o.User != "" {
		s.User = o.User
	}
	if o.WorkingDir != "" {
		s.WorkingDir = o.WorkingDir
	}
	s.Tty = o.Tty
	s.StdinOpen = o.Interactive
	if !o.ServicePorts {
		s.Ports = nil
	}
	s.Ports = append(s.Ports, o.Publish...)
	s.Volumes = append(s.Volumes, o.Volumes...)
	s.Restart = ""
	if s.Deploy != nil {
		d := *s.Deploy
		d.RestartPolicy = nil
		s.Deploy = &d
	}
	env := types.MappingWithEquals{}
	for k, v := range s.Environment {
		env[k] = v
	}
	for _, kv := range o.Env {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			env[k] = &v
		} else {
			env[k] = nil
		}
	}
	s.Environment = env
	c := &convergence{e: e, p: p, state: map[string][]container.Summary{}}
	observed, err := e.listContainers(ctx, p.Name, oneoffExclude, true)
	if err != nil {
		return container.Summary{}, err
	}
	for _, ctr := range observed {
		c.state[ctr.Labels[LabelService]] = append(c.state[ctr.Labels[LabelService]], ctr)
	}
	if err := c.resolveReferences(&s); err != nil {
		return container.Summary{}, err
	}
	slug := newSlug()
	name := o.Name
	if name == "" {
		name = OneoffContainerName(p.Name, o.Service, slug)
	}
	return e.createContainer(ctx, p, s, CreateOptions{
		Name: name, Oneoff: true, Slug: slug, AutoRemove: o.AutoRemove, AttachStdin: o.Interactive,
		UseNetworkAliases: o.UseAliases, ExtraLabels: o.Labels,
	}, false)
}

func copyLabels(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// dependencyClosure lists the services service depends on, transitively.
func dependencyClosure(p *types.Project, service string) []string {
	seen := map[string]bool{}
	var out []string
	var visit func(string)
	visit = func(n string) {
		s, ok := p.Services[n]
		if !ok {
			return
		}
		for _, d := range serviceDependencies(s) {
			if !seen[d] {
				seen[d] = true
				if _, ok := p.Services[d]; ok {
					out = append(out, d)
				}
				visit(d)
			}
		}
	}
	visit(service)
	return out
}

// ParsePublish parses a `run -p` mapping ([[ip:]host:]container[/proto]).
func ParsePublish(spec string) (types.ServicePortConfig, error) {
	var pc types.ServicePortConfig
	rest, proto, _ := strings.Cut(spec, "/")
	pc.Protocol = orTCP(proto)
	parts := strings.Split(rest, ":")
	var target string
	switch len(parts) {
	case 1:
		target = parts[0]
	case 2:
		pc.Published, target = parts[0], parts[1]
	case 3:
		pc.HostIP, pc.Published, target = parts[0], parts[1], parts[2]
	default:
		return pc, fmt.Errorf("invalid port mapping %q", spec)
	}
	n, err := strconv.ParseUint(target, 10, 16)
	if err != nil {
		return pc, fmt.Errorf("invalid containerPort: %s", target)
	}
	pc.Target = uint32(n)
	pc.Mode = "ingress"
	return pc, nil
}
