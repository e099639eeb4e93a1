// Package volume owns berth's volumes: the `local` driver's named and
// anonymous volumes under <data-root>/volumes/<name>/_data, their metadata
// (the "volumes" bucket of the daemon's bbolt database, one transaction per
// change), which containers reference each one, the driver mounts of
// volumes created with type/device/o options, and copy-up of an image's
// content into an empty volume.
//
// Entry point: New(Config), then Restore once the container service has
// re-registered the references and active mounts of its containers.
//
// Vocabulary and lifecycle:
//
//   - A reference (AcquireAll/Release) is a container that names the volume
//     in its mount points, from create until it is removed. A referenced
//     volume cannot be removed (Conflict, "volume is in use"), with or
//     without force, as with Docker; it is not dangling and not pruned.
//   - An active user (Mount/Unmount) is a running container. A volume
//     with driver options (type, device, o) is mounted on its _data
//     directory when its first user starts and unmounted when the last
//     one stops, as Docker's local driver does.
//   - Anonymous volumes have 64-hex names and the label
//     com.docker.volume.anonymous (Docker 23+): prune removes only them
//     unless the all=true filter is given.
//
// What it must not do: know about containers' configuration (the container
// service resolves -v, --mount and --volumes-from and calls AcquireAll and
// Mount), or remove anything through a mount: a volume directory that
// still has a mount under it after unmounting is never deleted.
//
// Safety: a name matches [a-zA-Z0-9][a-zA-Z0-9_.-]+ so it is one path
// component that cannot be "." or ".."; copy-up resolves the source inside
// the container's root (openat2 RESOLVE_IN_ROOT) and creates everything in
// the volume relative to directory descriptors with O_NOFOLLOW, so no
// symlink, in the image or planted in the volume, can make it read or
// write a host path; subpaths are opened beneath the volume with every
// symlink refused (OpenSubpath).
package volume
