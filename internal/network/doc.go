// Package network is berthd's network manager: networks (the predefined
// bridge, host and none, and user-defined bridge networks), their IP
// address management, the per-container network sandbox (a network
// namespace berth creates and bind-mounts under the exec root, veth pairs
// on Linux bridges), port publishing and isolation with nftables in
// berth's own table, and the embedded DNS server containers on
// user-defined networks reach at 127.0.0.11.
//
// It owns the "networks" and "network-ipam" buckets of the daemon's
// metadata database, the bridges and veth pairs it creates, the table
// "berth_<suffix>" (ip family) and the netns files under
// <exec-root>/netns. It must not know about images or the container
// state machine: the container service calls Setup when a container
// starts, Teardown when it stops, and Restore with the sandboxes of the
// containers that still run after a berthd restart. Everything is done
// over netlink and nfnetlink from Go; no helper binary is executed.
//
// Entry point: New(Config) builds the Service (creating the predefined
// networks and, unless disabled, the default bridge), then Restore.
package network
