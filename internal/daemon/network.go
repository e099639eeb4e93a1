package daemon

import (
	"context"
	"log/slog"
	"net/netip"

	apievents "github.com/moby/moby/api/types/events"
	apinetwork "github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/api/filters"
	netrouter "github.com/berth-dev/berth/internal/api/router/network"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
)

// newNetworks builds the network service from the daemon's bridge, bip,
// default-address-pools, mtu and dns-upstreams settings.
func newNetworks(ctx context.Context, cfg Config, db *bolt.DB, log *slog.Logger) (*network.Service, error) {
	nc := network.Config{DB: db, DataRoot: cfg.DataRoot, ExecRoot: cfg.ExecRoot, Bridge: cfg.Bridge,
		Pools: cfg.DefaultAddressPools, MTU: cfg.MTU, DNSUpstreams: cfg.DNSUpstreams, Log: log.With("svc", "network"),
		NoICC: cfg.ICC != nil && !*cfg.ICC, NoMasquerade: cfg.IPMasq != nil && !*cfg.IPMasq}
	if cfg.BIP != "" {
		p, err := netip.ParsePrefix(cfg.BIP)
		if err != nil || !p.Addr().Is4() {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid bip %q: want an IPv4 address with a prefix length (172.17.0.1/16)", cfg.BIP)
		}
		nc.BIP = p
	}
	nc.IPv6 = cfg.IPv6
	if cfg.FixedCIDR != "" {
		p, err := netip.ParsePrefix(cfg.FixedCIDR)
		if err != nil || !p.Addr().Is4() || cfg.BIP == "" {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid fixed-cidr %q: want an IPv4 prefix within bip (which must be set)", cfg.FixedCIDR)
		}
		nc.FixedCIDR = p
	}
	if cfg.IP != "" {
		a, err := netip.ParseAddr(cfg.IP)
		if err != nil || !a.Is4() {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid ip %q: want an IPv4 address", cfg.IP)
		}
		nc.HostBindingIP = a
	}
	if cfg.FixedCIDRv6 != "" {
		p, err := network.ValidFixedCIDRv6(cfg.FixedCIDRv6)
		if err != nil {
			return nil, err
		}
		nc.FixedCIDRv6 = p
	}
	return network.New(ctx, nc)
}

// networkBackend adapts the network and container services to the
// network router.
type networkBackend struct{ d *Daemon }

var _ netrouter.Backend = networkBackend{}

func (b networkBackend) NetworkList(ctx context.Context, f filters.Args) ([]apinetwork.Summary, error) {
	return b.d.networks.List(ctx, argsMap(f))
}

func (b networkBackend) NetworkInspect(ctx context.Context, id string) (apinetwork.Inspect, error) {
	return b.d.networks.Inspect(ctx, id)
}

func (b networkBackend) NetworkCreate(ctx context.Context, req apinetwork.CreateRequest) (string, error) {
	id, err := b.d.networks.Create(ctx, req)
	if err == nil {
		b.d.events.Publish(apievents.NetworkEventType, "create", id, map[string]string{"name": req.Name, "type": "bridge"})
	}
	return id, err
}

func (b networkBackend) NetworkRemove(ctx context.Context, ref string) error {
	id, name, _, err := b.d.networks.Lookup(ref)
	if err != nil {
		return err
	}
	if err := b.d.networks.Remove(ctx, ref); err != nil {
		return err
	}
	b.d.events.Publish(apievents.NetworkEventType, "destroy", id, map[string]string{"name": name, "type": "bridge"})
	return nil
}

func (b networkBackend) NetworkConnect(ctx context.Context, ref string, req apinetwork.ConnectRequest) error {
	return b.d.containers.NetworkConnect(ctx, req.Container, ref, req.EndpointConfig)
}

func (b networkBackend) NetworkDisconnect(ctx context.Context, ref string, req apinetwork.DisconnectRequest) error {
	return b.d.containers.NetworkDisconnect(ctx, req.Container, ref, req.Force)
}

func (b networkBackend) NetworksPrune(ctx context.Context, f filters.Args) (*apinetwork.PruneReport, error) {
	names, err := b.d.networks.Prune(ctx, argsMap(f), b.d.containers.ConnectedTo)
	if err != nil {
		return nil, err
	}
	return &apinetwork.PruneReport{NetworksDeleted: names}, nil
}
