// Package image is berth's image service: pull, push, tag, remove, list,
// inspect, history, prune and garbage collection, over three stores it
// composes — the content store (blobs by digest, package content), the
// overlay snapshotter (unpacked layers keyed by chain ID, package
// snapshot) and the metadata database (image records and references,
// package metadata).
//
// It owns the image records and the rules that keep the stores consistent:
// a blob or snapshot is kept exactly while an image record (or a caller-
// declared holder, such as a container's writable snapshot) reaches it; GC
// is mark and sweep from the records, so removing every image and
// container and pruning leaves nothing behind. It must not know about the
// Engine API's HTTP side or containers' lifecycle; results use the Engine
// API's Go types so the JSON matches Docker's by construction.
//
// Entry point: New, then the Service methods. Pull streams every layer's
// download, decompression and unpacking concurrently across layers.
package image
