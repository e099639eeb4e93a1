package cli

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// This file turns --network (plain or advanced syntax) and the legacy
// --ip, --ip6, --network-alias, --link and --mac-address flags into the
// endpoint settings of the create request, with docker's rules.

// networkAttachment is one --network value, plain or in the advanced
// name=...,alias=... form.
type networkAttachment struct {
	target     string
	aliases    []string
	links      []string
	ipv4, ipv6 string
	mac        string
	driverOpts map[string]string
	gwPriority int
}

func parseNetworkAttachment(v string) (networkAttachment, error) {
	if !strings.Contains(v, "=") {
		return networkAttachment{target: v}, nil
	}
	var n networkAttachment
	for _, f := range strings.Split(v, ",") {
		k, val, ok := strings.Cut(f, "=")
		if !ok {
			return n, fmt.Errorf("invalid field %s", f)
		}
		switch strings.ToLower(k) {
		case "name":
			n.target = val
		case "alias":
			n.aliases = append(n.aliases, val)
		case "link":
			n.links = append(n.links, val)
		case "ip":
			n.ipv4 = val
		case "ip6":
			n.ipv6 = val
		case "mac-address":
			n.mac = val
		case "driver-opt":
			dk, dv, _ := strings.Cut(val, "=")
			if n.driverOpts == nil {
				n.driverOpts = map[string]string{}
			}
			n.driverOpts[dk] = dv
		case "gw-priority":
			p, err := strconv.Atoi(val)
			if err != nil {
				return n, fmt.Errorf("invalid gw-priority: %s", val)
			}
			n.gwPriority = p
		default:
			return n, fmt.Errorf("invalid field key %s", k)
		}
	}
	return n, nil
}

// nonNil returns s, or an empty slice when s is nil: docker always sends
// these lists as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (o *containerOptions) networkMode() string {
	if len(o.networks.values) == 0 {
		return "default"
	}
	n, _ := parseNetworkAttachment(o.networks.values[0])
	return n.target
}

// endpoints builds NetworkingConfig.EndpointsConfig: the legacy --ip,
// --network-alias, --link and --mac-address flags apply to the first
// network (or to "default" when no network is given).
func (o *containerOptions) endpoints() (map[string]*network.EndpointSettings, error) {
	eps := map[string]*network.EndpointSettings{}
	atts := make([]networkAttachment, 0, len(o.networks.values))
	for _, v := range o.networks.values {
		n, err := parseNetworkAttachment(v)
		if err != nil {
			return nil, err
		}
		atts = append(atts, n)
	}
	if len(atts) == 0 {
		n := networkAttachment{target: "default"}
		if err := o.applyLegacy(&n); err != nil {
			return nil, err
		}
		ep, err := n.settings()
		if err != nil {
			return nil, err
		}
		eps["default"] = ep
		return eps, nil
	}
	userDefined, builtin := false, false
	for i, n := range atts {
		if container.NetworkMode(n.target).IsUserDefined() {
			userDefined = true
		} else {
			builtin = true
		}
		if i == 0 {
			if err := o.applyLegacy(&n); err != nil {
				return nil, err
			}
		}
		ep, err := n.settings()
		if err != nil {
			return nil, err
		}
		if _, dup := eps[n.target]; dup {
			return nil, fmt.Errorf("network %q is specified multiple times", n.target)
		}
		if i == 0 && len(atts) == 1 && isZeroEndpoint(ep) {
			continue
		}
		eps[n.target] = ep
	}
	if userDefined && builtin {
		return nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return eps, nil
}

func isZeroEndpoint(ep *network.EndpointSettings) bool {
	return ep.IPAMConfig == nil && len(ep.Links) == 0 && len(ep.Aliases) == 0 &&
		len(ep.DriverOpts) == 0 && ep.GwPriority == 0 && len(ep.MacAddress) == 0
}

func (o *containerOptions) applyLegacy(n *networkAttachment) error {
	if len(n.aliases) > 0 && o.aliases.Len() > 0 {
		return errors.New("conflicting options: cannot specify both --network-alias and per-network alias")
	}
	if len(n.links) > 0 && o.links.Len() > 0 {
		return errors.New("conflicting options: cannot specify both --link and per-network links")
	}
	if n.ipv4 != "" && o.ipv4 != "" {
		return errors.New("conflicting options: cannot specify both --ip and per-network IPv4 address")
	}
	if n.ipv6 != "" && o.ipv6 != "" {
		return errors.New("conflicting options: cannot specify both --ip6 and per-network IPv6 address")
	}
	if n.mac != "" && o.macAddress != "" {
		return errors.New("conflicting options: cannot specify both --mac-address and per-network MAC address")
	}
	if o.aliases.Len() > 0 {
		n.aliases = append([]string(nil), o.aliases.values...)
	}
	if container.NetworkMode(n.target).IsUserDefined() && o.links.Len() > 0 {
		n.links = append([]string(nil), o.links.values...)
	}
	if o.ipv4 != "" {
		n.ipv4 = o.ipv4
	}
	if o.ipv6 != "" {
		n.ipv6 = o.ipv6
	}
	if o.macAddress != "" {
		n.mac = o.macAddress
	}
	return nil
}

func (n networkAttachment) settings() (*network.EndpointSettings, error) {
	if strings.TrimSpace(n.target) == "" {
		return nil, errors.New("no name set for network")
	}
	if !container.NetworkMode(n.target).IsUserDefined() {
		if len(n.aliases) > 0 {
			return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if len(n.links) > 0 {
			return nil, errors.New("links are only supported for user-defined networks")
		}
	}
	ep := &network.EndpointSettings{GwPriority: n.gwPriority, DriverOpts: n.driverOpts}
	ep.Aliases = append(ep.Aliases, n.aliases...)
	if len(n.links) > 0 {
		ep.Links = n.links
	}
	if n.ipv4 != "" || n.ipv6 != "" {
		ipam := &network.EndpointIPAMConfig{}
		if n.ipv4 != "" {
			a, err := netip.ParseAddr(n.ipv4)
			if err != nil || !a.Is4() {
				return nil, fmt.Errorf("invalid IPv4 address: %s", n.ipv4)
			}
			ipam.IPv4Address = a
		}
		if n.ipv6 != "" {
			a, err := netip.ParseAddr(n.ipv6)
			if err != nil {
				return nil, fmt.Errorf("invalid IPv6 address: %s", n.ipv6)
			}
			ipam.IPv6Address = a
		}
		ep.IPAMConfig = ipam
	}
	if n.mac != "" {
		ma, err := net.ParseMAC(strings.TrimSpace(n.mac))
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", n.mac)
		}
		ep.MacAddress = network.HardwareAddr(ma)
	}
	return ep, nil
}
