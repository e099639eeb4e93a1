package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// portRule is one published port: traffic to HostIP:HostPort (any local
// address when HostIP is unspecified) goes to CIP:CPort.
type portRule struct {
	HostIP   netip.Addr
	HostPort uint16
	Proto    string // "tcp", "udp" or "sctp"
	CIP      netip.Addr
	CPort    uint16
}

// firewall is berth's nftables table ("ip berth_<suffix>"). The whole
// table is rewritten in one netlink batch (delete and re-add inside one
// transaction), so every change, and the rebuild at start, is atomic:
// packets see either the old or the new rules, never none. Other tables
// on the host are never touched.
//
//	chain prerouting  nat/prerouting -100:  fib daddr type local jump ports
//	chain output      nat/output -100:      fib daddr type local jump ports
//	chain ports:      [ip daddr H] meta l4proto P th dport X dnat to C:Y
//	chain postrouting nat/postrouting 100:  ip saddr C ip daddr C P dport Y masquerade (hairpin)
//	                                        ip saddr 127.0.0.0/8 oifname BR masquerade (localhost)
//	                                        ip saddr SUBNET oifname != BR masquerade (not internal)
//	chain forward     filter/forward 0:     internal: iifname BR oifname != BR drop (and back)
//	                                        ct status dnat accept
//	                                        iifname A oifname B drop (every pair of networks)
//	                                        icc off: iifname BR oifname BR drop
type firewall struct {
	table string
}

func (f *firewall) tableRef() *nftables.Table {
	return &nftables.Table{Name: f.table, Family: nftables.TableFamilyIPv4}
}

// sync replaces the table's content with the rules for nets and ports.
func (f *firewall) sync(nets []*Record, ports []portRule) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := f.tableRef()
	// add + delete + add: deleting a table that does not exist would
	// fail the batch.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	pre := c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
	out := c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
	portsChain := c.AddChain(&nftables.Chain{Name: "ports", Table: t})
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})

	for _, ch := range []*nftables.Chain{pre, out} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: native32(unix.RTN_LOCAL)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: "ports"},
		}})
	}
	var ports6 []portRule
	ports = slices.DeleteFunc(slices.Clone(ports), func(p portRule) bool {
		if p.CIP.Is6() {
			ports6 = append(ports6, p)
			return true
		}
		return false
	})
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].HostPort != ports[j].HostPort {
			return ports[i].HostPort < ports[j].HostPort
		}
		return ports[i].HostIP.Less(ports[j].HostIP)
	})
	for _, p := range ports {
		proto := protoNum(p.Proto)
		var ex []expr.Any
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			ex = append(ex, daddr(), eq(p.HostIP.AsSlice()))
		}
		ex = append(ex,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq([]byte{proto}),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, eq(be16(p.HostPort)),
			&expr.Immediate{Register: 1, Data: p.CIP.AsSlice()},
			&expr.Immediate{Register: 2, Data: be16(p.CPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		)
		c.AddRule(&nftables.Rule{Table: t, Chain: portsChain, Exprs: ex})
		// Hairpin: a container reaching its own published port.
		c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: []expr.Any{
			saddr(), eq(p.CIP.AsSlice()), daddr(), eq(p.CIP.AsSlice()),
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq([]byte{proto}),
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, eq(be16(p.CPort)),
			&expr.Masq{},
		}})
	}
	var bridges []*Record
	for _, n := range nets {
		if n.Driver == "bridge" && n.Bridge != "" {
			bridges = append(bridges, n)
		}
	}
	for _, n := range bridges {
		// From 127.0.0.1 (published ports on the host's loopback): the
		// container could not answer 127.0.0.1, so the source becomes the
		// bridge's address.
		c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: append(inPrefix(saddrOffset, netip.MustParsePrefix("127.0.0.0/8")),
			oif(), eq(ifname(n.Bridge)), &expr.Masq{})})
		if n.Masquerade && !n.Internal {
			c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: append(inPrefix(saddrOffset, n.Subnet),
				oif(), neq(ifname(n.Bridge)), &expr.Masq{})})
		}
	}
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	for _, n := range bridges {
		if n.Internal {
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{iif(), eq(ifname(n.Bridge)), oif(), neq(ifname(n.Bridge)), drop}})
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{oif(), eq(ifname(n.Bridge)), iif(), neq(ifname(n.Bridge)), drop}})
		}
	}
	// Published ports stay reachable from other networks.
	c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(ipsDstNAT), Xor: native32(0)},
		neq(native32(0)),
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	for _, a := range bridges {
		for _, b := range bridges {
			if a != b {
				c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{iif(), eq(ifname(a.Bridge)), oif(), eq(ifname(b.Bridge)), drop}})
			}
		}
		if !a.ICC {
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{iif(), eq(ifname(a.Bridge)), oif(), eq(ifname(a.Bridge)), drop}})
		}
	}
	f.rules6(c, bridges, ports6)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: update table %s: %w", f.table, err)
	}
	return nil
}

// table6 is the IPv6 table ("ip6 berth6_<suffix>"), present while a
// dual-stack network exists: masquerade of each IPv6 subnet leaving its
// bridge, and the same isolation as the IPv4 table. Published ports are
// IPv4 only.
func (f *firewall) table6() *nftables.Table {
	return &nftables.Table{Name: "berth6" + f.table[len("berth"):], Family: nftables.TableFamilyIPv6}
}

// rules6 adds the IPv6 table's deletion and, when a network has an
// IPv6 subnet, its new content to batch c.
func (f *firewall) rules6(c *nftables.Conn, bridges []*Record, ports []portRule) {
	t := f.table6()
	c.AddTable(t)
	c.DelTable(t)
	var v6 []*Record
	for _, n := range bridges {
		if n.Subnet6.IsValid() {
			v6 = append(v6, n)
		}
	}
	if len(v6) == 0 {
		return
	}
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter, Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	if len(ports) > 0 {
		pre := c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest})
		out := c.AddChain(&nftables.Chain{Name: "output", Table: t, Type: nftables.ChainTypeNAT, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest})
		portsChain := c.AddChain(&nftables.Chain{Name: "ports", Table: t})
		for _, ch := range []*nftables.Chain{pre, out} {
			// Not ::1: a DNATed packet from the loopback address could
			// not leave the host; berthd's proxy serves those.
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}, neq(netip.IPv6Loopback().AsSlice()),
				&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: native32(unix.RTN_LOCAL)},
				&expr.Verdict{Kind: expr.VerdictJump, Chain: "ports"},
			}})
		}
		for _, p := range ports {
			proto := protoNum(p.Proto)
			var ex []expr.Any
			if !p.HostIP.IsUnspecified() {
				ex = append(ex, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}, eq(p.HostIP.AsSlice()))
			}
			ex = append(ex,
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq([]byte{proto}),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, eq(be16(p.HostPort)),
				&expr.Immediate{Register: 1, Data: p.CIP.AsSlice()},
				&expr.Immediate{Register: 2, Data: be16(p.CPort)},
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV6, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
			)
			c.AddRule(&nftables.Rule{Table: t, Chain: portsChain, Exprs: ex})
			c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: []expr.Any{
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 8, Len: 16}, eq(p.CIP.AsSlice()),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 16}, eq(p.CIP.AsSlice()),
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, eq([]byte{proto}),
				&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2}, eq(be16(p.CPort)),
				&expr.Masq{},
			}})
		}
		// Published ports stay reachable from other networks.
		c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{
			&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: native32(ipsDstNAT), Xor: native32(0)},
			neq(native32(0)),
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
	}
	for _, n := range v6 {
		if n.Masquerade && !n.Internal {
			c.AddRule(&nftables.Rule{Table: t, Chain: post, Exprs: append(inPrefix6(8, n.Subnet6),
				oif(), neq(ifname(n.Bridge)), &expr.Masq{})})
		}
		if n.Internal {
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{iif(), eq(ifname(n.Bridge)), oif(), neq(ifname(n.Bridge)), drop}})
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{oif(), eq(ifname(n.Bridge)), iif(), neq(ifname(n.Bridge)), drop}})
		}
	}
	for _, a := range v6 {
		for _, b := range bridges {
			if a != b {
				c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{iif(), eq(ifname(a.Bridge)), oif(), eq(ifname(b.Bridge)), drop}})
				c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{iif(), eq(ifname(b.Bridge)), oif(), eq(ifname(a.Bridge)), drop}})
			}
		}
		if !a.ICC {
			c.AddRule(&nftables.Rule{Table: t, Chain: fwd, Exprs: []expr.Any{iif(), eq(ifname(a.Bridge)), oif(), eq(ifname(a.Bridge)), drop}})
		}
	}
}

func inPrefix6(off uint32, p netip.Prefix) []expr.Any {
	mask := ipNet(p).Mask
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 16},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 16, Mask: []byte(mask), Xor: make([]byte, 16)},
		eq(p.Masked().Addr().AsSlice()),
	}
}

// remove deletes the table.
func (f *firewall) remove() error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	defer c.CloseLasting()
	t := f.tableRef()
	c.AddTable(t)
	c.DelTable(t)
	f.rules6(c, nil, nil)
	return c.Flush()
}

// ipsDstNAT is the conntrack status bit of DNATed connections.
const ipsDstNAT = 1 << 5

const (
	saddrOffset = 12
	daddrOffset = 16
)

func saddr() expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: saddrOffset, Len: 4}
}

func daddr() expr.Any {
	return &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: daddrOffset, Len: 4}
}

func inPrefix(off uint32, p netip.Prefix) []expr.Any {
	mask := ipNet(p).Mask
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte(mask), Xor: []byte{0, 0, 0, 0}},
		eq(p.Masked().Addr().AsSlice()),
	}
}

func iif() expr.Any { return &expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1} }
func oif() expr.Any { return &expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1} }

func eq(b []byte) expr.Any  { return &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b} }
func neq(b []byte) expr.Any { return &expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: b} }

func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

func native32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// TableExists reports whether an ip or ip6 table named name exists
// (tests check that nothing is left behind; the IPv6 table of
// TableName(root) is named with "berth6" in place of "berth").
func TableExists(name string) bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	defer c.CloseLasting()
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		ts, err := c.ListTablesOfFamily(fam)
		if err != nil {
			continue
		}
		for _, t := range ts {
			if t.Name == name || (strings.HasPrefix(name, "berth") && t.Name == "berth6"+name[len("berth"):]) {
				return true
			}
		}
	}
	return false
}

// protoNum is the IP protocol number of a published port's protocol.
// SCTP's destination port is at the same offset as TCP's and UDP's.
func protoNum(p string) byte {
	switch p {
	case "udp":
		return unix.IPPROTO_UDP
	case "sctp":
		return unix.IPPROTO_SCTP
	}
	return unix.IPPROTO_TCP
}
