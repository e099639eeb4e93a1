package network

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// A portProxy relays one published port in userland, for the bindings
// the kernel cannot DNAT: the IPv6 loopback address (there is no
// route_localnet for IPv6, so a packet from ::1 never leaves the host).
// Its listening socket is also the host port's reservation. It runs in
// berthd: connections through it end when berthd stops, and a restarted
// berthd opens it again (docker runs docker-proxy processes instead).
type portProxy struct {
	proto  string
	target netip.AddrPort
	log    *slog.Logger

	ln net.Listener   // tcp
	pc net.PacketConn // udp

	mu     sync.Mutex
	conns  map[io.Closer]struct{}
	closed bool
	wg     sync.WaitGroup
	// ctx ends the dials under way when the proxy closes.
	ctx    context.Context
	cancel context.CancelFunc
}

// udpIdle is how long a UDP flow through the proxy lives without traffic.
const udpIdle = 90 * time.Second

// listenProxy opens the proxy's socket on ip and a port of [lo, hi]
// (0: ephemeral) and starts relaying to target. ip may be ::1 or ::
// (IPv6 only: the IPv4 side has a socket and rules of its own).
func listenProxy(proto string, ip netip.Addr, lo, hi int, target netip.AddrPort, log *slog.Logger) (*portProxy, int, error) {
	p := &portProxy{proto: proto, target: target, log: log, conns: map[io.Closer]struct{}{}}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	var lastErr error
	for port := lo; port <= hi; port++ {
		addr := netip.AddrPortFrom(ip, uint16(port)).String()
		var err error
		// "tcp6"/"udp6" on :: sets IPV6_V6ONLY: the IPv4 port stays free.
		switch proto {
		case "tcp":
			p.ln, err = net.Listen("tcp6", addr)
		case "udp":
			p.pc, err = net.ListenPacket("udp6", addr)
		default:
			p.cancel()
			return nil, 0, errdefs.Newf(errdefs.NotImplemented, "publishing %s ports on %s is not supported", proto, ip)
		}
		if err != nil {
			lastErr = err
			continue
		}
		var got int
		if p.ln != nil {
			got = p.ln.Addr().(*net.TCPAddr).Port
			p.wg.Add(1)
			go p.serveTCP()
		} else {
			got = p.pc.LocalAddr().(*net.UDPAddr).Port
			p.wg.Add(1)
			go p.serveUDP()
		}
		return p, got, nil
	}
	p.cancel()
	if lo == hi {
		return nil, 0, errdefs.Newf(errdefs.Conflict, "Bind for [%s]:%d failed: port is already allocated (%v)", ip, lo, lastErr)
	}
	return nil, 0, errdefs.Newf(errdefs.Conflict, "Bind for [%s]:%d-%d failed: no port of the range is free (%v)", ip, lo, hi, lastErr)
}

func (p *portProxy) track(c io.Closer) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *portProxy) untrack(c io.Closer) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *portProxy) serveTCP() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("port proxy accept", "err", err)
			}
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
			var d net.Dialer
			up, err := d.DialContext(ctx, "tcp", p.target.String())
			cancel()
			if err != nil {
				p.log.Debug("port proxy dial", "target", p.target, "err", err)
				return
			}
			if !p.track(up) {
				return
			}
			defer p.untrack(up)
			done := make(chan struct{})
			go func() {
				_, _ = io.Copy(up, c)
				_ = up.(*net.TCPConn).CloseWrite()
				close(done)
			}()
			_, _ = io.Copy(c, up)
			_ = c.(*net.TCPConn).CloseWrite()
			<-done
		}()
	}
}

func (p *portProxy) serveUDP() {
	defer p.wg.Done()
	flows := map[string]*net.UDPConn{}
	var mu sync.Mutex
	buf := make([]byte, 65535)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("port proxy read", "err", err)
			}
			return
		}
		mu.Lock()
		up := flows[from.String()]
		mu.Unlock()
		if up == nil {
			up, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.target))
			if err != nil || !p.track(up) {
				continue
			}
			mu.Lock()
			flows[from.String()] = up
			mu.Unlock()
			p.wg.Add(1)
			go func(from net.Addr, up *net.UDPConn) {
				defer p.wg.Done()
				defer func() {
					mu.Lock()
					delete(flows, from.String())
					mu.Unlock()
					p.untrack(up)
				}()
				b := make([]byte, 65535)
				for {
					_ = up.SetReadDeadline(time.Now().Add(udpIdle))
					n, err := up.Read(b)
					if err != nil {
						return
					}
					if _, err := p.pc.WriteTo(b[:n], from); err != nil {
						return
					}
				}
			}(from, up)
		}
		_, _ = up.Write(buf[:n])
	}
}

// Close stops the proxy and ends its connections.
func (p *portProxy) Close() error {
	p.cancel()
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
	}
	if p.pc != nil {
		p.pc.Close()
	}
	p.wg.Wait()
	return nil
}
