// Package snapshot keeps unpacked image layers as overlayfs directories,
// keyed by chain ID, and the writable layers of containers and build steps
// on top of them.
//
// It owns <root>/snapshots: one directory per snapshot (fs, plus work for
// writable ones) and a bbolt file with each snapshot's kind, parent,
// labels and usage. Committed snapshots are immutable, shared read-only by
// every image and container whose chain includes them; Active snapshots
// are overlay uppers; Views are read-only looks at a chain.
//
// What it must not do: it never mounts on behalf of its callers inside its
// methods — Prepare, View and Mounts return []Mount descriptions and the
// caller performs them (in the right mount namespace) with MountAll, and
// undoes them with Unmount. It does not parse layers (package archive does)
// nor decide what is garbage (the image service walks and removes); it
// only refuses removals that would break a chain.
//
// Entry point: Open(root), then for a layer
//
//	s.Prepare(ctx, tmpKey, parentChainID, nil)
//	upper, _, _ := s.Upper(ctx, tmpKey)
//	archive.Apply(ctx, upper, layer, archive.ApplyOptions{})
//	s.Commit(ctx, chainID, tmpKey)   // or CommitOn to chain it only now
//
// and for a container rootfs
//
//	mounts, _ := s.Prepare(ctx, containerID, topChainID, labels)
//	snapshot.MountAll(mounts, rootfs)
//
// Errors carry errdefs classes: NotFound, AlreadyExists, FailedPrecondition
// (removing a parent, committing a non-active snapshot, a non-committed
// parent), Unavailable (metadata locked by another process).
package snapshot
