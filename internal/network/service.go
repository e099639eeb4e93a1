package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Config builds a Service.
type Config struct {
	DB       *bolt.DB
	DataRoot string
	ExecRoot string
	// Bridge is the default network's bridge ("berth0" when empty;
	// "none" creates no default network).
	Bridge string
	// BIP is the default bridge's gateway address and prefix
	// ("172.17.0.1/16"); invalid: the first free subnet of Pools.
	BIP netip.Prefix
	// Pools are the default address pools (DefaultPools when empty).
	Pools []Pool
	// MTU of the default bridge (0: 1500).
	MTU int
	// DNSUpstreams are the servers the embedded DNS forwards to
	// ("ip" or "ip:port"); empty: the host's /etc/resolv.conf without
	// loopback servers.
	DNSUpstreams []string
	// NoPool disables the pool of sandboxes made ahead of time.
	NoPool bool
	// NoICC and NoMasquerade are dockerd's --icc=false and
	// --ip-masq=false for the default network.
	NoICC, NoMasquerade bool
	// IPv6 gives the default network an IPv6 subnet: FixedCIDRv6 when
	// valid (dockerd's --ipv6 and --fixed-cidr-v6), else a random unique
	// local /64.
	IPv6        bool
	FixedCIDRv6 netip.Prefix
	// FixedCIDR is the part of the default network's subnet containers
	// get addresses from (dockerd's --fixed-cidr; invalid: all of it).
	FixedCIDR netip.Prefix
	// HostBindingIP is the default address of the default network's
	// published ports (dockerd's --ip; invalid: 0.0.0.0).
	HostBindingIP netip.Addr
	Log           *slog.Logger
}

// Service manages networks and sandboxes. It is safe for concurrent use.
type Service struct {
	cfg  Config
	log  *slog.Logger
	ipam *ipam
	fw   firewall

	mu   sync.Mutex
	nets map[string]*Record // by ID
	// sandboxes are the live sandboxes by container ID.
	sandboxes map[string]*sandbox
	// tearing are sandboxes whose teardown is under way (teardown_wait.go).
	tearing map[string]*sandbox
	// fwMu serialises firewall rewrites (taken after mu is released).
	fwMu sync.Mutex
	// detached are host ends of torn-down sandboxes the kernel may not
	// have deleted yet (Close deletes those still there).
	detached []string

	// The pool of fresh sandboxes (pool_linux.go).
	poolCh             chan *pooled
	poolWake           chan struct{}
	poolStop, poolDone chan struct{}
	// trace, when set (benchmarks), is told each endpoint's timings.
	trace func(pooled bool, ipam, link time.Duration)
}

const defaultBridgeName = "berth0"

// TableName is the nftables table (family ip) of the daemon whose data
// root is dataRoot: "berth_" and 8 hex digits of the root's hash, so
// that daemons on other roots (tests) never share a table.
func TableName(dataRoot string) string {
	h := sha256.Sum256([]byte(filepath.Clean(dataRoot)))
	return "berth_" + hex.EncodeToString(h[:4])
}

// New opens the network store, creates the predefined networks (bridge,
// host, none) when missing and brings the bridges of every bridge
// network up. Call Restore next with the running containers' sandboxes.
func New(ctx context.Context, cfg Config) (_ *Service, retErr error) {
	if cfg.DB == nil || cfg.ExecRoot == "" || cfg.DataRoot == "" {
		return nil, fmt.Errorf("network: config needs DB, DataRoot and ExecRoot")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Bridge == "" {
		cfg.Bridge = defaultBridgeName
	}
	if len(cfg.Pools) == 0 {
		cfg.Pools = DefaultPools
	}
	for _, p := range cfg.Pools {
		if err := p.validate(); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, err)
		}
	}
	if err := openStore(cfg.DB); err != nil {
		return nil, err
	}
	m, err := newIPAM(cfg.DB)
	if err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			m.close()
		}
	}()
	s := &Service{cfg: cfg, log: cfg.Log, ipam: m,
		fw: firewall{table: TableName(cfg.DataRoot)}, nets: map[string]*Record{}, sandboxes: map[string]*sandbox{}, tearing: map[string]*sandbox{}}
	recs, err := loadRecords(cfg.DB)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		s.nets[r.ID] = r
	}
	for _, p := range []struct{ name, driver string }{{"host", "host"}, {"none", "null"}} {
		if s.byName(p.name) == nil {
			r := &Record{ID: newID(), Name: p.name, Driver: p.driver, Created: time.Now().UTC()}
			if err := putRecord(cfg.DB, r); err != nil {
				return nil, err
			}
			s.nets[r.ID] = r
		}
	}
	if err := enableForwarding(); err != nil {
		s.log.Warn("enable ip forwarding", "err", err)
	}
	if err := s.setupDefaultBridge(); err != nil {
		return nil, err
	}
	for _, r := range s.nets {
		if r.Driver == "bridge" && !r.Default {
			if err := s.bringUp(r); err != nil {
				s.log.Error("network bridge", "network", r.Name, "err", err)
			}
		}
		if r.subIf() {
			if err := ensureParent(r); err != nil {
				s.log.Error("network parent interface", "network", r.Name, "err", err)
			}
		}
	}
	return s, nil
}

// setupDefaultBridge creates, updates or removes the predefined "bridge"
// network from the daemon's --bridge/--bip settings.
func (s *Service) setupDefaultBridge() error {
	cur := s.byName("bridge")
	if s.cfg.Bridge == "none" {
		if cur != nil {
			_ = deleteBridge(cur.Bridge)
			delete(s.nets, cur.ID)
			return deleteRecord(s.cfg.DB, cur.ID)
		}
		return nil
	}
	mtu := s.cfg.MTU
	if mtu == 0 {
		mtu = 1500
	}
	icc, masq := strconv.FormatBool(!s.cfg.NoICC), strconv.FormatBool(!s.cfg.NoMasquerade)
	if cur != nil && cur.Bridge == s.cfg.Bridge && (!s.cfg.BIP.IsValid() || (cur.Gateway == s.cfg.BIP.Addr() && cur.Subnet == s.cfg.BIP.Masked())) && s.default6Matches(cur) &&
		cur.IPRange == s.cfg.FixedCIDR.Masked() {
		cur.MTU, cur.ICC, cur.Masquerade = mtu, !s.cfg.NoICC, !s.cfg.NoMasquerade
		cur.Options["com.docker.network.bridge.enable_icc"] = icc
		cur.Options["com.docker.network.bridge.enable_ip_masquerade"] = masq
		cur.Options["com.docker.network.driver.mtu"] = strconv.Itoa(mtu)
		cur.Options["com.docker.network.bridge.host_binding_ipv4"] = s.hostBinding()
		if err := putRecord(s.cfg.DB, cur); err != nil {
			return err
		}
		return s.bringUp(cur)
	}
	r := &Record{
		ID: newID(), Name: "bridge", Driver: "bridge", Created: time.Now().UTC(), Default: true,
		Bridge: s.cfg.Bridge, MTU: mtu, ICC: !s.cfg.NoICC, Masquerade: !s.cfg.NoMasquerade,
		Options: map[string]string{
			"com.docker.network.bridge.default_bridge":       "true",
			"com.docker.network.bridge.enable_icc":           icc,
			"com.docker.network.bridge.enable_ip_masquerade": masq,
			"com.docker.network.bridge.host_binding_ipv4":    s.hostBinding(),
			"com.docker.network.bridge.name":                 s.cfg.Bridge,
			"com.docker.network.driver.mtu":                  strconv.Itoa(mtu),
		},
	}
	if cur != nil {
		// The settings changed: the old default network goes.
		_ = deleteBridge(cur.Bridge)
		delete(s.nets, cur.ID)
		if err := deleteRecord(s.cfg.DB, cur.ID); err != nil {
			return err
		}
		r.ID = cur.ID
	}
	if s.cfg.BIP.IsValid() {
		r.Subnet, r.Gateway, r.UserSubnet = s.cfg.BIP.Masked(), s.cfg.BIP.Addr(), true
	}
	if p := s.cfg.FixedCIDR; p.IsValid() {
		if !r.Subnet.IsValid() || !r.Subnet.Contains(p.Addr()) || p.Bits() < r.Subnet.Bits() {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid fixed-cidr %s: it must be within bip %s", p, s.cfg.BIP)
		}
		r.IPRange = p.Masked()
	}
	if err := s.default6(r); err != nil {
		return fmt.Errorf("default bridge network: %w", err)
	}
	if err := s.allocateAndBringUp(r); err != nil {
		return fmt.Errorf("default bridge network: %w", err)
	}
	s.nets[r.ID] = r
	return putRecord(s.cfg.DB, r)
}

// allocateAndBringUp picks r's subnet (when not set), checks it overlaps
// no other network and no host route, and creates the bridge, all under
// the host-wide subnet lock.
func (s *Service) allocateAndBringUp(r *Record) error {
	unlock, err := lockSubnets()
	if err != nil {
		return err
	}
	defer unlock()
	used, err := hostRoutes()
	if err != nil {
		return err
	}
	// The routes of r's own bridge (a restart) are not a conflict.
	used = slices.DeleteFunc(used, func(u inUse) bool { return u.by == "route via "+r.Bridge })
	s.mu.Lock()
	for _, n := range s.nets {
		if n.Subnet.IsValid() && n.ID != r.ID {
			used = append(used, inUse{prefix: n.Subnet, by: "network " + n.Name})
		}
	}
	s.mu.Unlock()
	if !r.Subnet.IsValid() {
		if r.Subnet, err = pickSubnet(s.cfg.Pools, used); err != nil {
			return err
		}
		r.Gateway = r.Subnet.Addr().Next()
	} else {
		for _, u := range used {
			if u.prefix.Overlaps(r.Subnet) {
				return errdefs.Newf(errdefs.Conflict, "invalid pool request: Pool overlaps with other one on this address space (%s: %s)", u.prefix, u.by)
			}
		}
	}
	if !r.Gateway.IsValid() {
		r.Gateway = r.Subnet.Masked().Addr().Next()
	}
	return ensureBridge(r)
}

// bringUp makes sure r's bridge exists (berthd removes its bridges when
// it stops with nothing running). A subnet berth chose itself that
// something else took meanwhile is replaced by a free one (no container
// holds an address then); a user's subnet is an error.
func (s *Service) bringUp(r *Record) error {
	if linkExists(r.Bridge) {
		return ensureBridge(r)
	}
	unlock, err := lockSubnets()
	if err != nil {
		return err
	}
	used, err := hostRoutes()
	if err != nil {
		unlock()
		return err
	}
	for _, u := range used {
		if u.prefix.Overlaps(r.Subnet) {
			unlock()
			if r.UserSubnet {
				return fmt.Errorf("network %s: subnet %s overlaps %s (%s)", r.Name, r.Subnet, u.prefix, u.by)
			}
			s.log.Info("network subnet taken meanwhile, choosing another", "network", r.Name, "subnet", r.Subnet, "by", u.by)
			r.Subnet, r.Gateway, r.IPRange = netip.Prefix{}, netip.Addr{}, netip.Prefix{}
			if err := s.allocateAndBringUp(r); err != nil {
				return err
			}
			return putRecord(s.cfg.DB, r)
		}
	}
	defer unlock()
	return ensureBridge(r)
}

func (s *Service) byName(name string) *Record {
	for _, r := range s.nets {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// lookup finds a network by full ID, name or unique ID prefix, as
// Docker does (an exact name wins over an ID prefix).
func (s *Service) lookup(ref string) (*Record, error) {
	if r, ok := s.nets[ref]; ok {
		return r, nil
	}
	if r := s.byName(ref); r != nil {
		return r, nil
	}
	var found *Record
	for id, r := range s.nets {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.Newf(errdefs.InvalidArgument, "network %s is ambiguous (%d matches found based on ID prefix)", ref, 2)
			}
			found = r
		}
	}
	if found == nil || ref == "" {
		return nil, errdefs.Newf(errdefs.NotFound, "network %s not found", ref)
	}
	return found, nil
}

// Lookup resolves a network reference to its ID, name and driver.
func (s *Service) Lookup(ref string) (id, name, driver string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(ref)
	if err != nil {
		return "", "", "", err
	}
	return r.ID, r.Name, r.Driver, nil
}

// CreateRequest is POST /networks/create's body.
type CreateRequest = network.CreateRequest

// Create makes a user-defined network.
func (s *Service) Create(ctx context.Context, req CreateRequest) (string, error) {
	if req.Name == "" {
		return "", errdefs.Newf(errdefs.InvalidArgument, "network name cannot be empty")
	}
	driver := req.Driver
	if driver == "" {
		driver = "bridge"
	}
	switch driver {
	case "bridge":
	case "macvlan", "ipvlan":
		return s.createSubIf(ctx, req, driver)
	case "host", "null":
		return "", errdefs.Newf(errdefs.Forbidden, "only one instance of %q network is allowed", map[string]string{"host": "host", "null": "none"}[driver])
	default:
		return "", errdefs.Newf(errdefs.NotFound, "plugin %q not found", driver)
	}
	if req.ConfigOnly || req.ConfigFrom != nil || req.Ingress || req.Scope == "swarm" {
		return "", errdefs.Newf(errdefs.NotImplemented, "config-only, config-from, ingress and swarm-scoped networks are not supported")
	}
	ipv6 := req.EnableIPv6 != nil && *req.EnableIPv6
	s.mu.Lock()
	if s.byName(req.Name) != nil {
		s.mu.Unlock()
		return "", errdefs.Newf(errdefs.Conflict, "network with name %s already exists", req.Name)
	}
	s.mu.Unlock()
	r := &Record{ID: newID(), Name: req.Name, Driver: driver, Created: time.Now().UTC(), Internal: req.Internal,
		Attachable: req.Attachable, Labels: req.Labels, Options: req.Options, ICC: true, Masquerade: !req.Internal, MTU: 1500}
	if r.Options == nil {
		r.Options = map[string]string{}
	}
	for k, v := range r.Options {
		switch k {
		case "com.docker.network.bridge.name":
			if len(v) > 15 || v == "" {
				return "", errdefs.Newf(errdefs.InvalidArgument, "invalid bridge name %q", v)
			}
			r.Bridge = v
		case "com.docker.network.driver.mtu":
			n, err := strconv.Atoi(v)
			if err != nil || n < 68 {
				return "", errdefs.Newf(errdefs.InvalidArgument, "invalid MTU %q", v)
			}
			r.MTU = n
		case "com.docker.network.bridge.enable_icc":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", errdefs.Newf(errdefs.InvalidArgument, "invalid value %q for %s", v, k)
			}
			r.ICC = b
		case "com.docker.network.bridge.host_binding_ipv4":
			if a, err := netip.ParseAddr(v); err != nil || !a.Is4() {
				return "", errdefs.Newf(errdefs.InvalidArgument, "invalid value %q for %s: want an IPv4 address", v, k)
			}
		case "com.docker.network.bridge.enable_ip_masquerade":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return "", errdefs.Newf(errdefs.InvalidArgument, "invalid value %q for %s", v, k)
			}
			r.Masquerade = b && !r.Internal
		}
	}
	if r.Bridge == "" {
		r.Bridge = "br-" + r.ID[:12]
	}
	if err := r.applyIPAM(req.IPAM, ipv6); err != nil {
		return "", err
	}
	s.mu.Lock()
	for _, n := range s.nets {
		if n.Bridge == r.Bridge && n.Bridge != "" {
			s.mu.Unlock()
			return "", errdefs.Newf(errdefs.Conflict, "bridge name %s is already used by network %s", r.Bridge, n.Name)
		}
	}
	s.mu.Unlock()
	if ipv6 {
		if err := s.pickSubnet6(r); err != nil {
			return "", err
		}
	}
	if err := s.allocateAndBringUp(r); err != nil {
		_ = deleteBridge(r.Bridge)
		return "", err
	}
	if ipv6 {
		if err := enableForwarding6(); err != nil {
			s.log.Warn("enable IPv6 forwarding", "err", err)
		}
	}
	s.mu.Lock()
	if s.byName(req.Name) != nil {
		s.mu.Unlock()
		_ = deleteBridge(r.Bridge)
		return "", errdefs.Newf(errdefs.Conflict, "network with name %s already exists", req.Name)
	}
	if err := putRecord(s.cfg.DB, r); err != nil {
		s.mu.Unlock()
		_ = deleteBridge(r.Bridge)
		return "", err
	}
	s.nets[r.ID] = r
	s.mu.Unlock()
	if err := s.syncFirewall(); err != nil {
		s.log.Error("firewall", "err", err)
	}
	return r.ID, nil
}

// Remove deletes a network without endpoints.
func (s *Service) Remove(ctx context.Context, ref string) error {
	s.mu.Lock()
	r, err := s.lookup(ref)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if r.predefined() {
		s.mu.Unlock()
		return errdefs.Newf(errdefs.Forbidden, "%s is a pre-defined network and cannot be removed", r.Name)
	}
	if n := s.endpointCount(r.ID); n > 0 {
		s.mu.Unlock()
		return errdefs.Newf(errdefs.Forbidden, "error while removing network: network %s has active endpoints", r.Name)
	}
	if err := deleteRecord(s.cfg.DB, r.ID); err != nil {
		s.mu.Unlock()
		return err
	}
	s.ipam.forget(r.ID)
	s.ipam.forget(r.ID + "/6")
	delete(s.nets, r.ID)
	s.mu.Unlock()
	if r.subIf() {
		if r.OwnParent {
			return delLink(r.Parent)
		}
		return nil
	}
	if err := s.syncFirewall(); err != nil {
		s.log.Error("firewall", "err", err)
	}
	return deleteBridge(r.Bridge)
}

func (s *Service) endpointCount(id string) int {
	n := 0
	for _, sb := range s.sandboxes {
		if _, ok := sb.endpoints[id]; ok && !sb.gone {
			n++
		}
	}
	return n
}

// syncFirewall rewrites berth's table from the networks and the live
// sandboxes' published ports.
func (s *Service) syncFirewall() error {
	s.fwMu.Lock()
	defer s.fwMu.Unlock()
	s.mu.Lock()
	var nets []*Record
	for _, r := range s.nets {
		nets = append(nets, r)
	}
	sort.Slice(nets, func(i, j int) bool { return nets[i].Created.Before(nets[j].Created) })
	var ports []portRule
	for _, sb := range s.sandboxes {
		ports = append(ports, sb.ports...)
	}
	s.mu.Unlock()
	return s.fw.sync(nets, ports)
}

// Close stops the embedded DNS servers. When no sandbox is live, berth's
// bridges and nftables table are removed as well (they are rebuilt on
// the next start); otherwise they stay for the containers that keep
// running (live restore).
func (s *Service) Close() error {
	s.stopPool()
	defer s.ipam.close()
	s.mu.Lock()
	live := 0
	for _, sb := range s.sandboxes {
		if !sb.gone {
			live++
		}
		sb.closeDNS()
		for _, fd := range sb.reserved {
			closeFD(fd)
		}
		sb.reserved = nil
		for _, px := range sb.proxies {
			px.Close()
		}
		sb.proxies = nil
	}
	var bridges []string
	for _, r := range s.nets {
		switch {
		case r.Driver == "bridge":
			bridges = append(bridges, r.Bridge)
		case r.subIf() && r.OwnParent:
			bridges = append(bridges, r.Parent) // berth's dummy parent
		}
	}
	s.mu.Unlock()
	if live > 0 {
		return nil
	}
	s.mu.Lock()
	detached := s.detached
	s.detached = nil
	s.mu.Unlock()
	for _, l := range detached {
		_ = delLink(l)
	}
	for _, b := range bridges {
		_ = deleteBridge(b)
	}
	return s.fw.remove()
}

func newID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// createSubIf makes a macvlan or ipvlan network: endpoints are
// sub-interfaces of the parent (-o parent=IF; without one, berth
// creates a dummy interface and the network is internal, as Docker
// does). There is no bridge, no NAT and no port publishing.
func (s *Service) createSubIf(ctx context.Context, req CreateRequest, driver string) (string, error) {
	s.mu.Lock()
	if s.byName(req.Name) != nil {
		s.mu.Unlock()
		return "", errdefs.Newf(errdefs.Conflict, "network with name %s already exists", req.Name)
	}
	s.mu.Unlock()
	r := &Record{ID: newID(), Name: req.Name, Driver: driver, Created: time.Now().UTC(), Internal: req.Internal,
		Attachable: req.Attachable, Labels: req.Labels, Options: map[string]string{}, ICC: true}
	for k, v := range req.Options {
		r.Options[k] = v
	}
	r.Parent = r.Options["parent"]
	switch driver {
	case "macvlan":
		r.Mode = r.Options["macvlan_mode"]
		if r.Mode == "" {
			r.Mode = "bridge"
		}
		switch r.Mode {
		case "bridge", "private", "vepa", "passthru":
		default:
			return "", errdefs.Newf(errdefs.InvalidArgument, "requested macvlan mode '%s' is not valid, 'bridge' mode is the macvlan driver default", r.Mode)
		}
	case "ipvlan":
		r.Mode = r.Options["ipvlan_mode"]
		if r.Mode == "" {
			r.Mode = "l2"
		}
		switch r.Mode {
		case "l2", "l3", "l3s":
		default:
			return "", errdefs.Newf(errdefs.InvalidArgument, "requested ipvlan mode '%s' is not valid, 'l2' mode is the ipvlan driver default", r.Mode)
		}
	}
	if r.Parent == "" {
		r.Parent, r.OwnParent, r.Internal = "dm-"+r.ID[:12], true, true
	} else if strings.Contains(r.Parent, ".") {
		return "", errdefs.Newf(errdefs.NotImplemented, "VLAN sub-interfaces as parents are not supported")
	}
	ipv6 := req.EnableIPv6 != nil && *req.EnableIPv6
	if err := r.applyIPAM(req.IPAM, ipv6); err != nil {
		return "", err
	}
	if !r.Subnet.IsValid() {
		// A subnet from the pools, overlapping nothing.
		unlock, err := lockSubnets()
		if err != nil {
			return "", err
		}
		used, err := hostRoutes()
		if err != nil {
			unlock()
			return "", err
		}
		s.mu.Lock()
		for _, n := range s.nets {
			if n.Subnet.IsValid() {
				used = append(used, inUse{prefix: n.Subnet, by: "network " + n.Name})
			}
		}
		s.mu.Unlock()
		r.Subnet, err = pickSubnet(s.cfg.Pools, used)
		unlock()
		if err != nil {
			return "", err
		}
	}
	if !r.Gateway.IsValid() {
		r.Gateway = r.Subnet.Masked().Addr().Next()
	}
	if ipv6 {
		if err := s.pickSubnet6(r); err != nil {
			return "", err
		}
	}
	r.Options["parent"] = r.Parent
	if err := ensureParent(r); err != nil {
		return "", err
	}
	if err := probeSubIf(r); err != nil {
		if r.OwnParent {
			_ = delLink(r.Parent)
		}
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName(req.Name) != nil {
		return "", errdefs.Newf(errdefs.Conflict, "network with name %s already exists", req.Name)
	}
	if err := putRecord(s.cfg.DB, r); err != nil {
		return "", err
	}
	s.nets[r.ID] = r
	return r.ID, nil
}

// pickSubnet6 checks r's IPv6 subnet, or picks a random unique local
// /64 (fd00::/8 with a random 40-bit global ID, as RFC 4193), against the
// host's IPv6 routes and the other networks.
func (s *Service) pickSubnet6(r *Record) error {
	used, err := hostRoutes6()
	if err != nil {
		return err
	}
	s.mu.Lock()
	for _, n := range s.nets {
		if n.Subnet6.IsValid() {
			used = append(used, inUse{prefix: n.Subnet6, by: "network " + n.Name})
		}
	}
	s.mu.Unlock()
	overlap := func(p netip.Prefix) *inUse {
		for i := range used {
			if used[i].prefix.Overlaps(p) {
				return &used[i]
			}
		}
		return nil
	}
	if r.Subnet6.IsValid() {
		if u := overlap(r.Subnet6); u != nil {
			return errdefs.Newf(errdefs.Conflict, "invalid pool request: Pool overlaps with other one on this address space (%s: %s)", u.prefix, u.by)
		}
	} else {
		for try := 0; ; try++ {
			var a [16]byte
			_, _ = rand.Read(a[1:8])
			a[0] = 0xfd
			p := netip.PrefixFrom(netip.AddrFrom16(a), 64)
			if overlap(p) == nil {
				r.Subnet6 = p
				break
			}
			if try > 100 {
				return errdefs.Newf(errdefs.Unavailable, "no free IPv6 subnet")
			}
		}
	}
	if !r.Gateway6.IsValid() {
		r.Gateway6 = r.Subnet6.Addr().Next()
	}
	return nil
}

// applyIPAM checks a create request's IPAM settings (Docker's rules: the
// default driver only, at most one IPv4 and one IPv6 subnet, IPv6 only
// with --ipv6, gateways and ranges inside their subnet) and records them
// in r. ipam may be nil.
func (r *Record) applyIPAM(ipam *network.IPAM, ipv6 bool) error {
	if ipam == nil {
		return nil
	}
	if ipam.Driver != "" && ipam.Driver != "default" {
		return errdefs.Newf(errdefs.NotFound, "plugin %q not found", ipam.Driver)
	}
	n4, n6 := 0, 0
	for _, c := range ipam.Config {
		if c.Subnet.IsValid() && c.Subnet.Addr().Is6() {
			n6++
			if !ipv6 {
				return errdefs.Newf(errdefs.InvalidArgument, "IPv6 subnet %s given but IPv6 is not enabled (--ipv6)", c.Subnet)
			}
			if c.Subnet.Bits() > 120 {
				return errdefs.Newf(errdefs.InvalidArgument, "IPv6 subnet %s is too small", c.Subnet)
			}
			r.Subnet6 = c.Subnet.Masked()
			if c.Gateway.IsValid() {
				if !r.Subnet6.Contains(c.Gateway) {
					return errdefs.Newf(errdefs.InvalidArgument, "invalid pool request: gateway %s is not within subnet %s", c.Gateway, r.Subnet6)
				}
				r.Gateway6 = c.Gateway
			}
			continue
		}
		n4++
	}
	if n4 > 1 || n6 > 1 {
		return errdefs.Newf(errdefs.NotImplemented, "only one IPv4 and one IPv6 subnet per network are supported")
	}
	for _, c := range ipam.Config {
		if c.Subnet.IsValid() && c.Subnet.Addr().Is6() {
			continue
		}
		if c.Subnet.IsValid() {
			r.Subnet, r.UserSubnet = c.Subnet.Masked(), true
		}
		if c.IPRange.IsValid() {
			if !r.Subnet.IsValid() || !r.Subnet.Contains(c.IPRange.Addr()) || c.IPRange.Bits() < r.Subnet.Bits() {
				return errdefs.Newf(errdefs.InvalidArgument, "invalid pool request: ip-range %s is not within subnet %s", c.IPRange, r.Subnet)
			}
			r.IPRange = c.IPRange.Masked()
		}
		if c.Gateway.IsValid() {
			if !r.Subnet.IsValid() || !r.Subnet.Contains(c.Gateway) {
				return errdefs.Newf(errdefs.InvalidArgument, "invalid pool request: gateway %s is not within subnet %s", c.Gateway, r.Subnet)
			}
			r.Gateway = c.Gateway
		}
	}
	return nil
}
