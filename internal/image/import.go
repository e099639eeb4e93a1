package image

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
	"github.com/berth-dev/berth/internal/image/reference"
)

// ImportOptions are `docker import`'s arguments.
type ImportOptions struct {
	// Ref, if set, tags the image (":latest" when no tag is given).
	Ref string
	// Changes are Dockerfile instructions applied to the config: CMD,
	// ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL,
	// USER, VOLUME, WORKDIR.
	Changes []string
	// Message is the history comment ("Imported from -" when empty).
	Message string
	// Platform of the image; the service's default when nil.
	Platform *ocispec.Platform
}

// Import makes a one-layer image from the root filesystem tar in r (plain,
// gzip or zstd): the layer is unpacked into a snapshot and stored
// gzip-compressed in one pass, then an OCI config and manifest are
// written. It returns the image ID.
func (s *Service) Import(ctx context.Context, r io.Reader, o ImportOptions) (digest.Digest, error) {
	var ref reference.Reference
	if o.Ref != "" {
		var err error
		if ref, err = reference.Parse(o.Ref); err != nil {
			return "", errdefs.With(errdefs.InvalidArgument, err)
		}
		if ref.Digest() != "" {
			return "", errdefs.Newf(errdefs.InvalidArgument, "import: refusing to create a tag with a digest reference")
		}
		if ref.Tag() == "" {
			ref, _ = ref.WithTag("latest")
		}
	}
	var cfg dockerspec.DockerOCIImageConfig
	if err := applyChanges(&cfg, o.Changes); err != nil {
		return "", err
	}
	platform := s.cfg.Platform
	if o.Platform != nil {
		platform = *o.Platform
	}
	s.gcLock.RLock()
	defer s.gcLock.RUnlock()

	blob, diffID, err := s.importLayer(ctx, r)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	msg := o.Message
	if msg == "" {
		msg = "Imported from -"
	}
	img := dockerspec.DockerOCIImage{
		Image: ocispec.Image{
			Created:  &now,
			Platform: ocispec.Platform{OS: platform.OS, Architecture: platform.Architecture, Variant: platform.Variant},
			RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
			History:  []ocispec.History{{Created: &now, Comment: msg}},
		},
		Config: cfg,
	}
	cb, err := json.Marshal(img)
	if err != nil {
		return "", err
	}
	cdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cdesc, Layers: []ocispec.Descriptor{blob}}
	m.SchemaVersion = 2
	mb, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	mdesc := ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	if err := s.storeBytes(ctx, cdesc, cb); err != nil {
		return "", err
	}
	if err := s.storeBytes(ctx, mdesc, mb); err != nil {
		return "", err
	}
	size, err := s.layerSize(ctx, diffID)
	if err != nil {
		return "", err
	}
	rec := &record{
		ID: cdesc.Digest, Target: mdesc, Manifest: mdesc, Config: cdesc,
		Layers:   []layer{{Blob: blob, DiffID: diffID, ChainID: diffID, Size: size}},
		Platform: img.Platform, Size: size, Added: now,
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if ref.String() != "" {
			rec.LastTagTime = now
		}
		if err := putRecord(tx, rec); err != nil {
			return err
		}
		if ref.String() != "" {
			return setRef(tx, ref.String(), rec.ID)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

// importLayer unpacks the tar in r into the snapshot of its chain (a
// bottom layer: chain ID = diff ID) and stores it gzip-compressed, in one
// pass. It returns the blob's descriptor and the diff ID.
func (s *Service) importLayer(ctx context.Context, r io.Reader) (ocispec.Descriptor, digest.Digest, error) {
	stamp := time.Now().UnixNano()
	key := fmt.Sprintf("import-%d", stamp)
	if _, err := s.snaps.Prepare(ctx, key, "", nil); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	committed := false
	defer func() {
		if !committed {
			_ = s.snaps.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	upper, _, err := s.snaps.Upper(ctx, key)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	cw, err := s.content.Writer(ctx, key, "", 0)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer cw.Close()
	dr, _, err := archive.DecompressStream(r)
	if err != nil {
		return ocispec.Descriptor{}, "", errdefs.With(errdefs.InvalidArgument, fmt.Errorf("import: %w", err))
	}
	defer dr.Close()
	gz := archive.Compress(cw, archive.Gzip, 0)
	h := sha256.New()
	tee := io.TeeReader(dr, io.MultiWriter(gz, h))
	if _, err := archive.Apply(ctx, upper, tee, archive.ApplyOptions{}); err != nil {
		gz.Close()
		return ocispec.Descriptor{}, "", errdefs.With(errdefs.InvalidArgument, fmt.Errorf("import: %w", err))
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		gz.Close()
		return ocispec.Descriptor{}, "", errdefs.With(errdefs.InvalidArgument, fmt.Errorf("import: %w", err))
	}
	if err := gz.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	diffID := digest.NewDigest(digest.SHA256, h)
	blob := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: cw.Digest(), Size: cw.Offset()}
	if err := cw.Commit(ctx); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	mu := s.chainLock(diffID)
	mu.Lock()
	defer mu.Unlock()
	if !s.haveChain(ctx, diffID) {
		if err := s.snaps.CommitOn(ctx, diffID.String(), key, ""); err != nil {
			return ocispec.Descriptor{}, "", err
		}
		committed = true
	}
	return blob, diffID, nil
}
