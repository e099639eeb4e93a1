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
// Entry points: Open a Runtime on a state root, then Create/Start/Run/Exec/
// Kill/Delete/State/List. A binary that embeds the runtime must call
// MaybeInit at the very start of main (the container init and exec processes
// re-execute the binary) and import package nsenter for its side effect.
//
// The parent/child handshake is documented in sync_linux.go.
package runtime
