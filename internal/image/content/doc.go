// Package content is berth's content store: immutable blobs (layers,
// configs, manifests, indexes) addressed by their sha256 digest, written
// through resumable, digest-verified ingests.
//
// Layout under the root directory:
//
//	blobs/sha256/<hex>             committed blobs, mode 0444, never rewritten
//	ingest/<sha256(ref)>/data      bytes written so far for an in-progress ingest
//	ingest/<sha256(ref)>/ref       the caller's ingest name
//	ingest/<sha256(ref)>/startedat when the ingest began (RFC 3339)
//	ingest/<sha256(ref)>/hashstate digest state matching data, so a resume
//	                               does not re-read what was already written
//	locks/<sha256(ref)>            flock files serialising writers of one ref
//	                               across processes (removed when released)
//
// Invariants: a blob becomes visible under blobs/ only after its bytes are
// on disk and its size and digest were verified, and then in one atomic
// link; a partial or failed write is never visible; at most one Writer per
// ref is open at a time, across goroutines and processes. A crash leaves at
// worst an ingest directory, which Walk ignores and a later Writer for the
// same ref resumes.
//
// The store must not know what a blob means (no manifest parsing, no
// references, no garbage-collection policy): callers that own references
// decide what to Delete. Only sha256 digests are accepted.
//
// Entry point: Open, then Store.Writer / Store.Put to add content and
// Store.Open / Store.Info / Store.Walk to read it.
package content
