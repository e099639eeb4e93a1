package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/manifest"
	"github.com/berth-dev/berth/internal/image/reference"
)

// Registry implements DistributionBackend over the registry client: it
// resolves the reference (mirrors first) and reads the platforms from the
// index, or from the image config for a single manifest, as dockerd does.
// The request's X-Registry-Auth credentials are used for the named
// registry; without them, the client's keychain.
type Registry struct {
	Client *distribution.Client
}

var _ DistributionBackend = Registry{}

// maxConfig bounds the image config read for a single-manifest image.
const maxConfig = 4 << 20

// DistributionInspect resolves ref ("busybox", "busybox:1.36",
// "ghcr.io/a/b@sha256:...").
func (d Registry) DistributionInspect(ctx context.Context, ref string, auth *registry.AuthConfig) (*registry.DistributionInspect, error) {
	r, err := reference.Parse(ref)
	if err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, err)
	}
	if r.Tag() == "" && r.Digest() == "" {
		r, _ = r.WithTag("latest")
	}
	nref, err := d.Client.ParseReference(r.String())
	if err != nil {
		return nil, err
	}
	res, err := d.Client.WithAuth(distribution.AuthFromConfig(auth)).Resolve(ctx, nref)
	if err != nil {
		return nil, err
	}
	desc := ocispec.Descriptor{
		MediaType: string(res.Descriptor.MediaType),
		Digest:    digest.Digest(res.Descriptor.Digest.String()),
		Size:      res.Descriptor.Size,
	}
	out := &registry.DistributionInspect{Descriptor: desc, Platforms: []ocispec.Platform{}}
	if manifest.IsIndex(desc.MediaType) {
		idx, err := manifest.ParseIndex(res.Descriptor.Manifest)
		if err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, err)
		}
		for _, m := range idx.Manifests {
			if m.Platform == nil || m.Platform.OS == "unknown" {
				continue // attestation manifests
			}
			out.Platforms = append(out.Platforms, *m.Platform)
		}
		return out, nil
	}
	m, err := manifest.ParseManifest(res.Descriptor.Manifest)
	if err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, err)
	}
	rc, err := res.Blob(ctx, v1.Hash{Algorithm: m.Config.Digest.Algorithm().String(), Hex: m.Config.Digest.Encoded()})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxConfig))
	if err != nil {
		return nil, fmt.Errorf("reading image config %s: %w", m.Config.Digest, err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "image config %s: %w", m.Config.Digest, err)
	}
	out.Platforms = append(out.Platforms, ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion})
	return out, nil
}
