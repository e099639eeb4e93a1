package cli

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// This file holds `berth network ...` and `berth port`, with docker's
// flags and output.

func (c *Cli) newNetworkCommand() *cobra.Command {
	return managementCommand("network", "Manage networks",
		c.newNetworkConnectCommand(), c.newNetworkCreateCommand(), c.newNetworkDisconnectCommand(),
		c.newNetworkInspectCommand(), withAlias(c.newNetworkLsCommand(), "ls", "list"),
		c.newNetworkPruneCommand(), withAlias(c.newNetworkRmCommand(), "rm", "remove"),
	)
}

func (c *Cli) newNetworkCreateCommand() *cobra.Command {
	var (
		driver, ipamDriver, scope, configFrom  string
		subnets, gateways, ipRanges            []string
		internal, attachable, ingress, cfgOnly bool
		ipv6, ipv4                             bool
		labels, opts, ipamOpts, auxAddresses   listOpts
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ipam := &network.IPAM{Driver: ipamDriver, Options: kvMap(ipamOpts.slice())}
			if len(gateways) > len(subnets) || len(ipRanges) > len(subnets) {
				return fmt.Errorf("every ip-range or gateway must have a corresponding subnet")
			}
			for i, s := range subnets {
				p, err := netip.ParsePrefix(s)
				if err != nil {
					return fmt.Errorf("invalid subnet %s: %w", s, err)
				}
				cfg := network.IPAMConfig{Subnet: p}
				if i < len(gateways) {
					if cfg.Gateway, err = netip.ParseAddr(gateways[i]); err != nil {
						return fmt.Errorf("invalid gateway %s", gateways[i])
					}
				}
				if i < len(ipRanges) {
					if cfg.IPRange, err = netip.ParsePrefix(ipRanges[i]); err != nil {
						return fmt.Errorf("invalid ip-range %s", ipRanges[i])
					}
				}
				ipam.Config = append(ipam.Config, cfg)
			}
			o := client.NetworkCreateOptions{Driver: driver, Scope: scope, IPAM: ipam, Internal: internal,
				Attachable: attachable, Ingress: ingress, ConfigOnly: cfgOnly, ConfigFrom: configFrom,
				Options: kvMap(opts.slice()), Labels: kvMap(labels.slice())}
			if cmd.Flags().Changed("ipv6") {
				o.EnableIPv6 = &ipv6
			}
			if cmd.Flags().Changed("ipv4") {
				o.EnableIPv4 = &ipv4
			}
			res, err := api.NetworkCreate(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.ID)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network")
	fs.StringSliceVar(&subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	fs.StringSliceVar(&gateways, "gateway", nil, "IPv4 or IPv6 Gateway for the master subnet")
	fs.StringSliceVar(&ipRanges, "ip-range", nil, "Allocate container ip from a sub-range")
	fs.StringVar(&ipamDriver, "ipam-driver", "default", "IP Address Management Driver")
	fs.Var(&ipamOpts, "ipam-opt", "Set IPAM driver specific options")
	fs.Var(&auxAddresses, "aux-address", "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	fs.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	fs.BoolVar(&attachable, "attachable", false, "Enable manual container attachment")
	fs.BoolVar(&ingress, "ingress", false, "Create swarm routing-mesh network")
	fs.BoolVar(&cfgOnly, "config-only", false, "Create a configuration only network")
	fs.StringVar(&configFrom, "config-from", "", "The network from which to copy the configuration")
	fs.StringVar(&scope, "scope", "", "Control the network's scope")
	fs.BoolVar(&ipv6, "ipv6", false, "Enable or disable IPv6 networking")
	fs.BoolVar(&ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	fs.Var(&labels, "label", "Set metadata on a network")
	fs.VarP(&opts, "opt", "o", "Set driver specific options")
	return cmd
}

func kvMap(kvs []string) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func (c *Cli) newNetworkConnectCommand() *cobra.Command {
	var (
		ip, ip6      string
		aliases      []string
		links        []string
		linkLocalIPs []string
		driverOpts   []string
	)
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			es := &network.EndpointSettings{Aliases: aliases, Links: links, DriverOpts: kvMap(driverOpts)}
			if ip != "" || ip6 != "" || len(linkLocalIPs) > 0 {
				es.IPAMConfig = &network.EndpointIPAMConfig{}
				if ip != "" {
					if es.IPAMConfig.IPv4Address, err = netip.ParseAddr(ip); err != nil {
						return fmt.Errorf("invalid IPv4 address %s", ip)
					}
				}
				if ip6 != "" {
					if es.IPAMConfig.IPv6Address, err = netip.ParseAddr(ip6); err != nil {
						return fmt.Errorf("invalid IPv6 address %s", ip6)
					}
				}
			}
			_, err = api.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: es})
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	fs.StringVar(&ip6, "ip6", "", "IPv6 address (e.g., \"2001:db8::33\")")
	fs.StringSliceVar(&aliases, "alias", nil, "Add network-scoped alias for the container")
	fs.StringSliceVar(&links, "link", nil, "Add link to another container")
	fs.StringSliceVar(&linkLocalIPs, "link-local-ip", nil, "Add a link-local address for the container")
	fs.StringSliceVar(&driverOpts, "driver-opt", nil, "driver options for the network")
	return cmd
}

func (c *Cli) newNetworkDisconnectCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			_, err = api.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

func (c *Cli) newNetworkInspectCommand() *cobra.Command {
	var (
		format  string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NETWORK [NETWORK...]",
		Short: "Display detailed information on one or more networks",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			return inspectEach(c.out, format, args, func(name string) (json.RawMessage, any, error) {
				res, err := api.NetworkInspect(cmd.Context(), name, client.NetworkInspectOptions{Verbose: verbose})
				return res.Raw, res.Network, err
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Verbose output for diagnostics")
	return cmd
}

const defaultNetworkFormat = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"

var networkHeaders = map[string]string{
	"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv6": "IPV6",
	"IPv4": "IPV4", "Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
}

// networkRow is one `network ls` row (docker's formatter fields).
type networkRow struct {
	n     network.Summary
	trunc bool
}

func (r networkRow) MarshalJSON() ([]byte, error) { return fieldsJSON(r) }

func (r networkRow) ID() string {
	if r.trunc && len(r.n.ID) > 12 {
		return r.n.ID[:12]
	}
	return r.n.ID
}
func (r networkRow) Name() string      { return r.n.Name }
func (r networkRow) Driver() string    { return r.n.Driver }
func (r networkRow) Scope() string     { return r.n.Scope }
func (r networkRow) IPv6() string      { return fmt.Sprint(r.n.EnableIPv6) }
func (r networkRow) IPv4() string      { return fmt.Sprint(r.n.EnableIPv4) }
func (r networkRow) Internal() string  { return fmt.Sprint(r.n.Internal) }
func (r networkRow) CreatedAt() string { return r.n.Created.Format("2006-01-02 15:04:05 -0700 MST") }
func (r networkRow) Labels() string {
	var kv []string
	for k, v := range r.n.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}
func (r networkRow) Label(name string) string { return r.n.Labels[name] }

func (c *Cli) newNetworkLsCommand() *cobra.Command {
	var (
		quiet, noTrunc bool
		format         string
		filters        filterOpts
	)
	cmd := &cobra.Command{
		Use:   "ls [OPTIONS]",
		Short: "List networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: filters.f})
			if err != nil {
				return err
			}
			sort.Slice(res.Items, func(i, j int) bool { return res.Items[i].Name < res.Items[j].Name })
			var rows []any
			for _, n := range res.Items {
				rows = append(rows, networkRow{n: n, trunc: !noTrunc})
			}
			return listFormat{Format: format, Default: defaultNetworkFormat, Quiet: quiet, Headers: networkHeaders}.write(c.out, rows)
		},
	}
	fs := cmd.Flags()
	fs.VarP(&filters, "filter", "f", `Provide filter values (e.g. "driver=bridge")`)
	fs.StringVar(&format, "format", "", formatHelp)
	fs.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	return cmd
}

func (c *Cli) newNetworkRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm NETWORK [NETWORK...]",
		Short: "Remove one or more networks",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			err = c.forEach(args, true, func(n string) error {
				_, err := api.NetworkRemove(cmd.Context(), n, client.NetworkRemoveOptions{})
				if err != nil && force && isNotFound(err) {
					return nil
				}
				return err
			})
			if err != nil {
				// docker 28 adds its status error's text to the messages.
				return StatusError{Status: err.Error() + "\nexit status 1", StatusCode: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func (c *Cli) newNetworkPruneCommand() *cobra.Command {
	var (
		force   bool
		filters filterOpts
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all unused networks",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !c.confirm("WARNING! This will remove all custom networks not used by at least one container.") {
				return nil
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.NetworkPrune(cmd.Context(), client.NetworkPruneOptions{Filters: filters.f})
			if err != nil {
				return err
			}
			if len(res.Report.NetworksDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Networks:")
				for _, n := range res.Report.NetworksDeleted {
					fmt.Fprintln(c.out, n)
				}
				fmt.Fprintln(c.out)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}

// newPortCommand is `berth port CONTAINER [PRIVATE_PORT[/PROTO]]`.
func (c *Cli) newPortCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  requiresRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			var ports network.PortMap
			if res.Container.NetworkSettings != nil {
				ports = res.Container.NetworkSettings.Ports
			}
			addr := func(b network.PortBinding) string {
				ip := "0.0.0.0"
				if b.HostIP.IsValid() {
					ip = b.HostIP.String()
				}
				if b.HostIP.Is6() {
					return "[" + ip + "]:" + b.HostPort
				}
				return ip + ":" + b.HostPort
			}
			if len(args) == 2 {
				spec := args[1]
				if !strings.Contains(spec, "/") {
					spec += "/tcp"
				}
				p, err := network.ParsePort(spec)
				if err != nil {
					return fmt.Errorf("Error: invalid port (%s): %w", args[1], err)
				}
				bs, ok := ports[p]
				if !ok || len(bs) == 0 {
					return fmt.Errorf("Error: No public port '%s' published for %s", p, args[0])
				}
				for _, b := range bs {
					fmt.Fprintln(c.out, addr(b))
				}
				return nil
			}
			keys := make([]network.Port, 0, len(ports))
			for p := range ports {
				keys = append(keys, p)
			}
			sort.Slice(keys, func(i, j int) bool {
				if keys[i].Num() != keys[j].Num() {
					return keys[i].Num() < keys[j].Num()
				}
				return keys[i].Proto() < keys[j].Proto()
			})
			for _, p := range keys {
				for _, b := range ports[p] {
					fmt.Fprintf(c.out, "%s -> %s\n", p, addr(b))
				}
			}
			return nil
		},
	}
	return cmd
}
