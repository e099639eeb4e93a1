package manifest

import (
	// go-digest validates only digests whose hash is linked in.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"fmt"

	"github.com/berth-dev/berth/internal/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ValidateManifest checks the invariants berth relies on before it fetches
// or unpacks anything an image manifest points to:
//
//   - schemaVersion is 2 and the media type, if set, is a manifest type;
//   - the config descriptor is present, is an image config (Docker or
//     OCI: artifacts are not images), has a valid digest and a size > 0;
//   - every layer has a known, supported media type (foreign and
//     non-distributable layers are refused), a valid digest and a size > 0.
//
// The first problem is returned; errors about unsupported layer types are
// errdefs.NotImplemented, every other error errdefs.InvalidArgument.
func ValidateManifest(m *ocispec.Manifest) error {
	if m == nil {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid manifest: missing")
	}
	if m.SchemaVersion != 2 {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid manifest: schemaVersion is %d, want 2", m.SchemaVersion)
	}
	if m.MediaType != "" && !IsManifest(m.MediaType) {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid manifest: media type %q is not an image manifest", m.MediaType)
	}
	if m.Config.MediaType == "" && m.Config.Digest == "" {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid manifest: no config descriptor")
	}
	if !IsConfig(m.Config.MediaType) {
		return errdefs.Newf(errdefs.NotImplemented, "%w: config media type %q is not a container image config (artifact type %q)",
			ErrUnsupportedMediaType, m.Config.MediaType, m.ArtifactType)
	}
	if err := checkDescriptor(m.Config); err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid manifest: config: %w", err)
	}
	for i, l := range m.Layers {
		if _, err := CheckLayer(l); err != nil {
			return fmt.Errorf("layers[%d]: %w", i, err)
		}
		if err := checkDescriptor(l); err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid manifest: layers[%d]: %w", i, err)
		}
	}
	return nil
}

// ValidateIndex checks an index: schemaVersion 2, a media type (if set)
// that is an index type, and for each entry a media type, a valid digest
// and a size > 0. Entries of unknown media types (artifacts, signatures)
// are allowed: SelectPlatform skips them.
func ValidateIndex(idx *ocispec.Index) error {
	if idx == nil {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid index: missing")
	}
	if idx.SchemaVersion != 2 {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid index: schemaVersion is %d, want 2", idx.SchemaVersion)
	}
	if idx.MediaType != "" && !IsIndex(idx.MediaType) {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid index: media type %q is not an index", idx.MediaType)
	}
	for i, d := range idx.Manifests {
		if d.MediaType == "" {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid index: manifests[%d]: no media type", i)
		}
		if err := checkDescriptor(d); err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid index: manifests[%d]: %w", i, err)
		}
	}
	return nil
}

func checkDescriptor(d ocispec.Descriptor) error {
	if err := d.Digest.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w", d.Digest, err)
	}
	if d.Size <= 0 {
		return fmt.Errorf("%s: size must be positive, got %d", d.Digest, d.Size)
	}
	return nil
}
