package container

import (
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// legacyInspect is the inspect answer for API versions before 1.52: its
// NetworkSettings (which hides the embedded one) has the top-level
// fields dockerd back-fills from the default "bridge" network, so that
// `docker inspect -f '{{.NetworkSettings.IPAddress}}'` keeps working
// with older clients.
type legacyInspect struct {
	*container.InspectResponse
	NetworkSettings *legacyNetworkSettings `json:"NetworkSettings"`
}

type legacyNetworkSettings struct {
	Bridge                 string
	SandboxID              string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	Ports                  network.PortMap
	SandboxKey             string
	SecondaryIPAddresses   []any
	SecondaryIPv6Addresses []any
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
	Networks               map[string]*network.EndpointSettings
}

func withLegacyNetworkSettings(resp *container.InspectResponse) any {
	if resp == nil || resp.NetworkSettings == nil {
		return resp
	}
	ns := resp.NetworkSettings
	l := &legacyNetworkSettings{SandboxID: ns.SandboxID, SandboxKey: ns.SandboxKey, Ports: ns.Ports, Networks: ns.Networks}
	if br := ns.Networks["bridge"]; br != nil {
		l.EndpointID, l.IPPrefixLen, l.MacAddress = br.EndpointID, br.IPPrefixLen, br.MacAddress.String()
		if br.Gateway.IsValid() {
			l.Gateway = br.Gateway.String()
		}
		if br.IPAddress.IsValid() {
			l.IPAddress = br.IPAddress.String()
		}
		if br.GlobalIPv6Address.IsValid() {
			l.GlobalIPv6Address, l.GlobalIPv6PrefixLen = br.GlobalIPv6Address.String(), br.GlobalIPv6PrefixLen
		}
		if br.IPv6Gateway.IsValid() {
			l.IPv6Gateway = br.IPv6Gateway.String()
		}
	}
	return legacyInspect{InspectResponse: resp, NetworkSettings: l}
}
