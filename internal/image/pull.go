package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
	"github.com/berth-dev/berth/internal/image/manifest"
	"github.com/berth-dev/berth/internal/image/reference"
	"github.com/berth-dev/berth/internal/progress"
)

// PullOptions tune a pull.
type PullOptions struct {
	// Platform overrides the service's default platform.
	Platform *ocispec.Platform
	// Progress receives Docker-style per-layer progress (may be nil).
	Progress progress.Sink
	// Auth, if not nil, are the request's registry credentials (the
	// Engine API's X-Registry-Auth; distribution.AuthFromConfig converts
	// them): the registry ref names gets them instead of the keychain's
	// (~/.docker/config.json of the daemon's user). Mirrors of it do not
	// (keychain or anonymous). Nil: the keychain answers everywhere.
	Auth authn.Authenticator
	// GCHeld: the caller holds HoldGC already (a build pulling its base
	// image); taking it again could deadlock behind a waiting GC.
	GCHeld bool
}

// PullResult says what a pull did.
type PullResult struct {
	ID     digest.Digest
	Ref    string // familiar reference as pulled, e.g. "busybox:latest"
	Digest digest.Digest
	// UpToDate is true when nothing new was fetched.
	UpToDate bool
}

func defaultPlatform() ocispec.Platform {
	return manifest.DefaultPlatform()
}

// Pull fetches ref (tag or digest) for the platform and unpacks its layers.
// Layers are downloaded, decompressed and unpacked concurrently, each in
// one streaming pass that also writes the compressed blob to the content
// store; a layer already unpacked locally is not fetched again.
func (s *Service) Pull(ctx context.Context, refStr string, o PullOptions) (*PullResult, error) {
	sink := o.Progress
	if sink == nil {
		sink = progress.Discard
	}
	ref, err := reference.Parse(refStr)
	if err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, err)
	}
	if ref.Tag() == "" && ref.Digest() == "" {
		ref, _ = ref.WithTag("latest")
	}
	platform := s.cfg.Platform
	if o.Platform != nil {
		platform = *o.Platform
	}
	nref, err := s.cfg.Registry.ParseReference(registryRef(ref))
	if err != nil {
		return nil, err
	}
	if !o.GCHeld {
		s.gcLock.RLock()
		defer s.gcLock.RUnlock()
	}

	if ref.Digest() == "" {
		sink.Update(progress.Event{Status: "Pulling from " + ref.Path(), ID: ref.Tag()})
	} else {
		sink.Update(progress.Event{Status: "Pulling from " + ref.Path(), ID: ref.Digest().String()})
	}
	res, err := s.cfg.Registry.WithAuth(o.Auth).Resolve(ctx, nref)
	if err != nil {
		return nil, err
	}
	target := descriptorOf(res.Descriptor)
	if err := s.storeBytes(ctx, target, res.Descriptor.Manifest); err != nil {
		return nil, err
	}
	mdesc, mbytes := target, res.Descriptor.Manifest
	if manifest.IsIndex(target.MediaType) {
		idx, err := manifest.ParseIndex(mbytes)
		if err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, err)
		}
		sel, err := manifest.SelectPlatform(idx, platform)
		if err != nil {
			return nil, errdefs.Newf(errdefs.NotFound, "%s: %w", ref.Familiar(), err)
		}
		d, err := res.Manifest(ctx, v1.Hash{Algorithm: sel.Digest.Algorithm().String(), Hex: sel.Digest.Encoded()})
		if err != nil {
			return nil, err
		}
		mdesc, mbytes = descriptorOf(d), d.Manifest
		if mdesc.Digest != sel.Digest {
			return nil, fmt.Errorf("manifest %s: registry returned %s", sel.Digest, mdesc.Digest)
		}
		if err := s.storeBytes(ctx, mdesc, mbytes); err != nil {
			return nil, err
		}
	}
	m, err := manifest.ParseManifest(mbytes)
	if err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("manifest %s: %w", mdesc.Digest, err))
	}
	for _, l := range m.Layers {
		if _, err := manifest.LayerCompression(l.MediaType); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, err)
		}
	}
	// The config: small, fetched first (it names the diff IDs).
	cfgBytes, err := s.fetchSmall(ctx, res, m.Config)
	if err != nil {
		return nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cfgBytes, &cfg); err != nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "image config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "image config %s lists %d layers, manifest %d", m.Config.Digest, len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	chains := manifest.ChainIDs(cfg.RootFS.DiffIDs)
	rec := &record{
		ID: m.Config.Digest, Target: target, Manifest: mdesc, Config: m.Config,
		Platform: ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant, OSVersion: cfg.OSVersion},
		Added:    time.Now().UTC(),
	}
	fetched, err := s.unpackLayers(ctx, res, m.Layers, cfg.RootFS.DiffIDs, chains, sink)
	if err != nil {
		return nil, err
	}
	for i, l := range m.Layers {
		usage, err := s.layerSize(ctx, chains[i])
		if err != nil {
			return nil, err
		}
		rec.Layers = append(rec.Layers, layer{Blob: l, DiffID: cfg.RootFS.DiffIDs[i], ChainID: chains[i], Size: usage})
		rec.Size += usage
	}
	upToDate := false
	err = s.db.Update(func(tx *bolt.Tx) error {
		if old, err := getRecord(tx, rec.ID); err == nil {
			rec.Added, rec.LastTagTime = old.Added, old.LastTagTime
			if !fetched {
				if v := tx.Bucket(bucketRefs).Get([]byte(ref.String())); v != nil && string(v) == rec.ID.String() {
					upToDate = true
				}
			}
		}
		if ref.Tag() != "" {
			rec.LastTagTime = time.Now().UTC()
		}
		if err := putRecord(tx, rec); err != nil {
			return err
		}
		if err := setRef(tx, ref.String(), rec.ID); err != nil {
			return err
		}
		return setRef(tx, withDigest(ref, target.Digest), rec.ID)
	})
	if err != nil {
		return nil, err
	}
	sink.Update(progress.Event{Status: "Digest: " + target.Digest.String()})
	if upToDate {
		sink.Update(progress.Event{Status: "Status: Image is up to date for " + ref.Familiar()})
	} else {
		sink.Update(progress.Event{Status: "Status: Downloaded newer image for " + ref.Familiar()})
	}
	return &PullResult{ID: rec.ID, Ref: ref.Familiar(), Digest: target.Digest, UpToDate: upToDate}, nil
}

// registryRef is the reference as the registry client wants it.
func registryRef(ref reference.Reference) string {
	return ref.String()
}

func setRef(tx *bolt.Tx, ref string, id digest.Digest) error {
	return tx.Bucket(bucketRefs).Put([]byte(ref), []byte(id.String()))
}

func descriptorOf(d *remote.Descriptor) ocispec.Descriptor {
	return ocispec.Descriptor{
		MediaType: string(d.MediaType),
		Digest:    digest.Digest(d.Digest.String()),
		Size:      d.Size,
	}
}

// storeBytes puts data into the content store under desc (verified).
func (s *Service) storeBytes(ctx context.Context, desc ocispec.Descriptor, data []byte) error {
	err := s.content.Put(ctx, bytes.NewReader(data), desc.Digest, int64(len(data)))
	if err != nil && !errdefs.Is(err, errdefs.AlreadyExists) {
		return err
	}
	return nil
}

// fetchSmall fetches a small blob (a config) into the content store and
// returns its bytes.
func (s *Service) fetchSmall(ctx context.Context, res *distribution.Resolved, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > 64<<20 {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "config blob %s too large (%d bytes)", desc.Digest, desc.Size)
	}
	if rc, err := s.content.Open(ctx, desc.Digest); err == nil {
		defer rc.Close()
		return io.ReadAll(rc)
	}
	rc, err := res.Blob(ctx, hashOf(desc.Digest))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, desc.Size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != desc.Size || digest.FromBytes(data) != desc.Digest {
		return nil, fmt.Errorf("config blob %s: content does not match its digest or size", desc.Digest)
	}
	return data, s.storeBytes(ctx, desc, data)
}

func hashOf(d digest.Digest) v1.Hash {
	return v1.Hash{Algorithm: d.Algorithm().String(), Hex: d.Encoded()}
}

// unpackLayers makes sure every chain has a committed snapshot and every
// layer blob is in the content store. Missing layers are fetched
// concurrently (bounded), each streamed once: registry → content store
// and → decompressor → tar extraction into its own snapshot directory.
// Snapshots are committed bottom-up afterwards, each on its parent chain.
// It reports whether anything was fetched.
func (s *Service) unpackLayers(ctx context.Context, res *distribution.Resolved, layers []ocispec.Descriptor, diffIDs, chains []digest.Digest, sink progress.Sink) (bool, error) {
	type job struct {
		i   int
		key string // active snapshot holding the unpacked layer
	}
	var fetched bool
	jobs := make([]*job, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(int(s.downloads.Load()))
	for i := range layers {
		id := progress.ShortID(layers[i].Digest.String())
		if s.haveChain(ctx, chains[i]) && s.haveBlob(ctx, layers[i].Digest) {
			sink.Update(progress.Event{ID: id, Status: "Already exists"})
			continue
		}
		fetched = true
		sink.Update(progress.Event{ID: id, Status: "Pulling fs layer"})
		j := &job{i: i}
		jobs[i] = j
		g.Go(func() error {
			key, err := s.fetchLayer(gctx, res, layers[j.i], diffIDs[j.i], chains[j.i], sink)
			j.key = key
			return err
		})
	}
	err := g.Wait()
	// Commit in order: a chain's parent must exist before it.
	for i, j := range jobs {
		if j == nil || j.key == "" {
			continue
		}
		if err != nil {
			_ = s.snaps.Remove(context.WithoutCancel(ctx), j.key)
			continue
		}
		parent := ""
		if i > 0 {
			parent = chains[i-1].String()
		}
		if cerr := s.commitLayer(ctx, j.key, chains[i], parent); cerr != nil {
			err = cerr
			_ = s.snaps.Remove(context.WithoutCancel(ctx), j.key)
			continue
		}
		sink.Update(progress.Event{ID: progress.ShortID(layers[i].Digest.String()), Status: "Pull complete"})
	}
	return fetched, err
}

func (s *Service) haveChain(ctx context.Context, chain digest.Digest) bool {
	_, err := s.snaps.Stat(ctx, chain.String())
	return err == nil
}

func (s *Service) haveBlob(ctx context.Context, d digest.Digest) bool {
	_, err := s.content.Info(ctx, d)
	return err == nil
}

// fetchLayer streams one layer into a fresh active snapshot and the
// content store; it returns the snapshot key ("" if the chain appeared
// meanwhile, unpacked by a concurrent pull).
func (s *Service) fetchLayer(ctx context.Context, res *distribution.Resolved, desc ocispec.Descriptor, diffID, chain digest.Digest, sink progress.Sink) (string, error) {
	id := progress.ShortID(desc.Digest.String())
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			sink.Update(progress.Event{ID: id, Status: fmt.Sprintf("Retrying in %d seconds", attempt)})
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case <-time.After(time.Duration(attempt) * time.Second):
			}
		}
		key, err := s.fetchLayerOnce(ctx, res, desc, diffID, chain, sink)
		if err == nil {
			return key, nil
		}
		lastErr = err
		// Content errors (bad tar, diff ID mismatch) will not heal.
		if errdefs.Is(err, errdefs.InvalidArgument) || ctx.Err() != nil {
			break
		}
	}
	return "", lastErr
}

func (s *Service) fetchLayerOnce(ctx context.Context, res *distribution.Resolved, desc ocispec.Descriptor, diffID, chain digest.Digest, sink progress.Sink) (key string, retErr error) {
	id := progress.ShortID(desc.Digest.String())
	rc, err := res.Blob(ctx, hashOf(desc.Digest))
	if err != nil {
		return "", err
	}
	defer rc.Close()
	// Store the compressed blob as it streams by, unless we have it.
	var cw io.Writer = io.Discard
	var w interface {
		Commit(context.Context) error
		Close() error
	}
	if !s.haveBlob(ctx, desc.Digest) {
		cwr, err := s.content.Writer(ctx, "pull-"+desc.Digest.Encoded(), desc.Digest, desc.Size)
		if err != nil && !errdefs.Is(err, errdefs.AlreadyExists) {
			return "", err
		}
		if err == nil {
			defer cwr.Close()
			// A partial ingest left by an interrupted pull restarts from
			// zero: the stream below always begins at the first byte.
			if cwr.Offset() > 0 {
				if err := cwr.Truncate(0); err != nil {
					return "", err
				}
			}
			cw, w = cwr, cwr
		}
	}
	counted := &countingReader{r: io.TeeReader(rc, cw), total: desc.Size, sink: sink, id: id}
	// Unpack only if the chain is not there (the blob may be what's missing).
	key = fmt.Sprintf("extract-%s-%d", chain.Encoded()[:16], time.Now().UnixNano())
	if s.haveChain(ctx, chain) {
		key = ""
		if _, err := io.Copy(io.Discard, counted); err != nil {
			return "", err
		}
	} else {
		if _, err := s.snaps.Prepare(ctx, key, "", map[string]string{"berth.layer": desc.Digest.String()}); err != nil {
			return "", err
		}
		defer func() {
			if retErr != nil {
				_ = s.snaps.Remove(context.WithoutCancel(ctx), key)
			}
		}()
		upper, _, err := s.snaps.Upper(ctx, key)
		if err != nil {
			return "", err
		}
		dr, _, err := archive.DecompressStream(counted)
		if err != nil {
			return "", counted.classify(desc, err)
		}
		result, err := archive.Apply(ctx, upper, dr, archive.ApplyOptions{})
		dr.Close()
		if err != nil {
			return "", counted.classify(desc, err)
		}
		if result.DiffID != diffID {
			return "", errdefs.Newf(errdefs.InvalidArgument, "layer %s: uncompressed content is %s, the image config says %s", desc.Digest, result.DiffID, diffID)
		}
		// Trailing bytes after the tar's end still belong to the blob.
		if _, err := io.Copy(io.Discard, counted); err != nil {
			return "", err
		}
		sink.Update(progress.Event{ID: id, Status: "Extracting", Current: desc.Size, Total: desc.Size})
	}
	// Closing the registry stream verifies the compressed digest.
	if err := rc.Close(); err != nil {
		return "", fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	sink.Update(progress.Event{ID: id, Status: "Download complete"})
	if w != nil {
		if err := w.Commit(ctx); err != nil && !errdefs.Is(err, errdefs.AlreadyExists) {
			return "", err
		}
	}
	return key, nil
}

// commitLayer turns an unpacked active snapshot into the committed chain,
// unless a concurrent pull, load or build committed the same chain first
// (then the snapshot is removed). Either way key is consumed.
func (s *Service) commitLayer(ctx context.Context, key string, chain digest.Digest, parent string) error {
	mu := s.chainLock(chain)
	mu.Lock()
	defer mu.Unlock()
	if s.haveChain(ctx, chain) {
		return s.snaps.Remove(ctx, key)
	}
	return s.snaps.CommitOn(ctx, chain.String(), key, parent)
}

func (s *Service) layerSize(ctx context.Context, chain digest.Digest) (int64, error) {
	size, _, err := s.snaps.Usage(ctx, chain.String())
	return size, err
}

// countingReader reports download progress and remembers whether the
// transport failed, so that an unpack error caused by a cut connection is
// told apart from bad content.
type countingReader struct {
	r      io.Reader
	n      int64
	total  int64
	sink   progress.Sink
	id     string
	srcErr error // the first non-EOF error of the source, or a short stream
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		c.sink.Update(progress.Event{ID: c.id, Status: "Downloading", Current: c.n, Total: c.total})
	}
	if err != nil && c.srcErr == nil {
		if err != io.EOF {
			c.srcErr = err
		} else if c.total > 0 && c.n < c.total {
			c.srcErr = io.ErrUnexpectedEOF
		}
	}
	return n, err
}

// classify turns an unpack error into a retryable transport error when the
// download itself failed (the tar or gzip reader then only saw a short
// stream), and into InvalidArgument, which is never retried, when the
// bytes arrived whole and are bad.
func (c *countingReader) classify(desc ocispec.Descriptor, err error) error {
	if c.srcErr != nil {
		return errdefs.With(errdefs.Unavailable, fmt.Errorf("layer %s: download interrupted after %d of %d bytes: %w", desc.Digest, c.n, c.total, c.srcErr))
	}
	return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("layer %s: %w", desc.Digest, err))
}

var _ = name.Tag{}
var _ = errors.New
var _ = runtime.GOOS
