// Package archive converts between image layer tar streams and directories
// on disk: it unpacks layers into overlay layer directories, and writes the
// layer of a changed overlay upper directory or the tar of a whole tree.
//
// It owns the layer file format (OCI image layers: tar, optionally gzip or
// zstd, with .wh. whiteouts) and its translation to overlayfs form (0:0
// character devices and the trusted.overlay.opaque xattr), the diffID and
// blob digests computed while streaming, and layer compression.
//
// Safety is its first job: a layer is untrusted input, and Apply must never
// create or change anything outside the directory it is given. Every path is
// resolved by the kernel with that directory as root (openat2
// RESOLVE_IN_ROOT), final elements are never followed, and entries that
// climb out with "..", hardlink outside, or put a device behind a symlink
// are refused (ErrUnsafeEntry, class InvalidArgument). Diff and Tar read
// through file descriptors without following symlinks, so a running
// container cannot redirect them to host files.
//
// It must not know about snapshots, content stores, images or containers;
// it must not mount anything. Callers choose the directories.
//
// Entry points: DecompressStream then Apply to unpack a blob in one pass
// (the result carries diffID and blob digest); Diff to produce a layer from
// an overlay upper; Tar to export a tree; Compress to encode a layer (gzip is
// compressed in parallel, deterministically).
package archive
