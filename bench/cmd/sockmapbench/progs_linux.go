package main

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The programs, written with cilium/ebpf's asm package (no C).
//
// svc map: key {netns cookie u64, ip u32 (network order), port u32 (network
// order in the low 16 bits, as bpf_sock_addr.user_port reads)}, value {ip
// u32, port u32} in the same encoding: the backend a connect() to the key is
// rewritten to.
//
// socks (sockhash): key {local ip u32, remote ip u32, local port u32 (host
// order), remote port u32 (host order)} of an established IPv4 TCP socket.

type objs struct {
	svc, socks, stats    *ebpf.Map
	connect, ops, msgPrg *ebpf.Program
}

func (o *objs) Close() {
	for _, p := range []*ebpf.Program{o.connect, o.ops, o.msgPrg} {
		if p != nil {
			p.Close()
		}
	}
	for _, m := range []*ebpf.Map{o.svc, o.socks, o.stats} {
		if m != nil {
			m.Close()
		}
	}
}

// offsets in struct bpf_sock_addr
const (
	saUserIP4   = 4
	saUserPort  = 24
	saType      = 32
	sockStream  = 1
	afInet      = 2
	opActiveEst = 4 // BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB
	opPassEst   = 5 // BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB
)

// offsets in struct bpf_sock_ops
const (
	soOp        = 0
	soFamily    = 20
	soRemoteIP4 = 24
	soLocalIP4  = 28
	soRemotePrt = 64 // network order port << 16 (read as a host u32)
	soLocalPrt  = 68 // host order
)

// offsets in struct sk_msg_md
const (
	mdFamily    = 16
	mdRemoteIP4 = 20
	mdLocalIP4  = 24
	mdRemotePrt = 60
	mdLocalPrt  = 64
)

func load() (*objs, error) {
	o := &objs{}
	var err error
	if o.svc, err = ebpf.NewMap(&ebpf.MapSpec{Name: "smb_svc", Type: ebpf.Hash, KeySize: 16, ValueSize: 8, MaxEntries: 1024}); err != nil {
		return nil, err
	}
	if o.socks, err = ebpf.NewMap(&ebpf.MapSpec{Name: "smb_socks", Type: ebpf.SockHash, KeySize: 16, ValueSize: 4, MaxEntries: 65535}); err != nil {
		o.Close()
		return nil, err
	}
	// stats[0]: rewritten connects, [1]: sockets added to socks.
	if o.stats, err = ebpf.NewMap(&ebpf.MapSpec{Name: "smb_stats", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2}); err != nil {
		o.Close()
		return nil, err
	}

	connect := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // ctx
		asm.LoadMem(asm.R1, asm.R6, saType, asm.Word),
		asm.JNE.Imm(asm.R1, sockStream, "out"),
		// key on the stack at fp-16
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnGetNetnsCookie.Call(),
		asm.StoreMem(asm.RFP, -16, asm.R0, asm.DWord),
		asm.LoadMem(asm.R1, asm.R6, saUserIP4, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, saUserPort, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, o.svc.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.R6, saUserIP4, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, 4, asm.Word),
		asm.StoreMem(asm.R6, saUserPort, asm.R1, asm.Word),
		// stats[0]++
		asm.StoreImm(asm.RFP, -20, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, o.stats.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -20),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("out"),
		asm.Return(),
	}

	ops := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R1, asm.R6, soOp, asm.Word),
		asm.JEq.Imm(asm.R1, opActiveEst, "est"),
		asm.JEq.Imm(asm.R1, opPassEst, "est"),
		asm.Ja.Label("out"),
		asm.LoadMem(asm.R1, asm.R6, soFamily, asm.Word).WithSymbol("est"),
		asm.JNE.Imm(asm.R1, afInet, "out"),
		asm.LoadMem(asm.R1, asm.R6, soLocalIP4, asm.Word),
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, soRemoteIP4, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, soLocalPrt, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, soRemotePrt, asm.Word),
		asm.HostTo(asm.BE, asm.R1, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, o.socks.FD()),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, 0), // BPF_ANY
		asm.FnSockHashUpdate.Call(),
		asm.JNE.Imm(asm.R0, 0, "out"),
		asm.StoreImm(asm.RFP, -20, 1, asm.Word),
		asm.LoadMapPtr(asm.R1, o.stats.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -20),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("out"),
		asm.Return(),
	}

	msg := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R1, asm.R6, mdFamily, asm.Word),
		asm.JNE.Imm(asm.R1, afInet, "out"),
		// the peer's key: our remote is its local
		asm.LoadMem(asm.R1, asm.R6, mdRemoteIP4, asm.Word),
		asm.StoreMem(asm.RFP, -16, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, mdLocalIP4, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, mdRemotePrt, asm.Word),
		asm.HostTo(asm.BE, asm.R1, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, mdLocalPrt, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, o.socks.FD()),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, 1), // BPF_F_INGRESS
		asm.FnMsgRedirectHash.Call(),
		// SK_PASS whatever the helper says: no peer, plain TCP.
		asm.Mov.Imm(asm.R0, 1).WithSymbol("out"),
		asm.Return(),
	}

	mk := func(name string, t ebpf.ProgramType, at ebpf.AttachType, ins asm.Instructions) (*ebpf.Program, error) {
		p, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: name, Type: t, AttachType: at, Instructions: ins, License: "GPL"})
		if err != nil {
			return nil, fmt.Errorf("loading %s: %w", name, err)
		}
		return p, nil
	}
	if o.connect, err = mk("smb_connect4", ebpf.CGroupSockAddr, ebpf.AttachCGroupInet4Connect, connect); err != nil {
		o.Close()
		return nil, err
	}
	if o.ops, err = mk("smb_sockops", ebpf.SockOps, ebpf.AttachCGroupSockOps, ops); err != nil {
		o.Close()
		return nil, err
	}
	if o.msgPrg, err = mk("smb_skmsg", ebpf.SkMsg, ebpf.AttachSkMsgVerdict, msg); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}
