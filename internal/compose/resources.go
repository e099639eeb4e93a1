package compose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// ensureNetworks creates the project's networks that do not exist yet
// (<project>_<key>, labelled with the project, the network key, the
// compose version and the config hash) and checks external ones exist.
// It returns the network IDs by key.
func (e *Engine) ensureNetworks(ctx context.Context, p *types.Project) (map[string]string, error) {
	ids := map[string]string{}
	keys := p.NetworkNames()
	sort.Strings(keys)
	for _, key := range keys {
		n := p.Networks[key]
		if bool(n.External) {
			id, err := e.externalNetwork(ctx, n.Name)
			if err != nil {
				return nil, err
			}
			ids[key] = id
			continue
		}
		id, err := e.ensureNetwork(ctx, p, key, n)
		if err != nil {
			return nil, err
		}
		ids[key] = id
	}
	return ids, nil
}

func (e *Engine) externalNetwork(ctx context.Context, name string) (string, error) {
	res, err := e.API.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("name", name)})
	if err != nil {
		return "", err
	}
	for _, n := range res.Items {
		if n.Name == name || n.ID == name {
			return n.ID, nil
		}
	}
	return "", fmt.Errorf("network %s declared as external, but could not be found", name)
}

func (e *Engine) ensureNetwork(ctx context.Context, p *types.Project, key string, n types.NetworkConfig) (string, error) {
	res, err := e.API.NetworkList(ctx, client.NetworkListOptions{Filters: make(client.Filters).Add("name", n.Name)})
	if err != nil {
		return "", err
	}
	for _, existing := range res.Items {
		if existing.Name != n.Name {
			continue
		}
		if existing.Labels[LabelNetwork] != key {
			e.Warnf("a network with name %s exists but was not created by compose.\nSet `external: true` to use an existing network", n.Name)
		}
		return existing.ID, nil
	}
	hash, err := NetworkHash(n)
	if err != nil {
		return "", err
	}
	labels := map[string]string{}
	for k, v := range n.Labels {
		labels[k] = v
	}
	labels[LabelNetwork] = key
	labels[LabelProject] = p.Name
	labels[LabelVersion] = e.Version
	labels[LabelConfigHash] = hash
	opts := client.NetworkCreateOptions{
		Driver: n.Driver, Options: n.DriverOpts, Internal: n.Internal, Attachable: n.Attachable,
		EnableIPv4: n.EnableIPv4, EnableIPv6: n.EnableIPv6, Labels: labels,
	}
	if n.Ipam.Driver != "" || len(n.Ipam.Config) > 0 {
		opts.IPAM = &network.IPAM{Driver: n.Ipam.Driver, Options: n.Ipam.Options}
		for _, pool := range n.Ipam.Config {
			c, err := ipamConfig(pool)
			if err != nil {
				return "", fmt.Errorf("network %s: %w", key, err)
			}
			opts.IPAM.Config = append(opts.IPAM.Config, c)
		}
	}
	resource := "Network " + n.Name
	e.event(resource, "Creating")
	created, err := e.API.NetworkCreate(ctx, n.Name, opts)
	if err != nil {
		e.event(resource, "Error")
		return "", fmt.Errorf("failed to create network %s: %w", n.Name, err)
	}
	e.event(resource, "Created")
	return created.ID, nil
}

func ipamConfig(pool *types.IPAMPool) (network.IPAMConfig, error) {
	var c network.IPAMConfig
	var err error
	if pool.Subnet != "" {
		if c.Subnet, err = netip.ParsePrefix(pool.Subnet); err != nil {
			return c, err
		}
	}
	if pool.IPRange != "" {
		if c.IPRange, err = netip.ParsePrefix(pool.IPRange); err != nil {
			return c, err
		}
	}
	if pool.Gateway != "" {
		if c.Gateway, err = netip.ParseAddr(pool.Gateway); err != nil {
			return c, err
		}
	}
	for k, v := range pool.AuxiliaryAddresses {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return c, err
		}
		if c.AuxAddress == nil {
			c.AuxAddress = map[string]netip.Addr{}
		}
		c.AuxAddress[k] = a
	}
	return c, nil
}

// ensureVolumes creates the project's named volumes (<project>_<key>)
// that do not exist, and checks external ones do.
func (e *Engine) ensureVolumes(ctx context.Context, p *types.Project) error {
	keys := p.VolumeNames()
	sort.Strings(keys)
	for _, key := range keys {
		v := p.Volumes[key]
		_, err := e.API.VolumeInspect(ctx, v.Name, client.VolumeInspectOptions{})
		if err == nil {
			continue
		}
		if !cerrdefs.IsNotFound(err) {
			return err
		}
		if bool(v.External) {
			return fmt.Errorf("external volume %q not found", v.Name)
		}
		hash, err := VolumeHash(v)
		if err != nil {
			return err
		}
		labels := map[string]string{}
		for k, val := range v.Labels {
			labels[k] = val
		}
		labels[LabelVolume] = key
		labels[LabelProject] = p.Name
		labels[LabelVersion] = e.Version
		labels[LabelConfigHash] = hash
		resource := fmt.Sprintf("Volume %q", v.Name)
		e.event(resource, "Creating")
		if _, err := e.API.VolumeCreate(ctx, client.VolumeCreateOptions{Name: v.Name, Driver: v.Driver, DriverOpts: v.DriverOpts, Labels: labels}); err != nil {
			e.event(resource, "Error")
			return err
		}
		e.event(resource, "Created")
	}
	return nil
}

// ImageOptions choose how `up`, `run` and `create` get their images.
type ImageOptions struct {
	Build   bool   // --build: build every service that has a build section
	NoBuild bool   // --no-build
	Pull    string // --pull: always, missing, never, build ("" = pull_policy)
	Quiet   bool
}

// ensureImages makes every service's image present: built when the
// service has a build section and --build, pull_policy: build or a
// missing image asks for it, otherwise pulled according to the pull
// policy. Each service gets the image ID in its com.docker.compose.image
// label, so a changed image recreates its containers.
func (e *Engine) ensureImages(ctx context.Context, p *types.Project, o ImageOptions) error {
	names := p.ServiceNames()
	// One inspect per distinct image, in parallel: an unchanged `up` costs
	// no more than this.
	ids := map[string]string{}
	var mu sync.Mutex
	var eg errgroup.Group
	for _, name := range names {
		ref := ImageName(p.Name, p.Services[name])
		mu.Lock()
		_, seen := ids[ref]
		ids[ref] = ""
		mu.Unlock()
		if seen {
			continue
		}
		eg.Go(func() error {
			img, err := e.API.ImageInspect(ctx, ref)
			if err != nil {
				if cerrdefs.IsNotFound(err) {
					return nil
				}
				return err
			}
			mu.Lock()
			ids[ref] = img.ID
			mu.Unlock()
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	var toBuild []string
	fetched := map[string]bool{}
	for _, name := range names {
		s := p.Services[name]
		ref := ImageName(p.Name, s)
		policy := s.PullPolicy
		if o.Pull != "" {
			policy = o.Pull
		}
		present := ids[ref] != ""
		if s.Build != nil && !o.NoBuild && (o.Build || policy == types.PullPolicyBuild || (!present && policy != types.PullPolicyAlways)) {
			toBuild = append(toBuild, name)
			fetched[ref] = true
			continue
		}
		switch policy {
		case types.PullPolicyAlways, types.PullPolicyRefresh:
		case types.PullPolicyNever:
			if !present {
				return fmt.Errorf("image %s not found and pull_policy is never", ref)
			}
			continue
		case types.PullPolicyBuild:
			return fmt.Errorf("service %q has pull_policy build but no build section", name)
		default: // missing, if_not_present
			if present {
				continue
			}
		}
		if s.Build != nil && !present && o.NoBuild {
			return fmt.Errorf("image %s not found and --no-build was set", ref)
		}
		if fetched[ref] {
			continue
		}
		fetched[ref] = true
		eg.Go(func() error { return e.pull(ctx, name, ref, s.Platform, o.Quiet) })
	}
	if err := eg.Wait(); err != nil {
		return err
	}
	if len(toBuild) > 0 {
		if err := e.Build(ctx, p, BuildOptions{Services: toBuild}); err != nil {
			return err
		}
	}
	for ref := range fetched {
		img, err := e.API.ImageInspect(ctx, ref)
		if err != nil {
			return err
		}
		ids[ref] = img.ID
	}
	for _, name := range names {
		s := p.Services[name]
		if s.CustomLabels == nil {
			s.CustomLabels = map[string]string{}
		}
		s.CustomLabels[LabelImage] = ids[ImageName(p.Name, s)]
		p.Services[name] = s
	}
	return nil
}

// pull pulls ref for service, reporting " <service> Pulling/Pulled".
func (e *Engine) pull(ctx context.Context, service, ref, platform string, quiet bool) error {
	if !quiet {
		e.event(service, "Pulling")
	}
	auth, err := e.auth(ref)
	if err != nil {
		return err
	}
	opts := client.ImagePullOptions{RegistryAuth: auth}
	if platform != "" {
		if pl, err := parsePlatform(platform); err == nil {
			opts.Platforms = append(opts.Platforms, pl)
		}
	}
	resp, err := e.API.ImagePull(ctx, ref, opts)
	if err != nil {
		if !quiet {
			e.event(service, "Error")
		}
		return err
	}
	if err := drainJSON(ctx, resp.JSONMessages(ctx), nil); err != nil {
		if !quiet {
			e.event(service, "Error")
		}
		return fmt.Errorf("pulling %s: %w", ref, err)
	}
	if !quiet {
		e.event(service, "Pulled")
	}
	return nil
}

// drainJSON consumes a progress stream, failing on its first error
// message; each message's stream text goes to out when set.
func drainJSON(ctx context.Context, msgs func(yield func(jsonstream.Message, error) bool), out io.Writer) error {
	for m, err := range msgs {
		if err != nil {
			return err
		}
		if m.Error != nil {
			return errors.New(m.Error.Message)
		}
		if out != nil && m.Stream != "" {
			_, _ = io.WriteString(out, m.Stream)
		}
	}
	return ctx.Err()
}

// parsePlatform parses os/arch[/variant].
func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.SplitN(s, "/", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q", s)
	}
	pl := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		pl.Variant = parts[2]
	}
	return pl, nil
}
