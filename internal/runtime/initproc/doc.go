// Package initproc is the container side of the runtime: the process that
// the runtime starts with the container's namespaces and that ends as the
// container's program (or an exec'd process) through execve.
//
// It owns everything done inside the container before execve: the root
// filesystem (mounts resolved inside the root, /dev, pivot_root, masked and
// read-only paths), hostname and sysctls, the console, and the process
// attributes (rlimits, LSM labels, credentials, capabilities,
// no_new_privs, seccomp). It also defines the sync protocol both sides
// speak (sync_linux.go). It must stay small: it is loaded once per
// container, so it never imports the cgroup manager, the CLI or anything
// the runtime parent alone needs.
//
// Entry point: Main, called first thing by cmd/berth-runtime-init (and by
// cmd/berth-runtime, which can act as its own init).
package initproc
