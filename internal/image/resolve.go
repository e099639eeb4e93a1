package image

import (
	"context"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// Resolved is what the container service needs of an image to create a
// container from it.
type Resolved struct {
	// ID is the image ID (the digest of its config).
	ID digest.Digest
	// ChainID is the committed snapshot a container's writable layer is
	// prepared on; empty for an image without layers.
	ChainID string
	// Config is the image's runtime configuration.
	Config   dockerspec.DockerOCIImageConfig
	Platform ocispec.Platform
	// Manifest is the platform manifest the image was unpacked from.
	Manifest ocispec.Descriptor
}

// Resolve looks name up as Docker does (reference, full or short ID) and
// returns what a container needs of it. It fails with NotFound when there
// is no such image locally.
func (s *Service) Resolve(ctx context.Context, name string) (*Resolved, error) {
	var r *record
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = s.lookup(tx, name)
		return err
	}); err != nil {
		return nil, err
	}
	c, err := s.config(ctx, r)
	if err != nil {
		return nil, err
	}
	return &Resolved{ID: r.ID, ChainID: r.TopChainID(), Config: c.Config, Platform: r.Platform, Manifest: r.Manifest}, nil
}
