package network

import (
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Pool is one entry of default-address-pools: networks without --subnet
// get the first free Size-bit subnet of the first pool that has one.
type Pool struct {
	Base netip.Prefix `json:"base"`
	Size int          `json:"size"`
}

// DefaultPools are berth's default address pools: the default bridge
// normally gets 172.17.0.0/16 as with Docker, then 480 more networks
// (Docker's defaults allow 31).
var DefaultPools = []Pool{
	{Base: netip.MustParsePrefix("172.17.0.0/16"), Size: 16},
	{Base: netip.MustParsePrefix("172.18.0.0/15"), Size: 20},
	{Base: netip.MustParsePrefix("172.20.0.0/14"), Size: 20},
	{Base: netip.MustParsePrefix("172.24.0.0/13"), Size: 20},
	{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 24},
}

// ParsePool parses a --default-address-pool value ("base=10.10.0.0/16,size=24").
func ParsePool(s string) (Pool, error) {
	var p Pool
	for _, f := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(f, "=")
		switch strings.TrimSpace(k) {
		case "base":
			b, err := netip.ParsePrefix(v)
			if err != nil {
				return p, fmt.Errorf("invalid base %q: %w", v, err)
			}
			p.Base = b
		case "size":
			if _, err := fmt.Sscanf(v, "%d", &p.Size); err != nil {
				return p, fmt.Errorf("invalid size %q", v)
			}
		default:
			return p, fmt.Errorf("unexpected key %q in default address pool", k)
		}
	}
	return p, p.validate()
}

func (p Pool) validate() error {
	if !p.Base.IsValid() || !p.Base.Addr().Is4() {
		return fmt.Errorf("default address pool base %s: an IPv4 prefix is required", p.Base)
	}
	if p.Size < p.Base.Bits() || p.Size > 30 {
		return fmt.Errorf("default address pool %s: size %d must be between %d and 30", p.Base, p.Size, p.Base.Bits())
	}
	return nil
}

// subnetsOf lists p's subnets in order.
func (p Pool) subnets(fn func(netip.Prefix) bool) {
	base := p.Base.Masked()
	n := uint64(1) << uint(p.Size-base.Bits())
	start := u32(base.Addr())
	step := uint32(1) << uint(32-p.Size)
	for i := uint64(0); i < n; i++ {
		a := start + uint32(i)*step
		if !fn(netip.PrefixFrom(fromU32(a), p.Size)) {
			return
		}
	}
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func fromU32(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

// inUse is a subnet already taken, and by what (for error messages).
type inUse struct {
	prefix netip.Prefix
	by     string
}

// pickSubnet returns the first subnet of pools that overlaps nothing in
// used.
func pickSubnet(pools []Pool, used []inUse) (netip.Prefix, error) {
	var found netip.Prefix
	for _, p := range pools {
		p.subnets(func(c netip.Prefix) bool {
			for _, u := range used {
				if overlaps(c, u.prefix) {
					return true
				}
			}
			found = c
			return false
		})
		if found.IsValid() {
			return found, nil
		}
	}
	var b strings.Builder
	sort.Slice(used, func(i, j int) bool { return used[i].prefix.Addr().Less(used[j].prefix.Addr()) })
	for _, u := range used {
		for _, p := range pools {
			if overlaps(p.Base, u.prefix) {
				fmt.Fprintf(&b, "; %s used by %s", u.prefix, u.by)
				break
			}
		}
	}
	var names []string
	for _, p := range pools {
		names = append(names, fmt.Sprintf("%s/size %d", p.Base, p.Size))
	}
	return netip.Prefix{}, errdefs.Newf(errdefs.Unavailable, "all predefined address pools have been fully subnetted (pools: %s%s)", strings.Join(names, ", "), b.String())
}

// subnetLockPath is a host-wide lock held while a subnet is chosen and
// its bridge configured, so that two berthd (tests run many in parallel)
// never pick the same free subnet.
const subnetLockPath = "/run/berth-subnets.lock"

func lockSubnets() (func(), error) {
	f, err := os.OpenFile(subnetLockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
