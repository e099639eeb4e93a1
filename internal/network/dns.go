package network

import (
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// The embedded DNS server: each container on a user-defined network has
// one, listening on 127.0.0.11:53 (UDP and TCP) inside the container's
// own network namespace (the sockets are opened there, so no NAT rule is
// needed). It answers A, AAAA and PTR questions for the containers
// (name, aliases, short ID, "<name>.<network>") of the networks the
// asking container is on, with the addresses in a rotating order (round
// robin when several containers share an alias); every other question is
// forwarded to the upstream servers from the host's network namespace —
// UDP first, TCP when the answer is truncated or the question came over
// TCP, 2 s per server — and answered SERVFAIL when none answers.

// dnsServer is one sandbox's pair of listeners.
type dnsServer struct {
	udp, tcp *dns.Server
}

const dnsAddr = "127.0.0.11:53"

// dnsTTL is the TTL of the embedded server's own answers (Docker's).
const dnsTTL = 600

func (s *Service) startDNS(sb *sandbox) error {
	var pc net.PacketConn
	var l net.Listener
	err := inNetNS(sb.nsPath, func() error {
		var err error
		if pc, err = net.ListenPacket("udp4", dnsAddr); err != nil {
			return err
		}
		if l, err = net.Listen("tcp4", dnsAddr); err != nil {
			pc.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { s.serveDNS(sb, w, q) })
	srv := &dnsServer{udp: &dns.Server{PacketConn: pc, Handler: h}, tcp: &dns.Server{Listener: l, Handler: h}}
	go func() { _ = srv.udp.ActivateAndServe() }()
	go func() { _ = srv.tcp.ActivateAndServe() }()
	s.mu.Lock()
	if sb.dns != nil {
		s.mu.Unlock()
		srv.close()
		return nil
	}
	sb.dns = srv
	s.mu.Unlock()
	return nil
}

func (d *dnsServer) close() {
	if d.udp.PacketConn != nil {
		d.udp.PacketConn.Close()
	}
	if d.tcp.Listener != nil {
		d.tcp.Listener.Close()
	}
}

func (sb *sandbox) closeDNS() {
	if sb.dns != nil {
		sb.dns.close()
		sb.dns = nil
	}
}

func (s *Service) serveDNS(sb *sandbox, w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(q, dns.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	question := q.Question[0]
	if m := s.answerLocal(sb, q, question); m != nil {
		_ = w.WriteMsg(m)
		return
	}
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	s.mu.Lock()
	ups := sb.upstreams
	internalOnly := true
	for _, ep := range sb.endpoints {
		if !ep.net.Internal {
			internalOnly = false
		}
	}
	s.mu.Unlock()
	if !internalOnly {
		if m := forward(q, ups, tcp); m != nil {
			m.Id = q.Id
			if !tcp && m.Len() > 512 && q.IsEdns0() == nil {
				m.Truncate(512)
			}
			_ = w.WriteMsg(m)
			return
		}
	}
	m := new(dns.Msg)
	m.SetRcode(q, dns.RcodeServerFailure)
	_ = w.WriteMsg(m)
}

// answerLocal answers from the containers of sb's user-defined networks,
// or returns nil when the name is not one of theirs.
func (s *Service) answerLocal(sb *sandbox, q *dns.Msg, question dns.Question) *dns.Msg {
	name := lowerTrim(question.Name)
	switch question.Qtype {
	case dns.TypeA, dns.TypeAAAA:
		ips, ips6 := s.resolveName(sb, name)
		if ips == nil {
			return nil
		}
		if question.Qtype == dns.TypeAAAA {
			ips = ips6
		}
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		m.RecursionAvailable = true
		// Rotate: clients mostly take the first answer.
		if len(ips) > 1 {
			k := rand.IntN(len(ips))
			ips = append(ips[k:], ips[:k]...)
		}
		for _, ip := range ips {
			hdr := dns.RR_Header{Name: question.Name, Rrtype: question.Qtype, Class: dns.ClassINET, Ttl: dnsTTL}
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr, A: ip.AsSlice()})
			} else {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr, AAAA: ip.AsSlice()})
			}
		}
		return m
	case dns.TypePTR:
		ptr := s.resolveAddr(sb, name)
		if ptr == "" {
			return nil
		}
		m := new(dns.Msg)
		m.SetReply(q)
		m.Authoritative = true
		m.RecursionAvailable = true
		m.Answer = append(m.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: dnsTTL}, Ptr: ptr})
		return m
	}
	return nil
}

// resolveName returns the IPv4 and IPv6 addresses name has on the
// user-defined networks of sb (nil IPv4 list: unknown). "name.network"
// is scoped to that network.
func (s *Service) resolveName(sb *sandbox, name string) ([]netip.Addr, []netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out, out6 []netip.Addr
	for _, nid := range sb.order {
		ep := sb.endpoints[nid]
		if ep == nil || !ep.net.userDefined() {
			continue
		}
		n := name
		if strings.HasSuffix(n, "."+strings.ToLower(ep.net.Name)) {
			n = strings.TrimSuffix(n, "."+strings.ToLower(ep.net.Name))
		}
		for _, other := range s.sandboxes {
			oep, ok := other.endpoints[nid]
			if !ok || other.gone {
				continue
			}
			if matchName(other, oep, n) {
				out = append(out, oep.ip)
				if oep.ip6.IsValid() {
					out6 = append(out6, oep.ip6)
				}
			}
		}
		if len(out) > 0 {
			return out, out6
		}
	}
	return nil, nil
}

func matchName(sb *sandbox, ep *endpoint, n string) bool {
	if strings.ToLower(sb.name) == n || (len(n) >= 12 && strings.HasPrefix(sb.id, n)) {
		return true
	}
	for _, a := range ep.aliases {
		if strings.ToLower(a) == n {
			return true
		}
	}
	return false
}

// resolveAddr answers a PTR name ("2.0.18.172.in-addr.arpa").
func (s *Service) resolveAddr(sb *sandbox, name string) string {
	var ip netip.Addr
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa"); ok {
		f := strings.Split(rest, ".")
		if len(f) != 4 {
			return ""
		}
		a, err := netip.ParseAddr(f[3] + "." + f[2] + "." + f[1] + "." + f[0])
		if err != nil {
			return ""
		}
		ip = a
	} else if rest, ok := strings.CutSuffix(name, ".ip6.arpa"); ok {
		f := strings.Split(rest, ".")
		if len(f) != 32 {
			return ""
		}
		var b strings.Builder
		for i := 31; i >= 0; i-- {
			b.WriteString(f[i])
			if i%4 == 0 && i > 0 {
				b.WriteByte(':')
			}
		}
		a, err := netip.ParseAddr(b.String())
		if err != nil {
			return ""
		}
		ip = a
	} else {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, nid := range sb.order {
		ep := sb.endpoints[nid]
		if ep == nil || !ep.net.userDefined() {
			continue
		}
		for _, other := range s.sandboxes {
			if oep, ok := other.endpoints[nid]; ok && (oep.ip == ip || oep.ip6 == ip) {
				return other.name + "." + ep.net.Name + "."
			}
		}
	}
	return ""
}

// forward asks each upstream in turn; nil when none answered.
func forward(q *dns.Msg, upstreams []string, tcp bool) *dns.Msg {
	for _, u := range upstreams {
		netw := "udp"
		if tcp {
			netw = "tcp"
		}
		c := &dns.Client{Net: netw, Timeout: 2 * time.Second}
		m, _, err := c.Exchange(q, u)
		if err == nil && m.Truncated && netw == "udp" {
			c.Net = "tcp"
			if mt, _, err := c.Exchange(q, u); err == nil {
				m = mt
			}
		}
		if err == nil && m != nil {
			return m
		}
	}
	return nil
}

// HostNameservers are the host's /etc/resolv.conf nameservers, without
// loopback ones (unreachable from a container's namespace).
func HostNameservers() []string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() {
				out = append(out, a.String())
			}
		}
	}
	return out
}
