// Package network is berthd's network manager: networks (the predefined
// bridge, host and none, user-defined bridge networks — IPv4 or dual-stack
// — and macvlan/ipvlan networks), their IP address management, the
// per-container network sandbox (a network namespace berth creates and
// bind-mounts under the exec root, veth pairs on Linux bridges, a pool of
// sandboxes made ahead of time), port publishing and isolation with
// nftables in berth's own tables, and the embedded DNS server containers
// on user-defined networks reach at 127.0.0.11.
//
// It owns the "networks" and "network-ipam" buckets of the daemon's
// metadata database, the bridges, veth pairs and dummy parents it
// creates, the tables "ip berth_<suffix>" and "ip6 berth6_<suffix>" and
// the netns files under <exec-root>/netns. It must not know about images
// or the container state machine: the container service calls Setup when
// a container starts, Detach and Teardown when it stops, and Restore with
// the sandboxes of the containers that still run after a berthd restart.
// Everything is done over netlink and nfnetlink from Go; no helper binary
// is executed. Linux only.
//
// Entry point: New(Config) builds the Service (creating the predefined
// networks and, unless disabled, the default bridge), then Restore (which
// also starts the sandbox pool); Close at shutdown.
package network
