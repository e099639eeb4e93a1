// Package distribution is berth's registry client: it resolves references
// against registries (trying configured mirrors first), fetches manifests
// and blobs, and pushes images and indexes, speaking the Docker Registry v2
// / OCI distribution protocol through go-containerregistry.
//
// It owns the per-registry host configuration (mirrors, plain HTTP), the
// credentials lookup (~/.docker/config.json by default, or one request's
// credentials for the registry it names: Client.WithAuth,
// AuthFromConfig) and retries. It must
// not know about berth's stores: callers stream what it fetches into the
// content store and snapshots (package image). Entry point: New.
//
// The registry server lives in the sub-package registry.
package distribution
