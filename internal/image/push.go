package image

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/reference"
	"github.com/berth-dev/berth/internal/progress"
)

// PushOptions tune a push.
type PushOptions struct {
	Progress progress.Sink
	// Auth, if not nil, are the request's registry credentials (the
	// Engine API's X-Registry-Auth; distribution.AuthFromConfig converts
	// them), used for the registry ref names instead of the keychain's.
	// Nil: the keychain answers.
	Auth authn.Authenticator
}

// Push uploads the image ref names to its registry, byte for byte as
// stored: the same manifest and blobs, so the digest does not change.
// Blobs the registry has are skipped; layers pulled from another
// repository of the same registry are mounted from it.
func (s *Service) Push(ctx context.Context, refStr string, o PushOptions) (digest.Digest, error) {
	sink := o.Progress
	if sink == nil {
		sink = progress.Discard
	}
	ref, err := reference.Parse(refStr)
	if err != nil {
		return "", errdefs.With(errdefs.InvalidArgument, err)
	}
	if ref.Tag() == "" && ref.Digest() == "" {
		ref, _ = ref.WithTag("latest")
	}
	var r *record
	var mountFrom []string
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if r, err = s.lookup(tx, ref.String()); err != nil {
			return errdefs.Newf(errdefs.NotFound, "An image does not exist locally with the tag: %s", ref.FamiliarName())
		}
		_, digests := refsOf(tx, r.ID)
		for _, d := range digests {
			if dr, err := reference.Parse(d); err == nil && dr.Domain() == ref.Domain() && dr.Name() != ref.Name() {
				mountFrom = append(mountFrom, dr.Name())
			}
		}
		return nil
	}); err != nil {
		return "", err
	}
	nref, err := s.cfg.Registry.ParseReference(ref.String())
	if err != nil {
		return "", err
	}
	sink.Update(progress.Event{Status: "The push refers to repository [" + ref.Name() + "]"})
	img, err := s.v1Image(ctx, r, nref, mountFrom)
	if err != nil {
		return "", err
	}
	updates := make(chan v1.Update, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for u := range updates {
			if u.Error == nil {
				sink.Update(progress.Event{Status: "Pushing", Current: u.Complete, Total: u.Total, ID: "push"})
			}
		}
	}()
	err = s.cfg.Registry.WithAuth(o.Auth).Push(ctx, nref, img, updates)
	<-done
	if err != nil {
		return "", err
	}
	for _, l := range r.Layers {
		sink.Update(progress.Event{ID: progress.ShortID(l.Blob.Digest.String()), Status: "Pushed"})
	}
	tag := ref.Tag()
	if tag == "" {
		tag = ref.Digest().String()
	}
	// Two messages, as dockerd sends them: clients print the status line
	// and hand a message with "aux" to their callback without printing it.
	sink.Update(progress.Event{Status: fmt.Sprintf("%s: digest: %s size: %d", tag, r.Manifest.Digest, r.Manifest.Size)})
	sink.Update(progress.Event{Aux: map[string]any{"Tag": tag, "Digest": r.Manifest.Digest.String(), "Size": r.Manifest.Size}})
	// The pushed manifest is now also known by its digest in that repo.
	_ = s.db.Update(func(tx *bolt.Tx) error {
		return setRef(tx, withDigest(ref, r.Manifest.Digest), r.ID)
	})
	return r.Manifest.Digest, nil
}

// v1Image presents a stored image to go-containerregistry, backed by the
// content store.
func (s *Service) v1Image(ctx context.Context, r *record, target name.Reference, mountFrom []string) (v1.Image, error) {
	core := &storedImage{s: s, ctx: ctx, r: r, target: target, mountFrom: mountFrom}
	var err error
	if core.manifest, err = s.readBlob(ctx, r.Manifest); err != nil {
		return nil, err
	}
	if core.config, err = s.readBlob(ctx, r.Config); err != nil {
		return nil, err
	}
	img, err := partial.CompressedToImage(core)
	if err != nil || len(mountFrom) == 0 {
		return img, err
	}
	from, err := name.NewRepository(mountFrom[0], nameOptions(target)...)
	if err != nil {
		return img, nil
	}
	return &mountingImage{Image: img, from: from.Digest(r.Manifest.Digest.String())}, nil
}

func nameOptions(ref name.Reference) []name.Option {
	if ref.Context().Registry.Scheme() == "http" {
		return []name.Option{name.Insecure}
	}
	return nil
}

// mountingImage offers its layers as mountable from another repository of
// the same registry, so the registry links them instead of receiving them.
type mountingImage struct {
	v1.Image
	from name.Reference
}

func (m *mountingImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = &remote.MountableLayer{Layer: l, Reference: m.from}
	}
	return out, nil
}

func (s *Service) readBlob(ctx context.Context, d ocispec.Descriptor) ([]byte, error) {
	rc, err := s.content.Open(ctx, d.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

type storedImage struct {
	s                *Service
	ctx              context.Context
	r                *record
	target           name.Reference
	mountFrom        []string
	manifest, config []byte
}

func (i *storedImage) RawConfigFile() ([]byte, error) { return i.config, nil }
func (i *storedImage) MediaType() (types.MediaType, error) {
	return types.MediaType(i.r.Manifest.MediaType), nil
}
func (i *storedImage) RawManifest() ([]byte, error) { return i.manifest, nil }

func (i *storedImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h.String() == i.r.Config.Digest.String() {
		return &storedBlob{s: i.s, ctx: i.ctx, desc: i.r.Config}, nil
	}
	for _, l := range i.r.Layers {
		if l.Blob.Digest.String() == h.String() {
			return &storedBlob{s: i.s, ctx: i.ctx, desc: l.Blob}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not part of image %s", h, i.r.ID)
}

type storedBlob struct {
	s    *Service
	ctx  context.Context
	desc ocispec.Descriptor
}

func (b *storedBlob) Digest() (v1.Hash, error) { return hashOf(b.desc.Digest), nil }
func (b *storedBlob) Size() (int64, error)     { return b.desc.Size, nil }
func (b *storedBlob) MediaType() (types.MediaType, error) {
	return types.MediaType(b.desc.MediaType), nil
}
func (b *storedBlob) Compressed() (io.ReadCloser, error) {
	return b.s.content.Open(b.ctx, b.desc.Digest)
}

var _ = bytes.NewReader
