// Package cgroup creates, limits, freezes, inspects and removes the control
// groups of berth containers.
//
// # What it owns
//
// Everything berth writes below /sys/fs/cgroup for a container: the
// container's directory in every mounted hierarchy, the translation of the
// OCI specs.LinuxResources into cgroup files, the devices allowlist (default
// deny; the v1 devices controller or the v2 eBPF filter), the freezer, and
// reading usage back. It works on the three host layouts, reported by Mode:
//
//   - "v1": one hierarchy per controller under /sys/fs/cgroup;
//   - "v2": the single unified hierarchy at /sys/fs/cgroup;
//   - "hybrid": v1 controllers plus a cgroup2 mount at
//     /sys/fs/cgroup/unified. berth joins both: the limits go to the v1
//     controllers, and the unified directory receives whatever only it can
//     hold (unified resources, hugetlb when that controller lives there).
//
// The heavy lifting is done by github.com/opencontainers/cgroups: its fs
// (v1) and fs2 (v2) managers and its devices package. Only the cgroupfs
// driver is supported; systemd-style cgroupsPath values are refused.
//
// # What it must not do
//
// It never kills, signals or reaps processes: Destroy expects the runtime to
// have killed the container first and only removes directories. It never
// talks to systemd and keeps no state on disk: the runtime persists Paths() in
// its container state and calls Load later. Outside the container's own
// directories it only creates missing parents (never removed, since other
// containers share them), fills an empty v1 cpuset parent from its own
// parent, and enables the available controllers in the cgroup.subtree_control
// of the unified ancestors, which v2 requires for delegation.
//
// # Entry points
//
// New(cgroupsPath, containerID, resources) builds a Manager for a new
// container; the runtime then calls Apply(pid) to create the cgroups and move
// the container's init in, and Set(resources) to write the limits. Later
// commands (state, kill, pause, update, delete) rebuild the Manager with
// Load(savedPaths). Mode tells which layout the host has.
//
// Set semantics worth knowing: a nil field leaves the current value alone;
// memory/cpu quota 0 also means "unchanged"; a pids limit <= 0 means
// unlimited; the devices cgroup is reprogrammed when Devices is non-nil and
// on the first Set of a manager made by New (default deny, then the rules,
// then DefaultDeviceRules). Settings the host cannot hold are dropped
// silently only where the OCI spec makes them best effort (net_cls/net_prio
// without those controllers, swappiness and disableOOMKiller on v2, cpu idle
// on kernels without cpu.idle, kernel memory everywhere); anything else is
// an error raised before the first write.
package cgroup
