// Package runtime turns an OCI bundle (config.json plus a root filesystem)
// into an isolated Linux process, following the OCI runtime specification
// v1.2 and runc's observable behaviour.
//
// It owns the container lifecycle on one host below the engine: creating
// namespaces, setting up the root filesystem, cgroups, devices, capabilities,
// seccomp and hooks, and keeping a small state directory per container under
// a root (default /run/berth-runtime). It must not know about images,
// networks or the Engine API; the engine hands it a bundle.
//
// Entry points: New opens a Runtime on a state root, then Create/Start/Run/
// Exec/Kill/Delete/State/List. The container side (init and exec
// processes) is package initproc, run by the small cmd/berth-runtime-init
// binary; a binary that may act as its own init instead must call
// initproc.Main at the very start of main and import package nsenter.
//
// The parent/child handshake is documented in initproc/sync_linux.go.
package runtime
