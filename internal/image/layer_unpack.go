package image

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
)

// UnpackLayer makes the compressed layer blob desc (diff ID diffID) a
// layer on parentChain: the blob is stored in the content store and
// unpacked as the committed snapshot of its chain. What is there already
// is not fetched again: open is called only when the blob or the chain is
// missing, and the stream it returns is verified against desc's digest
// and size (the content store refuses a mismatch) and, when unpacked,
// against diffID. The build cache's import uses it for layers that come
// from a registry or an OCI layout. The caller holds HoldGC.
func (s *Service) UnpackLayer(ctx context.Context, desc ocispec.Descriptor, diffID digest.Digest, parentChain string, open func(context.Context) (io.ReadCloser, error)) (*Layer, error) {
	if err := desc.Digest.Validate(); err != nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "layer digest %q: %v", desc.Digest, err)
	}
	if err := diffID.Validate(); err != nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "layer diff ID %q: %v", diffID, err)
	}
	chain := chainOf(parentChain, diffID)
	if parentChain != "" && !s.haveChain(ctx, digest.Digest(parentChain)) {
		return nil, errdefs.Newf(errdefs.FailedPrecondition, "layer %s: parent chain %s is not unpacked", desc.Digest, parentChain)
	}
	if !s.haveChain(ctx, chain) || !s.haveBlob(ctx, desc.Digest) {
		if err := s.unpackBlob(ctx, desc, diffID, chain, parentChain, open); err != nil {
			return nil, err
		}
	}
	size, err := s.layerSize(ctx, chain)
	if err != nil {
		return nil, err
	}
	return &Layer{Blob: desc, DiffID: diffID, ChainID: chain, Size: size}, nil
}

func (s *Service) unpackBlob(ctx context.Context, desc ocispec.Descriptor, diffID, chain digest.Digest, parentChain string, open func(context.Context) (io.ReadCloser, error)) (retErr error) {
	rc, err := open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	var src io.Reader = rc
	var cw interface {
		io.Writer
		Commit(context.Context) error
		Close() error
	}
	if !s.haveBlob(ctx, desc.Digest) {
		w, err := s.content.Writer(ctx, "unpack-"+desc.Digest.Encoded(), desc.Digest, desc.Size)
		if err != nil && !errdefs.Is(err, errdefs.AlreadyExists) {
			return err
		}
		if err == nil {
			defer w.Close()
			if w.Offset() > 0 {
				if err := w.Truncate(0); err != nil {
					return err
				}
			}
			cw = w
			src = io.TeeReader(rc, w)
		}
	}
	// The blob's uncompressed content is checked against diffID whether
	// it is unpacked or only stored: a stored blob must be what the
	// layer's chain says.
	dr, _, err := archive.DecompressStream(src)
	if err != nil {
		return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("layer %s: %w", desc.Digest, err))
	}
	defer dr.Close()
	key := ""
	var got digest.Digest
	if !s.haveChain(ctx, chain) {
		key = fmt.Sprintf("layer-unpack-%s-%d", chain.Encoded()[:16], time.Now().UnixNano())
		if _, err := s.snaps.Prepare(ctx, key, "", map[string]string{"berth.layer": desc.Digest.String()}); err != nil {
			return err
		}
		defer func() {
			if retErr != nil {
				_ = s.snaps.Remove(context.WithoutCancel(ctx), key)
			}
		}()
		upper, _, err := s.snaps.Upper(ctx, key)
		if err != nil {
			return err
		}
		res, err := archive.Apply(ctx, upper, dr, archive.ApplyOptions{})
		if err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("layer %s: %w", desc.Digest, err))
		}
		got = res.DiffID
	} else {
		h := digest.SHA256.Digester()
		if _, err := io.Copy(h.Hash(), dr); err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("layer %s: %w", desc.Digest, err))
		}
		got = h.Digest()
	}
	if got != diffID {
		return errdefs.Newf(errdefs.InvalidArgument, "layer %s: uncompressed content is %s, not %s", desc.Digest, got, diffID)
	}
	// The rest of the stream still belongs to the blob (and a reader
	// verifying its digest does so at the end).
	if _, err := io.Copy(io.Discard, src); err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if err := rc.Close(); err != nil {
		return fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if cw != nil {
		if err := cw.Commit(ctx); err != nil && !errdefs.Is(err, errdefs.AlreadyExists) {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("layer %s: %w", desc.Digest, err))
		}
	}
	if key != "" {
		return s.commitLayer(ctx, key, chain, parentChain)
	}
	return nil
}
