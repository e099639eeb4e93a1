package archive

import (
	"errors"
	"fmt"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Whiteout names of the OCI image layer format.
const (
	whiteoutPrefix = ".wh."
	// whiteoutMetaPrefix starts names reserved for whiteout metadata
	// (aufs leftovers such as .wh..wh.plnk); only the opaque marker is used.
	whiteoutMetaPrefix = ".wh..wh."
	whiteoutOpaque     = ".wh..wh..opq"
)

// Overlay xattrs. The trusted.overlay.* namespace belongs to the kernel's
// overlay driver; a layer must never set it directly.
const (
	overlayXattrPrefix     = "trusted.overlay."
	userOverlayXattrPrefix = "user.overlay."
	opaqueSuffix           = "opaque"
)

// paxXattrPrefix marks xattrs in PAX records, as GNU tar and Docker write them.
const paxXattrPrefix = "SCHILY.xattr."

// ErrUnsafeEntry is wrapped by every refusal of a layer entry that would
// create or modify something outside the target directory, or whose name
// cannot be represented safely. Such errors are of class InvalidArgument.
var ErrUnsafeEntry = errors.New("unsafe layer entry")

// IDMap shifts a range of IDs: container IDs ContainerID..ContainerID+Size-1
// become HostID..HostID+Size-1.
type IDMap struct {
	ContainerID uint32
	HostID      uint32
	Size        uint32
}

// mapID translates a container ID through m; an empty map is the identity.
func mapID(m []IDMap, id int) (int, error) {
	if len(m) == 0 {
		return id, nil
	}
	if id >= 0 {
		for _, r := range m {
			if uint64(id) >= uint64(r.ContainerID) && uint64(id) < uint64(r.ContainerID)+uint64(r.Size) {
				return int(uint64(r.HostID) + uint64(id) - uint64(r.ContainerID)), nil
			}
		}
	}
	return 0, fmt.Errorf("id %d is not mapped", id)
}

// ApplyOptions tunes Apply. The zero value is right for a root daemon.
type ApplyOptions struct {
	// UIDMap and GIDMap shift the owners recorded in the layer (user
	// namespace remapping). Entries owned by an unmapped ID are an error.
	UIDMap, GIDMap []IDMap
	// NoSameOwner leaves files owned by the applying user (rootless).
	NoSameOwner bool
	// UserXattr writes the opaque marker as user.overlay.opaque, for
	// overlay mounts with the userxattr option (rootless). Whiteouts are
	// character devices either way.
	UserXattr bool

	// The fields below serve ApplyIn for `docker cp` (PUT
	// /containers/{id}/archive); image layers leave them unset.

	// Plain unpacks an ordinary tar, not a layer: ".wh." names are plain
	// files, nothing is marked opaque, and a "." entry leaves the target
	// directory as it is (Docker's Untar).
	Plain bool
	// NoOverwriteDirNonDir refuses to replace an existing directory with
	// a non-directory or a non-directory with a directory.
	NoOverwriteDirNonDir bool
	// Owner, when set, owns every entry instead of the IDs in the tar
	// (copyUIDGID).
	Owner *Owner
	// NoDevices refuses character and block device entries (FIFOs stay
	// allowed).
	NoDevices bool
	// CrossMounts lets resolution cross mount points below the root: a
	// running container's volumes seen through /proc/<pid>/root. Without
	// it, reaching another mount is refused like an escape.
	CrossMounts bool
}

// TarOptions tunes TarAt.
type TarOptions struct {
	// SkipPseudoFS archives directories on kernel pseudo filesystems
	// (proc, sysfs, cgroup, debugfs...) as empty directories.
	SkipPseudoFS bool
}

// Owner is a uid and gid every applied entry gets.
type Owner struct{ UID, GID int }

// SkippedXattr is an extended attribute of the layer that was not applied:
// the filesystem refused it (security.* without support, user.* on a
// symlink...), or it is reserved (trusted.overlay.*).
type SkippedXattr struct {
	Path   string // entry name, cleaned, relative to the layer root
	Key    string
	Reason string
}

// ApplyResult describes one applied layer.
type ApplyResult struct {
	// DiffID is the sha256 of the uncompressed tar stream, as it was read
	// (including the end-of-archive blocks and any padding after them).
	DiffID digest.Digest
	// Size is the length of the uncompressed stream in bytes.
	Size int64
	// Compression, CompressedDigest and CompressedSize are filled when the
	// reader given to Apply came from DecompressStream; they describe the
	// blob as stored or downloaded. For an uncompressed blob they equal
	// DiffID and Size.
	Compression      Compression
	CompressedDigest digest.Digest
	CompressedSize   int64
	// Entries counts the tar entries processed.
	Entries int
	// SkippedXattrs lists attributes that were not applied.
	SkippedXattrs []SkippedXattr
}

// unsafeEntry builds the error for a refused entry.
func unsafeEntry(name, format string, args ...any) error {
	return errdefs.With(errdefs.InvalidArgument,
		fmt.Errorf("layer entry %q: %s: %w", shorten(name), fmt.Sprintf(format, args...), ErrUnsafeEntry))
}

// entryError wraps a failure to apply one entry.
func entryError(name string, err error) error {
	return fmt.Errorf("layer entry %q: %w", shorten(name), err)
}

// shorten keeps hostile names from flooding logs.
func shorten(name string) string {
	if len(name) > 200 {
		return name[:100] + "..." + name[len(name)-50:]
	}
	return name
}

// DiffStats is what a diff walk saw of the upper directory, besides the
// layer it wrote.
type DiffStats struct {
	// NonDirs counts the entries that are not directories (files,
	// symlinks, hard links, whiteouts, devices...).
	NonDirs int
	// Skipped: skip left something out, so Size and Inodes do not cover
	// the whole directory.
	Skipped bool
	// Size and Inodes are the upper's disk usage as du counts it: the
	// blocks of every inode once, the top directory included.
	Size, Inodes int64

	seen map[uint64]struct{}
}
