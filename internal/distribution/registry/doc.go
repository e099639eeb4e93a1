// Package registry is berth's OCI distribution-spec v1.1 registry server
// (`berth registry serve`): blobs (GET/HEAD with ranges, DELETE),
// uploads (monolithic POST, chunked PATCH with Content-Range checks, PUT
// with digest verification, status, cancel, cross-repository mount),
// manifests by tag or digest (Docker schema 2 manifests and lists, OCI
// manifests and indexes; a PUT must reference only content the repository
// has), tag listing with n/last pagination, the referrers API, and the
// spec's JSON errors. It optionally requires HTTP basic credentials
// checked against htpasswd hashes (bcrypt as `htpasswd -B` writes, or
// SHA-crypt), and can be read-only.
//
// It owns the repository metadata under its directory (which blobs and
// manifests each repository may serve, tags, referrers, upload sessions;
// see meta.go for the layout), kept in small files replaced atomically so
// that it survives restarts and crashes. Blob and manifest bytes live in
// the shared content store (package content), written only through
// verified ingests.
//
// It must not listen, terminate TLS or parse flags (the command does),
// must not delete content-store blobs (garbage collection belongs to the
// store's owner; DELETE only removes a repository's links), and must not
// depend on the image service or the Engine API.
//
// Entry point: New, then use the Server as an http.Handler.
package registry
