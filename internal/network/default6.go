package network

import (
	"net/netip"

	"github.com/berth-dev/berth/internal/errdefs"
)

// default6Matches reports whether the default network cur has the IPv6
// side the daemon's ipv6 / fixed-cidr-v6 settings ask for (otherwise it
// is made again, as for a changed bip).
func (s *Service) default6Matches(cur *Record) bool {
	if !s.cfg.IPv6 {
		return !cur.Subnet6.IsValid()
	}
	if !cur.Subnet6.IsValid() {
		return false
	}
	return !s.cfg.FixedCIDRv6.IsValid() || cur.Subnet6 == s.cfg.FixedCIDRv6.Masked()
}

// default6 gives the new default network r its IPv6 subnet and gateway
// (the subnet's first address, as dockerd) when the daemon has ipv6 on.
func (s *Service) default6(r *Record) error {
	if !s.cfg.IPv6 {
		return nil
	}
	if p := s.cfg.FixedCIDRv6; p.IsValid() {
		if !p.Addr().Is6() || p.Addr().Is4In6() {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid fixed-cidr-v6 %s: not an IPv6 prefix", p)
		}
		if p.Bits() > 120 {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid fixed-cidr-v6 %s: the prefix is too small", p)
		}
		r.Subnet6 = p.Masked()
	}
	if err := s.pickSubnet6(r); err != nil {
		return err
	}
	if err := enableForwarding6(); err != nil {
		s.log.Warn("enable IPv6 forwarding", "err", err)
	}
	return nil
}

// ValidFixedCIDRv6 parses dockerd's fixed-cidr-v6 value.
func ValidFixedCIDRv6(v string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(v)
	if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() {
		return netip.Prefix{}, errdefs.Newf(errdefs.InvalidArgument, "invalid fixed-cidr-v6 %q: want an IPv6 prefix (fd00:1::/64)", v)
	}
	return p, nil
}

// hostBinding is the default network's host_binding_ipv4 option.
func (s *Service) hostBinding() string {
	if s.cfg.HostBindingIP.IsValid() {
		return s.cfg.HostBindingIP.String()
	}
	return "0.0.0.0"
}
