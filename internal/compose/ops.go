package compose

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// forEachContainer runs fn on cs in parallel and joins the errors.
func forEachContainer(cs []container.Summary, fn func(container.Summary) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(c)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// removeContainers stops and removes cs (in parallel).
func (e *Engine) removeContainers(ctx context.Context, cs []container.Summary, timeout *int, volumes bool) error {
	return forEachContainer(cs, func(c container.Summary) error {
		res := "Container " + containerName(c)
		if c.State == container.StateRunning || c.State == container.StatePaused || c.State == container.StateRestarting {
			e.event(res, "Stopping")
			if _, err := e.API.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: timeout}); err != nil && !cerrdefs.IsNotFound(err) {
				return err
			}
			e.event(res, "Stopped")
		}
		e.event(res, "Removing")
		if _, err := e.API.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: volumes}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
		e.event(res, "Removed")
		return nil
	})
}

// byService groups cs by their service label.
func byService(cs []container.Summary) map[string][]container.Summary {
	m := map[string][]container.Summary{}
	for _, c := range cs {
		m[c.Labels[LabelService]] = append(m[c.Labels[LabelService]], c)
	}
	return m
}

// inReverseOrder visits the project's services dependents first
// (independent ones in parallel), then the containers of services not in
// the project (orphans) if any.
func (e *Engine) inReverseOrder(ctx context.Context, p *types.Project, cs []container.Summary, fn func(context.Context, []container.Summary) error) error {
	groups := byService(cs)
	g, err := newGraph(p)
	if err != nil {
		return err
	}
	err = g.walkLimit(ctx, true, e.MaxConcurrency, func(ctx context.Context, svc string) error {
		return fn(ctx, groups[svc])
	})
	if err != nil {
		return err
	}
	var rest []container.Summary
	for svc, group := range groups {
		if _, ok := p.Services[svc]; !ok {
			rest = append(rest, group...)
		}
	}
	if len(rest) > 0 {
		return fn(ctx, rest)
	}
	return nil
}

// DownOptions are `compose down`'s flags.
type DownOptions struct {
	RemoveOrphans bool
	Volumes       bool   // -v: named (non-external) and anonymous volumes too
	Images        string // --rmi: "local" or "all"
	Timeout       *int
	Services      []string
}

// Down stops and removes the project's containers (dependents first),
// then its networks, and with -v its volumes, with --rmi its images.
// Containers of services no longer in the project are removed with
// --remove-orphans only.
func (e *Engine) Down(ctx context.Context, p *types.Project, o DownOptions) error {
	cs, err := e.listContainers(ctx, p.Name, oneoffInclude, true, o.Services...)
	if err != nil {
		return err
	}
	var keep []container.Summary
	if !o.RemoveOrphans && fromFile(p) {
		orph := orphans(p, cs)
		if len(orph) > 0 {
			isOrphan := map[string]bool{}
			var names []string
			for _, c := range orph {
				isOrphan[c.ID] = true
				names = append(names, containerName(c))
			}
			e.Warnf("Found orphan containers (%s) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", "["+strings.Join(names, " ")+"]")
			for _, c := range cs {
				if !isOrphan[c.ID] {
					keep = append(keep, c)
				}
			}
			cs = keep
		}
	}
	err = e.inReverseOrder(ctx, p, cs, func(ctx context.Context, group []container.Summary) error {
		return e.removeContainers(ctx, group, o.Timeout, o.Volumes)
	})
	if err != nil {
		return err
	}
	if len(o.Services) > 0 {
		return nil
	}
	if err := e.removeNetworks(ctx, p); err != nil {
		return err
	}
	if o.Volumes {
		if err := e.removeVolumes(ctx, p); err != nil {
			return err
		}
	}
	if o.Images != "" {
		return e.removeImages(ctx, p, o.Images)
	}
	return nil
}

// removeNetworks removes the project's non-external networks: those the
// file declares or, when there is no file (down -p NAME), those labelled
// with the project.
func (e *Engine) removeNetworks(ctx context.Context, p *types.Project) error {
	var names []string
	if fromFile(p) {
		for _, n := range p.Networks {
			if !bool(n.External) {
				names = append(names, n.Name)
			}
		}
	} else {
		res, err := e.API.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("label", LabelProject+"="+p.Name)})
		if cerrdefs.IsNotFound(err) {
			return nil // an engine without the networks API has none to remove
		}
		if err != nil {
			return err
		}
		for _, n := range res.Items {
			names = append(names, n.Name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		r := "Network " + name
		if _, err := e.API.NetworkInspect(ctx, name, client.NetworkInspectOptions{}); cerrdefs.IsNotFound(err) {
			continue
		}
		e.event(r, "Removing")
		if _, err := e.API.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil {
			if cerrdefs.IsNotFound(err) {
				continue
			}
			e.event(r, "Error")
			return err
		}
		e.event(r, "Removed")
	}
	return nil
}

// fromFile tells a project loaded from compose files from the empty one
// commands use when only a project name is known.
func fromFile(p *types.Project) bool { return len(p.ComposeFiles) > 0 }

// removeVolumes removes the project's named, non-external volumes (by
// declaration, or by label without a file).
func (e *Engine) removeVolumes(ctx context.Context, p *types.Project) error {
	var names []string
	if fromFile(p) {
		for _, v := range p.Volumes {
			if !bool(v.External) {
				names = append(names, v.Name)
			}
		}
	} else {
		res, err := e.API.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("label", LabelProject+"="+p.Name)})
		if cerrdefs.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, v := range res.Items {
			names = append(names, v.Name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		r := fmt.Sprintf("Volume %s", name)
		e.event(r, "Removing")
		if _, err := e.API.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true}); err != nil {
			if cerrdefs.IsNotFound(err) {
				continue
			}
			e.event(r, "Error")
			return err
		}
		e.event(r, "Removed")
	}
	return nil
}

// removeImages is --rmi: "local" removes the images built for services
// without an image: name, "all" every image the services use.
func (e *Engine) removeImages(ctx context.Context, p *types.Project, mode string) error {
	if mode != "local" && mode != "all" {
		return fmt.Errorf("invalid --rmi value %q: must be \"local\" or \"all\"", mode)
	}
	seen := map[string]bool{}
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if mode == "local" && s.Image != "" {
			continue
		}
		ref := ImageName(p.Name, s)
		if seen[ref] {
			continue
		}
		seen[ref] = true
		r := "Image " + ref
		e.event(r, "Removing")
		if _, err := e.API.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil {
			if cerrdefs.IsNotFound(err) {
				continue
			}
			e.event(r, "Error")
			return err
		}
		e.event(r, "Removed")
	}
	return nil
}

// Stop stops the services' containers, dependents first.
func (e *Engine) Stop(ctx context.Context, p *types.Project, services []string, timeout *int) error {
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, false, services...)
	if err != nil {
		return err
	}
	return e.inReverseOrder(ctx, p, cs, func(ctx context.Context, group []container.Summary) error {
		return forEachContainer(group, func(c container.Summary) error {
			return e.step(c, "Stopping", "Stopped", func() error {
				_, err := e.API.ContainerStop(ctx, c.ID, client.ContainerStopOptions{Timeout: timeout})
				return err
			})
		})
	})
}

// Start starts the services' existing containers in dependency order,
// honouring depends_on conditions.
func (e *Engine) Start(ctx context.Context, p *types.Project, services []string) error {
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, true, services...)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return errors.New("service(s) not found or no containers to start")
	}
	groups := byService(cs)
	g, err := newGraph(p)
	if err != nil {
		return err
	}
	lookup := func(svc string) []container.Summary { return groups[svc] }
	return g.walkLimit(ctx, false, e.MaxConcurrency, func(ctx context.Context, svc string) error {
		group := groups[svc]
		if len(group) == 0 {
			return nil
		}
		if err := e.waitDependencies(ctx, p, p.Services[svc], lookup); err != nil {
			return err
		}
		var toStart []container.Summary
		for _, c := range group {
			if c.State != container.StateRunning {
				toStart = append(toStart, c)
			}
		}
		return e.startContainers(ctx, toStart)
	})
}

// Restart restarts the services' containers in dependency order; unless
// noDeps, services that depend on a restarted one with restart: true are
// restarted after it.
func (e *Engine) Restart(ctx context.Context, p *types.Project, services []string, timeout *int, noDeps bool) error {
	if len(services) > 0 && !noDeps {
		services = withRestartDependents(p, services)
	}
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, true, services...)
	if err != nil {
		return err
	}
	groups := byService(cs)
	g, err := newGraph(p)
	if err != nil {
		return err
	}
	return g.walkLimit(ctx, false, e.MaxConcurrency, func(ctx context.Context, svc string) error {
		return forEachContainer(groups[svc], func(c container.Summary) error {
			return e.step(c, "Restarting", "Started", func() error {
				_, err := e.API.ContainerRestart(ctx, c.ID, client.ContainerRestartOptions{Timeout: timeout})
				return err
			})
		})
	})
}

// withRestartDependents adds to services, transitively, the services
// depending on one of them with restart: true.
func withRestartDependents(p *types.Project, services []string) []string {
	in := map[string]bool{}
	for _, s := range services {
		in[s] = true
	}
	for changed := true; changed; {
		changed = false
		for name, s := range p.Services {
			if in[name] {
				continue
			}
			for dep, d := range s.DependsOn {
				if d.Restart && in[dep] {
					in[name] = true
					services = append(services, name)
					changed = true
					break
				}
			}
		}
	}
	return services
}

// Kill sends signal to the services' running containers.
func (e *Engine) Kill(ctx context.Context, p *types.Project, services []string, signal string, removeOrphans bool) error {
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, false, services...)
	if err != nil {
		return err
	}
	if !removeOrphans && fromFile(p) {
		var keep []container.Summary
		orph := map[string]bool{}
		for _, c := range orphans(p, cs) {
			orph[c.ID] = true
		}
		for _, c := range cs {
			if !orph[c.ID] {
				keep = append(keep, c)
			}
		}
		cs = keep
	}
	if len(cs) == 0 {
		return errors.New("no container to kill")
	}
	return forEachContainer(cs, func(c container.Summary) error {
		return e.step(c, "Killing", "Killed", func() error {
			_, err := e.API.ContainerKill(ctx, c.ID, client.ContainerKillOptions{Signal: signal})
			return err
		})
	})
}

// Remove removes the services' stopped containers (running ones too
// with stop, after stopping them). It returns the containers concerned
// so the CLI can ask for confirmation first; with dryRun nothing is
// removed.
func (e *Engine) Remove(ctx context.Context, p *types.Project, services []string, stop, volumes, dryRun bool) ([]container.Summary, error) {
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, true, services...)
	if err != nil {
		return nil, err
	}
	var targets []container.Summary
	for _, c := range cs {
		if c.State == container.StateRunning && !stop {
			continue
		}
		targets = append(targets, c)
	}
	if dryRun || len(targets) == 0 {
		return targets, nil
	}
	return targets, e.removeContainers(ctx, targets, nil, volumes)
}

// Pause pauses the services' running containers.
func (e *Engine) Pause(ctx context.Context, p *types.Project, services []string) error {
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, false, services...)
	if err != nil {
		return err
	}
	return forEachContainer(cs, func(c container.Summary) error {
		return e.step(c, "Pausing", "Paused", func() error {
			_, err := e.API.ContainerPause(ctx, c.ID, client.ContainerPauseOptions{})
			return err
		})
	})
}

// Unpause unpauses the services' paused containers.
func (e *Engine) Unpause(ctx context.Context, p *types.Project, services []string) error {
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, false, services...)
	if err != nil {
		return err
	}
	return forEachContainer(cs, func(c container.Summary) error {
		if c.State != container.StatePaused {
			return nil
		}
		return e.step(c, "Unpausing", "Unpaused", func() error {
			_, err := e.API.ContainerUnpause(ctx, c.ID, client.ContainerUnpauseOptions{})
			return err
		})
	})
}

// Project summarises one project found on the engine (compose ls).
type Project struct {
	Name        string
	Status      string // e.g. "running(2), exited(1)"
	ConfigFiles string
	Running     int
}

// Projects lists the projects that have containers on the engine, from
// their labels; all includes projects whose containers are all stopped.
func (e *Engine) Projects(ctx context.Context, all bool) ([]Project, error) {
	res, err := e.API.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", LabelProject)})
	if err != nil {
		return nil, err
	}
	type acc struct {
		states map[string]int
		files  string
	}
	m := map[string]*acc{}
	for _, c := range res.Items {
		name := c.Labels[LabelProject]
		a := m[name]
		if a == nil {
			a = &acc{states: map[string]int{}}
			m[name] = a
		}
		a.states[string(c.State)]++
		if a.files == "" {
			a.files = c.Labels[LabelConfigFiles]
		}
	}
	var out []Project
	for name, a := range m {
		if !all && a.states["running"] == 0 {
			continue
		}
		var parts []string
		states := make([]string, 0, len(a.states))
		for s := range a.states {
			states = append(states, s)
		}
		sort.Strings(states)
		for _, s := range states {
			parts = append(parts, fmt.Sprintf("%s(%d)", s, a.states[s]))
		}
		out = append(out, Project{Name: name, Status: strings.Join(parts, ", "), ConfigFiles: a.files, Running: a.states["running"]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// PullOptions are `compose pull`'s flags.
type PullOptions struct {
	Quiet           bool
	IgnoreFailures  bool
	IgnoreBuildable bool
	IncludeDeps     bool
}

// Pull pulls the images of services (all when empty) in parallel.
// Services with a build section are pulled only if they name an image
// and IgnoreBuildable is not set; a build-only image that cannot be pulled
// is skipped.
func (e *Engine) Pull(ctx context.Context, p *types.Project, services []string, o PullOptions) error {
	ss, err := servicesOf(p, services)
	if err != nil {
		return err
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for _, s := range ss {
		if s.Build != nil && (o.IgnoreBuildable || s.Image == "") {
			e.event(s.Name, "Skipped - No image to be pulled")
			continue
		}
		if s.Image == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := e.pull(ctx, s.Name, s.Image, s.Platform, o.Quiet)
			if err != nil && s.Build == nil && !o.IgnoreFailures {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			} else if err != nil {
				e.Warnf("%s: %v", s.Name, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Push pushes the images of services that have a build section or an
// image name (all when services is empty).
func (e *Engine) Push(ctx context.Context, p *types.Project, services []string, quiet, ignoreFailures bool) error {
	ss, err := servicesOf(p, services)
	if err != nil {
		return err
	}
	for _, s := range ss {
		if s.Image == "" {
			if s.Build == nil {
				continue
			}
		}
		refs := []string{ImageName(p.Name, s)}
		if s.Build != nil {
			refs = append(refs, s.Build.Tags...)
		}
		for _, ref := range refs {
			if !quiet {
				e.event(s.Name, "Pushing")
			}
			auth, err := e.auth(ref)
			if err != nil {
				return err
			}
			resp, err := e.API.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: auth})
			if err == nil {
				err = drainJSON(ctx, resp.JSONMessages(ctx), nil)
			}
			if err != nil {
				if ignoreFailures {
					e.Warnf("%s: %v", s.Name, err)
					continue
				}
				return fmt.Errorf("pushing %s: %w", ref, err)
			}
			if !quiet {
				e.event(s.Name, "Pushed")
			}
		}
	}
	return nil
}

// ServiceContainer finds replica index of service, running (for exec).
func (e *Engine) ServiceContainer(ctx context.Context, p *types.Project, service string, index int) (container.Summary, error) {
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, false, service)
	if err != nil {
		return container.Summary{}, err
	}
	for _, c := range cs {
		if number(c) == index || (index == 0 && len(cs) > 0) {
			return c, nil
		}
	}
	if index > 1 {
		return container.Summary{}, fmt.Errorf("service %q is not running container #%d", service, index)
	}
	return container.Summary{}, fmt.Errorf("service %q is not running", service)
}

// ProjectContainers lists the containers of the project (one-off ones
// too when oneoffs), stopped ones when all.
func (e *Engine) ProjectContainers(ctx context.Context, project string, all, oneoffs bool, services ...string) ([]container.Summary, error) {
	which := oneoffExclude
	if oneoffs {
		which = oneoffInclude
	}
	return e.listContainers(ctx, project, which, all, services...)
}

// step reports "Container NAME <doing>", runs op and, when it succeeds,
// reports "<done>" (Compose's progress lines for one container).
func (e *Engine) step(c container.Summary, doing, done string, op func() error) error {
	r := "Container " + containerName(c)
	e.event(r, doing)
	if err := op(); err != nil {
		return err
	}
	e.event(r, done)
	return nil
}
