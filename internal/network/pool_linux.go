package network

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A pool of fresh sandboxes, made ahead of time in the background: a
// network namespace with loopback up and a veth pair whose peer (eth0)
// is already inside and up, its host end up but on no bridge. Taking one
// leaves only the per-container steps on the path of a start: enslave
// the host end, add the address and the default route (about 1 ms
// instead of about 4: namespace creation and the veth pair, which
// registers two network devices, are the expensive part). Pooled
// sandboxes are never reused: a torn-down sandbox is destroyed as
// before, so nothing (sockets in TIME_WAIT, conntrack entries, sysctls)
// passes from one container to the next.

// poolSize is how many fresh sandboxes are kept ready.
const poolSize = 2

type pooled struct {
	nsPath string
	host   string // the host end of the veth pair
	mac    net.HardwareAddr
	h      *netlink.Handle // a netlink socket inside the namespace
	peer   netlink.Link
}

// startPool starts the filler; it ends with Close.
func (s *Service) startPool() {
	s.poolCh = make(chan *pooled, poolSize)
	s.poolWake = make(chan struct{}, 1)
	s.poolStop = make(chan struct{})
	s.poolDone = make(chan struct{})
	go func() {
		defer close(s.poolDone)
		for {
			for len(s.poolCh) < cap(s.poolCh) {
				p, err := s.makePooled()
				if err != nil {
					s.log.Warn("sandbox pool", "err", err)
					break
				}
				select {
				case s.poolCh <- p:
				case <-s.poolStop:
					p.destroy()
					return
				}
			}
			select {
			case <-s.poolWake:
			case <-s.poolStop:
				return
			}
		}
	}()
}

// stopPool stops the filler and destroys the pooled sandboxes.
func (s *Service) stopPool() {
	if s.poolStop == nil {
		return
	}
	close(s.poolStop)
	<-s.poolDone
	for {
		select {
		case p := <-s.poolCh:
			p.destroy()
		default:
			return
		}
	}
}

// takePooled returns a ready sandbox, or nil when none is.
func (s *Service) takePooled() *pooled {
	if s.poolCh == nil {
		return nil
	}
	select {
	case p := <-s.poolCh:
		select {
		case s.poolWake <- struct{}{}:
		default:
		}
		return p
	default:
		return nil
	}
}

func randomMAC() net.HardwareAddr {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	b[0] = 0x02 // locally administered, unicast
	return net.HardwareAddr(b)
}

func (s *Service) makePooled() (_ *pooled, retErr error) {
	p := &pooled{nsPath: filepath.Join(s.cfg.ExecRoot, "netns", "pool-"+newID()[:16]), host: "vb" + newID()[:10], mac: randomMAC()}
	if err := createNetNS(p.nsPath); err != nil {
		return nil, err
	}
	defer func() {
		if retErr != nil {
			p.destroy()
		}
	}()
	ns, err := netns.GetFromPath(p.nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: p.host, MTU: 1500, Flags: net.FlagUp},
		PeerName:  "eth0", PeerHardwareAddr: p.mac, PeerNamespace: netlink.NsFd(int(ns)),
	}
	if err := netlink.LinkAdd(veth); err != nil {
		return nil, fmt.Errorf("create veth: %w", err)
	}
	if p.h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE); err != nil {
		return nil, err
	}
	if p.peer, err = p.h.LinkByName("eth0"); err != nil {
		return nil, err
	}
	lo, err := p.h.LinkByName("lo")
	if err != nil {
		return nil, err
	}
	for _, l := range []netlink.Link{lo, p.peer} {
		if err := p.h.LinkSetUp(l); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// destroy removes a pooled sandbox that was never used.
func (p *pooled) destroy() {
	if p.h != nil {
		p.h.Close()
	}
	_ = removeNetNS(p.nsPath)
}

// plug gives a pooled sandbox its endpoint on bridge: the host end joins
// the bridge, eth0 gets addr and the default route through gw.
func (p *pooled) plug(bridge string, addr netip.Prefix, gw netip.Addr) error {
	defer func() { p.h.Close(); p.h = nil }()
	br, err := netlink.LinkByName(bridge)
	if err != nil {
		return err
	}
	host, err := netlink.LinkByName(p.host)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetMasterByIndex(host, br.Attrs().Index); err != nil {
		return fmt.Errorf("attach to %s: %w", bridge, err)
	}
	if err := p.h.AddrAdd(p.peer, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		return fmt.Errorf("address %s: %w", addr, err)
	}
	if gw.IsValid() {
		if err := p.h.RouteAdd(&netlink.Route{LinkIndex: p.peer.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
			return fmt.Errorf("default route: %w", err)
		}
	}
	return nil
}
