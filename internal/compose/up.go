package compose

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
)

// Recreate policies.
const (
	RecreateDiverged = "diverged" // only containers whose config hash or image changed
	RecreateForce    = "force"
	RecreateNever    = "never"
)

// UpOptions are the flags of `compose up` (and create/run for the
// dependencies).
type UpOptions struct {
	Services []string // the services named on the command line (all when empty)
	Images   ImageOptions
	// Recreate applies to the named services, RecreateDependencies to the
	// services they depend on.
	Recreate             string
	RecreateDependencies string
	RemoveOrphans        bool
	IgnoreOrphans        bool
	Timeout              *int // stop timeout for recreated/scaled-down containers
	NoStart              bool
	// Wait waits for the services to be running, or healthy when they have a
	// healthcheck, before returning (at most WaitTimeout when set).
	Wait        bool
	WaitTimeout time.Duration
}

// Up creates and starts p's services in dependency order, independent
// services in parallel: networks and volumes first, images pulled or
// built, then for each service its containers converged (created,
// recreated when their config hash or image changed, scaled up or down)
// and started once the conditions of its depends_on hold.
func (e *Engine) Up(ctx context.Context, p *types.Project, o UpOptions) error {
	if o.Recreate == "" {
		o.Recreate = RecreateDiverged
	}
	if o.RecreateDependencies == "" {
		o.RecreateDependencies = RecreateDiverged
	}
	if err := checkContainerNames(p); err != nil {
		return err
	}
	g, err := newGraph(p)
	if err != nil {
		return err
	}
	if err := e.ensureImages(ctx, p, o.Images); err != nil {
		return err
	}
	if _, err := e.ensureNetworks(ctx, p); err != nil {
		return err
	}
	if err := e.ensureVolumes(ctx, p); err != nil {
		return err
	}
	observed, err := e.listContainers(ctx, p.Name, oneoffInclude, true)
	if err != nil {
		return err
	}
	if err := e.handleOrphans(ctx, p, observed, o); err != nil {
		return err
	}
	c := &convergence{e: e, p: p, o: o, state: map[string][]container.Summary{}, recreated: map[string]bool{}, toStart: map[string][]container.Summary{}}
	for _, ctr := range observed {
		if ctr.Labels[LabelOneoff] == "True" {
			continue
		}
		svc := ctr.Labels[LabelService]
		c.state[svc] = append(c.state[svc], ctr)
	}
	named := map[string]bool{}
	for _, s := range o.Services {
		named[s] = true
	}
	// As Docker Compose: every container is created (or recreated) first,
	// in dependency order; then, in dependency order again, each service
	// waits for its depends_on conditions and is started.
	err = g.walkLimit(ctx, false, e.MaxConcurrency, func(ctx context.Context, name string) error {
		policy := o.RecreateDependencies
		if len(o.Services) == 0 || named[name] {
			policy = o.Recreate
		}
		return c.service(ctx, name, policy)
	})
	if err != nil {
		return err
	}
	if !o.NoStart {
		err = g.walkLimit(ctx, false, e.MaxConcurrency, func(ctx context.Context, name string) error {
			return c.start(ctx, name)
		})
		if err != nil {
			return err
		}
	}
	if o.Wait && !o.NoStart {
		return e.waitHealthy(ctx, p, o.Services, o.WaitTimeout)
	}
	return nil
}

func checkContainerNames(p *types.Project) error {
	seen := map[string]string{}
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.ContainerName == "" {
			continue
		}
		if s.GetScale() > 1 {
			return fmt.Errorf("WARNING: The %q service is using the custom container name %q. Docker requires each container to have a unique name. Remove the custom name to scale the service", name, s.ContainerName)
		}
		if other, dup := seen[s.ContainerName]; dup {
			return fmt.Errorf("services.%s: container name %q is already in use by service %s", name, s.ContainerName, other)
		}
		seen[s.ContainerName] = name
	}
	return nil
}

// orphans are the project's containers whose service is no longer in the
// project (neither enabled nor disabled by a profile).
func orphans(p *types.Project, cs []container.Summary) []container.Summary {
	var out []container.Summary
	for _, c := range cs {
		svc := c.Labels[LabelService]
		if _, ok := p.Services[svc]; ok {
			continue
		}
		if _, ok := p.DisabledServices[svc]; ok {
			continue
		}
		out = append(out, c)
	}
	return out
}

func (e *Engine) handleOrphans(ctx context.Context, p *types.Project, observed []container.Summary, o UpOptions) error {
	orph := orphans(p, observed)
	if len(orph) == 0 || o.IgnoreOrphans {
		return nil
	}
	if !o.RemoveOrphans {
		var names []string
		for _, c := range orph {
			names = append(names, containerName(c))
		}
		e.Warnf("Found orphan containers (%s) for this project. If you removed or renamed this service in your compose file, you can run this command with the --remove-orphans flag to clean it up.", "["+strings.Join(names, " ")+"]")
		return nil
	}
	return e.removeContainers(ctx, orph, o.Timeout, false)
}

// convergence is one `up`: the observed containers of each service,
// updated as services converge so later ones can refer to them.
type convergence struct {
	e         *Engine
	p         *types.Project
	o         UpOptions
	mu        sync.Mutex
	state     map[string][]container.Summary
	recreated map[string]bool
	// toStart are, by service, the containers the create pass left for
	// the start pass to start.
	toStart map[string][]container.Summary
}

func (c *convergence) containers(service string) []container.Summary {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]container.Summary(nil), c.state[service]...)
}

// service converges one service and starts it.
func (c *convergence) service(ctx context.Context, name, policy string) error {
	s := c.p.Services[name]
	if err := c.resolveReferences(&s); err != nil {
		return err
	}
	want := s.GetScale()
	hash, err := ServiceHash(s)
	if err != nil {
		return err
	}
	existing := c.containers(name)
	nets := serviceNetworkNames(c.p, s)
	// Up-to-date containers first, lowest numbers first, so scaling down
	// removes obsolete and highest-numbered replicas.
	sort.SliceStable(existing, func(i, j int) bool {
		oi, oj := mustRecreate(s, hash, existing[i], policy, nets...), mustRecreate(s, hash, existing[j], policy, nets...)
		if oi != oj {
			return !oi
		}
		return number(existing[i]) < number(existing[j])
	})
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		errs    []error
		updated []container.Summary
		toStart []container.Summary
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for i, ctr := range existing {
		if i >= want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.e.removeContainers(ctx, []container.Summary{ctr}, c.o.Timeout, false); err != nil {
					fail(err)
				}
			}()
			continue
		}
		if mustRecreate(s, hash, ctr, policy, nets...) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				created, err := c.recreate(ctx, s, ctr)
				if err != nil {
					fail(err)
					return
				}
				mu.Lock()
				updated = append(updated, created)
				toStart = append(toStart, created)
				mu.Unlock()
			}()
			c.mu.Lock()
			c.recreated[name] = true
			c.mu.Unlock()
			continue
		}
		mu.Lock()
		updated = append(updated, ctr)
		if ctr.State != container.StateRunning {
			toStart = append(toStart, ctr)
		} else {
			c.e.event("Container "+containerName(ctr), "Running")
		}
		mu.Unlock()
	}
	next := 1
	for _, ctr := range existing {
		if n := number(ctr); n >= next {
			next = n + 1
		}
	}
	for i := len(existing); i < want; i++ {
		n := next + i - len(existing)
		wg.Add(1)
		go func() {
			defer wg.Done()
			created, err := c.e.createContainer(ctx, c.p, s, CreateOptions{Number: n, UseNetworkAliases: true}, true)
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			updated = append(updated, created)
			toStart = append(toStart, created)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	sortContainers(updated)
	c.mu.Lock()
	c.state[name] = updated
	c.toStart[name] = toStart
	c.mu.Unlock()
	return nil
}

// start is the start pass for one service: once its depends_on
// conditions hold, it restarts it if a restart: true dependency was
// recreated and starts the containers the create pass left stopped.
func (c *convergence) start(ctx context.Context, name string) error {
	s := c.p.Services[name]
	if err := c.e.waitDependencies(ctx, c.p, s, c.containers); err != nil {
		return err
	}
	if err := c.restartDependents(ctx, s); err != nil {
		return err
	}
	c.mu.Lock()
	toStart := c.toStart[name]
	c.mu.Unlock()
	return c.e.startContainers(ctx, toStart)
}

// restartDependents restarts the running containers of services that
// depend on s with restart: true when one of s's dependencies... was
// recreated in this run: Compose restarts a dependent when the service it
// depends on with restart: true is recreated.
func (c *convergence) restartDependents(ctx context.Context, s types.ServiceConfig) error {
	c.mu.Lock()
	var deps []string
	for dep, d := range s.DependsOn {
		if d.Restart && c.recreated[dep] && !c.recreated[s.Name] {
			deps = append(deps, dep)
		}
	}
	c.mu.Unlock()
	if len(deps) == 0 {
		return nil
	}
	for _, ctr := range c.containers(s.Name) {
		if ctr.State != container.StateRunning {
			continue
		}
		res := "Container " + containerName(ctr)
		c.e.event(res, "Restarting")
		if _, err := c.e.API.ContainerRestart(ctx, ctr.ID, client.ContainerRestartOptions{Timeout: c.o.Timeout}); err != nil {
			return err
		}
		c.e.event(res, "Started")
	}
	return nil
}

// serviceNetworkNames are the engine names of the networks s joins.
func serviceNetworkNames(p *types.Project, s types.ServiceConfig) []string {
	if s.NetworkMode != "" || len(p.Networks) == 0 {
		return nil
	}
	keys := []string{"default"}
	if len(s.Networks) > 0 {
		keys = s.NetworksByPriority()
	}
	var out []string
	for _, k := range keys {
		if n, ok := p.Networks[k]; ok && !bool(n.External) {
			out = append(out, n.Name)
		}
	}
	return out
}

func number(c container.Summary) int {
	n, _ := strconv.Atoi(c.Labels[LabelContainerNumber])
	return n
}

// mustRecreate reports whether ctr no longer matches service s (whose
// hash is hash) under policy.
func mustRecreate(s types.ServiceConfig, hash string, ctr container.Summary, policy string, expectedNetworks ...string) bool {
	switch policy {
	case RecreateNever:
		return false
	case RecreateForce:
		return true
	}
	if ctr.Labels[LabelConfigHash] != hash {
		return true
	}
	if img := s.CustomLabels[LabelImage]; img != "" && ctr.Labels[LabelImage] != img {
		return true
	}
	// A running container missing one of its networks (removed and
	// recreated behind its back) is recreated too.
	if ctr.State == container.StateRunning && ctr.NetworkSettings != nil && len(expectedNetworks) > 0 {
		for _, n := range expectedNetworks {
			if _, ok := ctr.NetworkSettings.Networks[n]; !ok {
				return true
			}
		}
	}
	return false
}

// resolveReferences turns service: references (network_mode, ipc, pid,
// volumes_from) into container: references to the first container of the
// referenced service, as the engine only knows containers.
func (c *convergence) resolveReferences(s *types.ServiceConfig) error {
	first := func(svc, what string) (string, error) {
		cs := c.containers(svc)
		if len(cs) == 0 {
			return "", fmt.Errorf("cannot share %s with service %s: container missing", what, svc)
		}
		return cs[0].ID, nil
	}
	for _, f := range []struct {
		field *string
		what  string
	}{{&s.NetworkMode, "network namespace"}, {&s.Ipc, "IPC namespace"}, {&s.Pid, "PID namespace"}} {
		if svc, ok := strings.CutPrefix(*f.field, types.ServicePrefix); ok {
			id, err := first(svc, f.what)
			if err != nil {
				return err
			}
			*f.field = types.ContainerPrefix + id
		}
	}
	vf := make([]string, 0, len(s.VolumesFrom))
	for _, v := range s.VolumesFrom {
		if rest, ok := strings.CutPrefix(v, types.ContainerPrefix); ok {
			vf = append(vf, rest)
			continue
		}
		svc, mode, _ := strings.Cut(v, ":")
		id, err := first(svc, "volume")
		if err != nil {
			return err
		}
		if mode != "" {
			id += ":" + mode
		}
		vf = append(vf, id)
	}
	if len(vf) > 0 {
		s.VolumesFrom = vf
	}
	return nil
}

// createContainer creates one container of s (and copies its inline
// secrets and configs in), reporting Creating/Created when report.
func (e *Engine) createContainer(ctx context.Context, p *types.Project, s types.ServiceConfig, o CreateOptions, report bool) (container.Summary, error) {
	req, err := ContainerCreateOptions(p, s, o)
	if err != nil {
		return container.Summary{}, err
	}
	res := "Container " + req.Name
	if report {
		e.event(res, "Creating")
	}
	// Engines before API 1.44 take one network at create; the others are
	// connected before the container starts.
	var later map[string]*network.EndpointSettings
	if nc := req.NetworkingConfig; nc != nil && len(nc.EndpointsConfig) > 1 && versions.LessThan(e.API.ClientVersion(), "1.44") {
		primary := string(req.HostConfig.NetworkMode)
		later = map[string]*network.EndpointSettings{}
		for name, ep := range nc.EndpointsConfig {
			if name != primary {
				later[name] = ep
			}
		}
		req.NetworkingConfig = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{primary: nc.EndpointsConfig[primary]}}
	}
	created, err := e.API.ContainerCreate(ctx, req)
	if err != nil {
		e.event(res, "Error")
		return container.Summary{}, err
	}
	for name, ep := range later {
		if _, err := e.API.NetworkConnect(ctx, name, client.NetworkConnectOptions{Container: created.ID, EndpointConfig: ep}); err != nil {
			return container.Summary{}, fmt.Errorf("connecting %s to network %s: %w", req.Name, name, err)
		}
	}
	if err := e.copyInlineFiles(ctx, p, s, created.ID); err != nil {
		return container.Summary{}, err
	}
	if report {
		e.event(res, "Created")
	}
	// What the rest of the run needs to know of the new container, without
	// another round trip.
	return container.Summary{
		ID: created.ID, Names: []string{"/" + req.Name}, Image: req.Config.Image,
		Labels: req.Config.Labels, State: container.StateCreated,
	}, nil
}

// recreate replaces old with a new container of the same number: old is
// stopped and renamed out of the way, the new one created, old removed.
func (c *convergence) recreate(ctx context.Context, s types.ServiceConfig, old container.Summary) (container.Summary, error) {
	name := containerName(old)
	res := "Container " + name
	c.e.event(res, "Recreate")
	if _, err := c.e.API.ContainerStop(ctx, old.ID, client.ContainerStopOptions{Timeout: c.stopTimeout(s)}); err != nil && !cerrdefs.IsNotFound(err) {
		return container.Summary{}, err
	}
	tmp := old.ID[:12] + "_" + name
	if _, err := c.e.API.ContainerRename(ctx, old.ID, client.ContainerRenameOptions{NewName: tmp}); err != nil {
		return container.Summary{}, err
	}
	// The create is reported as "Recreated", not "Creating/Created".
	created, err := c.e.createContainer(ctx, c.p, s, CreateOptions{
		Number: number(old), Name: nameForNumber(c.p.Name, s, number(old), name), UseNetworkAliases: true,
		ExtraLabels: map[string]string{LabelReplace: old.ID}, Inherit: old.Mounts,
	}, false)
	if err != nil {
		return container.Summary{}, err
	}
	if _, err := c.e.API.ContainerRemove(ctx, old.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return container.Summary{}, err
	}
	c.e.event(res, "Recreated")
	return created, nil
}

func nameForNumber(project string, s types.ServiceConfig, n int, current string) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	if n == 0 {
		return current
	}
	return ContainerName(project, s, n)
}

func (c *convergence) stopTimeout(s types.ServiceConfig) *int {
	if c.o.Timeout != nil {
		return c.o.Timeout
	}
	return stopTimeout(s.StopGracePeriod)
}

// startContainers starts cs (in parallel), reporting Starting/Started.
func (e *Engine) startContainers(ctx context.Context, cs []container.Summary) error {
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, ctr := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := "Container " + containerName(ctr)
			e.event(res, "Starting")
			if _, err := e.API.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
				e.event(res, "Error")
				errs[i] = err
				return
			}
			e.event(res, "Started")
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// newSlug is the random identity of a one-off container.
func newSlug() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
