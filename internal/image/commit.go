package image

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
	"github.com/berth-dev/berth/internal/image/reference"
)

// Layer is one layer of an image: its stored blob (gzip), its diff ID,
// the chain ID of the committed snapshot it is unpacked as, and that
// snapshot's disk usage.
type Layer struct {
	Blob    ocispec.Descriptor `json:"blob"`
	DiffID  digest.Digest      `json:"diff_id"`
	ChainID digest.Digest      `json:"chain_id"`
	Size    int64              `json:"size"`
}

// State is an image as a builder sees it: a config (with history and
// diff IDs) and its layers, which may not be recorded as an image yet.
type State struct {
	Config dockerspec.DockerOCIImage `json:"config"`
	Layers []Layer                   `json:"layers"`
}

// ChainID is the committed snapshot a container on this state is
// prepared on ("" for no layers).
func (st *State) ChainID() string {
	if len(st.Layers) == 0 {
		return ""
	}
	return st.Layers[len(st.Layers)-1].ChainID.String()
}

// Clone returns a deep copy.
func (st *State) Clone() *State {
	b, _ := json.Marshal(st)
	var out State
	_ = json.Unmarshal(b, &out)
	return &out
}

// configBytes is the image config of st (its diff IDs from its layers)
// and its JSON, whose digest is the image ID.
func (st *State) configBytes() (dockerspec.DockerOCIImage, []byte, error) {
	img := st.Config
	img.RootFS.Type = "layers"
	img.RootFS.DiffIDs = nil
	for _, l := range st.Layers {
		img.RootFS.DiffIDs = append(img.RootFS.DiffIDs, l.DiffID)
	}
	if img.RootFS.DiffIDs == nil {
		img.RootFS.DiffIDs = []digest.Digest{}
	}
	cb, err := json.Marshal(img)
	return img, cb, err
}

// ID is the image ID st has once written (WriteImage).
func (st *State) ID() digest.Digest {
	_, cb, err := st.configBytes()
	if err != nil {
		return ""
	}
	return digest.FromBytes(cb)
}

// Scratch is the empty state (FROM scratch) for the service's platform.
func (s *Service) Scratch() *State {
	p := s.cfg.Platform
	st := &State{}
	st.Config.Platform = ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	st.Config.RootFS.Type = "layers"
	return st
}

// Platform is the platform the service makes images for.
func (s *Service) Platform() ocispec.Platform { return s.cfg.Platform }

// StateOf returns the state of the local image name (reference or ID)
// and its ID.
func (s *Service) StateOf(ctx context.Context, name string) (*State, digest.Digest, error) {
	var r *record
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		r, err = s.lookup(tx, name)
		return err
	}); err != nil {
		return nil, "", err
	}
	c, err := s.config(ctx, r)
	if err != nil {
		return nil, "", err
	}
	st := &State{Config: *c}
	for _, l := range r.Layers {
		st.Layers = append(st.Layers, Layer(l))
	}
	return st, r.ID, nil
}

// HoldGC keeps garbage collection from running until the returned
// function is called: a builder holds it while it makes layers that no
// image or cache entry references yet. Do not call the service's
// image-creating methods (Commit, Import, Pull) while holding it from the
// same goroutine chain; NewLayer and WriteImage expect it held.
func (s *Service) HoldGC() func() {
	s.gcLock.RLock()
	return s.gcLock.RUnlock
}

// NewLayer makes a layer of what the active snapshot key changed over
// its parent chain: the diff (without the runtime's mount stubs) is
// stored gzip-compressed and unpacked, in one pass, into a new snapshot
// committed as the layer's chain ID on parentChain, so containers of the
// new image use it without extracting anything. It returns nil when
// nothing changed. stubs name further mount targets (relative, such as
// "run/secrets/id") left out when they are empty and new. The caller
// holds HoldGC.
func (s *Service) NewLayer(ctx context.Context, key string, parentChain string, stubs ...string) (*Layer, error) {
	upper, lowers, err := s.snaps.Upper(ctx, key)
	if err != nil {
		return nil, err
	}
	filter := newStubFilter(upper, lowers, stubs)
	ch, err := changes(ctx, upper, lowers, filter)
	if err != nil {
		return nil, err
	}
	if len(ch) == 0 {
		return nil, nil
	}
	pr, pw := io.Pipe()
	go func() {
		_, _, err := archive.DiffSkipping(ctx, lowers, upper, pw, func(name string, mode fs.FileMode, size int64) bool {
			return filter.skip(name, mode, size)
		})
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	return s.layerFromTar(ctx, pr, parentChain)
}

func layerBlob(d digest.Digest, size int64) ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: size}
}

// chainOf is the chain ID of diffID on parentChain ("" for a bottom layer).
func chainOf(parentChain string, diffID digest.Digest) digest.Digest {
	if parentChain == "" {
		return diffID
	}
	return digest.FromString(parentChain + " " + diffID.String())
}

// writeLayerBlob writes the gzip layer of upper over lowers (leaving out
// what filter skips) into the content store under ingest key ref, and
// returns its blob and diff ID.
func (s *Service) writeLayerBlob(ctx context.Context, ref string, lowers []string, upper string, filter *stubFilter) (ocispec.Descriptor, digest.Digest, error) {
	cw, err := s.content.Writer(ctx, ref, "", 0)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer cw.Close()
	gz := archive.Compress(cw, archive.Gzip, 0)
	diffID, _, err := archive.DiffSkipping(ctx, lowers, upper, gz, func(name string, mode fs.FileMode, size int64) bool {
		return filter.skip(name, mode, size)
	})
	if err != nil {
		gz.Close()
		return ocispec.Descriptor{}, "", err
	}
	if err := gz.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	blob := layerBlob(cw.Digest(), cw.Offset())
	if err := cw.Commit(ctx); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return blob, diffID, nil
}

// CommitLayer makes the content of the active snapshot key — prepared
// on parentChain, written through an overlay mount that is gone now —
// a layer without copying it: its diff is stored gzip-compressed for the
// blob and diff ID, and the snapshot itself is committed as the layer's
// chain (or removed, when that chain exists already). Builders use it for
// COPY and ADD, whose upper holds nothing but what was copied. It
// returns nil (and removes key) when nothing changed. The caller holds
// HoldGC.
//
// The upper is walked once: the walk that writes the diff also tells
// whether it holds anything but directories (if so, something changed;
// only an upper of directories alone needs the changes walk to tell a
// copied-up, unchanged directory from a change) and measures the disk
// usage the snapshot's commit records.
func (s *Service) CommitLayer(ctx context.Context, key string, parentChain string) (*Layer, error) {
	upper, lowers, err := s.snaps.Upper(ctx, key)
	if err != nil {
		return nil, err
	}
	filter := newStubFilter(upper, lowers, nil)
	cw, err := s.content.Writer(ctx, key, "", 0)
	if err != nil {
		return nil, err
	}
	defer cw.Close()
	gz := archive.Compress(cw, archive.Gzip, 0)
	diffID, _, stats, err := archive.DiffSkippingStats(ctx, lowers, upper, gz, func(name string, mode fs.FileMode, size int64) bool {
		return filter.skip(name, mode, size)
	})
	if err == nil {
		err = gz.Close()
	} else {
		gz.Close()
	}
	if err != nil {
		return nil, err
	}
	if stats.NonDirs == 0 {
		ch, err := changes(ctx, upper, lowers, filter)
		if err != nil {
			return nil, err
		}
		if len(ch) == 0 {
			cw.Close()
			if err := s.content.Abort(ctx, key); err != nil {
				return nil, err
			}
			return nil, s.snaps.Remove(ctx, key)
		}
	}
	blob := layerBlob(cw.Digest(), cw.Offset())
	if err := cw.Commit(ctx); err != nil {
		return nil, err
	}
	chain := chainOf(parentChain, diffID)
	mu := s.chainLock(chain)
	mu.Lock()
	switch {
	case s.haveChain(ctx, chain):
		err = s.snaps.Remove(ctx, key)
	case stats.Skipped:
		err = s.snaps.Commit(ctx, chain.String(), key)
	default:
		err = s.snaps.CommitMeasured(ctx, chain.String(), key, stats.Size, stats.Inodes)
	}
	mu.Unlock()
	if err != nil {
		return nil, err
	}
	size, err := s.layerSize(ctx, chain)
	if err != nil {
		return nil, err
	}
	return &Layer{Blob: blob, DiffID: diffID, ChainID: chain, Size: size}, nil
}

// scratchLayer prepares an empty active snapshot to build a new layer in
// and returns its key and directory; dropScratch removes it unless the
// layer was committed from it.
func (s *Service) scratchLayer(ctx context.Context) (key, dir string, err error) {
	key = fmt.Sprintf("layer-%d", time.Now().UnixNano())
	if _, err := s.snaps.Prepare(ctx, key, "", nil); err != nil {
		return "", "", err
	}
	if dir, _, err = s.snaps.Upper(ctx, key); err != nil {
		_ = s.snaps.Remove(context.WithoutCancel(ctx), key)
		return "", "", err
	}
	return key, dir, nil
}

func (s *Service) dropScratch(ctx context.Context, key string, committed bool) {
	if !committed {
		_ = s.snaps.Remove(context.WithoutCancel(ctx), key)
	}
}

// LayerFromTar unpacks the uncompressed layer tar r on parentChain (as
// NewLayer does with a diff). The caller holds HoldGC.
func (s *Service) LayerFromTar(ctx context.Context, r io.Reader, parentChain string) (*Layer, error) {
	return s.layerFromTar(ctx, r, parentChain)
}

func (s *Service) layerFromTar(ctx context.Context, r io.Reader, parentChain string) (*Layer, error) {
	key, dir, err := s.scratchLayer(ctx)
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() { s.dropScratch(ctx, key, committed) }()
	cw, err := s.content.Writer(ctx, key, "", 0)
	if err != nil {
		return nil, err
	}
	defer cw.Close()
	gz := archive.Compress(cw, archive.Gzip, 0)
	h := sha256.New()
	tee := io.TeeReader(r, io.MultiWriter(gz, h))
	if _, err := archive.Apply(ctx, dir, tee, archive.ApplyOptions{}); err != nil {
		gz.Close()
		return nil, err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		gz.Close()
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	diffID := digest.NewDigest(digest.SHA256, h)
	blob := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: cw.Digest(), Size: cw.Offset()}
	if err := cw.Commit(ctx); err != nil {
		return nil, err
	}
	chain := chainOf(parentChain, diffID)
	if err := s.commitLayer(ctx, key, chain, parentChain); err != nil {
		return nil, err
	}
	committed = true
	size, err := s.layerSize(ctx, chain)
	if err != nil {
		return nil, err
	}
	return &Layer{Blob: blob, DiffID: diffID, ChainID: chain, Size: size}, nil
}

// WriteImage stores st's config and an OCI manifest, records the image
// and points refs (tagged ":latest" when they have no tag) at it. It
// returns the image ID. The caller holds HoldGC.
func (s *Service) WriteImage(ctx context.Context, st *State, refs []string) (digest.Digest, error) {
	var parsed []reference.Reference
	for _, r := range refs {
		ref, err := reference.Parse(r)
		if err != nil {
			return "", errdefs.With(errdefs.InvalidArgument, err)
		}
		if ref.Digest() != "" {
			return "", errdefs.Newf(errdefs.InvalidArgument, "refusing to create a tag with a digest reference")
		}
		if ref.Tag() == "" {
			ref, _ = ref.WithTag("latest")
		}
		parsed = append(parsed, ref)
	}
	img, cb, err := st.configBytes()
	if err != nil {
		return "", err
	}
	cdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cb), Size: int64(len(cb))}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: cdesc, Layers: []ocispec.Descriptor{}}
	m.SchemaVersion = 2
	var size int64
	var layers []layer
	for _, l := range st.Layers {
		m.Layers = append(m.Layers, l.Blob)
		layers = append(layers, layer(l))
		size += l.Size
	}
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
	now := time.Now().UTC()
	// A rebuild that changes nothing writes nothing (no transaction, no
	// fsync): the image exists and every ref already names it.
	unchanged := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		if _, err := getRecord(tx, cdesc.Digest); err != nil {
			return nil
		}
		unchanged = true
		for _, ref := range parsed {
			if v := tx.Bucket(bucketRefs).Get([]byte(ref.String())); string(v) != cdesc.Digest.String() {
				unchanged = false
			}
		}
		return nil
	})
	if unchanged {
		return cdesc.Digest, nil
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		rec, err := getRecord(tx, cdesc.Digest)
		if err != nil {
			// A new image (the same config is the same image: keep its
			// first Added time).
			rec = &record{
				ID: cdesc.Digest, Target: mdesc, Manifest: mdesc, Config: cdesc, Layers: layers,
				Platform: img.Platform, Size: size, Added: now,
			}
		}
		if len(parsed) > 0 {
			rec.LastTagTime = now
		}
		if err := putRecord(tx, rec); err != nil {
			return err
		}
		for _, ref := range parsed {
			if err := setRef(tx, ref.String(), rec.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return cdesc.Digest, nil
}

// CommitOptions describe an image made from a container.
type CommitOptions struct {
	// Parent is the container's image (ID or reference).
	Parent string
	// Snapshot is the container's active snapshot.
	Snapshot string
	// Config is the new image's runtime config (the container's, with
	// the caller's overrides); Changes are applied on top.
	Config  dockerspec.DockerOCIImageConfig
	Changes []string
	Author  string
	Comment string
	// CreatedBy is the history entry's created_by.
	CreatedBy string
	// Ref, if set, tags the image.
	Ref string
}

// Commit makes an image of the parent image plus what the snapshot
// changed, with a history entry (author, comment, created-by). When
// nothing changed, the history entry is an empty layer and the image has
// the parent's layers only, as Docker records it.
func (s *Service) Commit(ctx context.Context, o CommitOptions) (digest.Digest, error) {
	cfg := o.Config
	if err := applyChanges(&cfg, o.Changes); err != nil {
		return "", err
	}
	s.gcLock.RLock()
	defer s.gcLock.RUnlock()
	var st *State
	if o.Parent == "" {
		st = s.Scratch()
	} else {
		var err error
		if st, _, err = s.StateOf(ctx, o.Parent); err != nil {
			return "", err
		}
	}
	l, err := s.NewLayer(ctx, o.Snapshot, st.ChainID())
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	now := time.Now().UTC()
	h := ocispec.History{Created: &now, Author: o.Author, Comment: o.Comment, CreatedBy: o.CreatedBy}
	if l != nil {
		st.Layers = append(st.Layers, *l)
	} else {
		h.EmptyLayer = true
	}
	st.Config.History = append(st.Config.History, h)
	st.Config.Created = &now
	st.Config.Author = o.Author
	st.Config.Config = cfg
	var refs []string
	if o.Ref != "" {
		refs = []string{o.Ref}
	}
	return s.WriteImage(ctx, st, refs)
}

// ApplyChanges applies Dockerfile instructions (as `commit --change` and
// `import --change` take them) to c.
func ApplyChanges(c *dockerspec.DockerOCIImageConfig, changes []string) error {
	return applyChanges(c, changes)
}
