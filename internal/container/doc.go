// Package container is berthd's container service: it owns every
// container's record (configuration and state), its lifecycle state
// machine (created → running ⇄ paused → exited → removed), the in-memory
// index that ps, inspect and wait are served from, and the link to each
// container's berth-shim.
//
// What it owns: the "containers" and "container-names" buckets of the
// metadata database, <data-root>/containers/<id>/ (logs, hostname, hosts,
// resolv.conf) and <exec-root>/c/<id>/ (the OCI bundle, the mounted
// rootfs, the shim's state). What it must not do: speak HTTP (the API
// routers call it), pull images (the daemon resolves or pulls before
// create), or run container processes itself (the shim does, so that
// containers outlive berthd).
//
// Entry points: New builds the service; Restore re-attaches to the shims
// left by a previous berthd (live restore); Create, Start, Stop, Kill,
// Wait, Remove, Attach, Logs, Exec* and List/Inspect serve the Engine API;
// StatPath, ArchivePath and ExtractToDir serve docker cp (archive_linux.go:
// every path resolved by the kernel inside the container's root).
//
// Crash safety: a container record is written in one bbolt transaction
// together with its name reservation, before anything is created on disk;
// on start-up, records whose state says running are reconciled with their
// shim (Connect) or its exit file, and directories without a record are
// removed. A kill -9 at any point therefore leaves either no container or
// a whole one. What is synced and what is not: the record at create and
// every configuration change are bbolt transactions (synced); the run
// state of a container without a restart policy (start, exit) and a
// removal's tombstone go to <data-root>/containers/<id>/runstate without
// an fsync (runstate.go, deletelater.go): a kill -9 loses none of it, a
// power loss only makes such a container come back stopped (or, removed,
// whole). A writable snapshot is prepared ahead for the next create
// (snapspare.go).
package container
