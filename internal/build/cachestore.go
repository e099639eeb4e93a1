package build

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/reference"
)

// cacheSpec is one --cache-from or --cache-to value in BuildKit's
// syntax: "type=registry,ref=REG/REPO:TAG[,mode=min|max]" or
// "type=local,dest=DIR" (export) / "type=local,src=DIR" (import), with
// tag= choosing the layout's tag and ignore-error=true making a failed
// export a warning.
type cacheSpec struct {
	Type        string
	Ref         string
	Dir         string
	Tag         string
	Mode        string
	IgnoreError bool
	raw         string
}

// cacheSpecIgnored are BuildKit attributes that mean nothing to berth's
// format and are accepted so the same flags work with both.
var cacheSpecIgnored = map[string]bool{
	"oci-mediatypes": true, "image-manifest": true, "compression": true,
	"compression-level": true, "force-compression": true, "digest": true,
}

// isCacheSpec tells a BuildKit-style spec from a plain image reference
// (the classic builder's cache source) in cachefrom.
func isCacheSpec(s string) bool { return strings.HasPrefix(s, "type=") }

func parseCacheSpec(s string, export bool) (cacheSpec, error) {
	sp := cacheSpec{raw: s, Mode: "min", Tag: "latest"}
	bad := func(format string, a ...any) (cacheSpec, error) {
		return cacheSpec{}, errdefs.Newf(errdefs.InvalidArgument, "invalid cache spec %q: "+format, append([]any{s}, a...)...)
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return bad("%q is not key=value", kv)
		}
		switch k {
		case "type":
			sp.Type = v
		case "ref":
			sp.Ref = v
		case "dest":
			if !export {
				return bad("dest is for --cache-to (use src)")
			}
			sp.Dir = v
		case "src":
			if export {
				return bad("src is for --cache-from (use dest)")
			}
			sp.Dir = v
		case "tag":
			sp.Tag = v
		case "mode":
			if v != "min" && v != "max" {
				return bad("mode must be min or max")
			}
			sp.Mode = v
		case "ignore-error":
			sp.IgnoreError = v == "true" || v == "1"
		default:
			if !cacheSpecIgnored[k] {
				return bad("unknown attribute %q", k)
			}
		}
	}
	switch sp.Type {
	case "registry":
		if sp.Ref == "" {
			return bad("type=registry needs ref=")
		}
		r, err := reference.Parse(sp.Ref)
		if err != nil {
			return bad("%v", err)
		}
		if r.Tag() == "" && r.Digest() == "" {
			r, _ = r.WithTag("latest")
		}
		sp.Ref = r.String()
	case "local":
		if sp.Dir == "" {
			if export {
				return bad("type=local needs dest=")
			}
			return bad("type=local needs src=")
		}
		if !filepath.IsAbs(sp.Dir) {
			return bad("the directory must be an absolute path (it is on the daemon's host)")
		}
	case "":
		return bad("type= is required")
	default:
		return bad("cache type %q is not supported (registry, local)", sp.Type)
	}
	return sp, nil
}

func (sp cacheSpec) String() string {
	if sp.Type == "registry" {
		return sp.Ref
	}
	return sp.Dir + ":" + sp.Tag
}

// blobOpener opens a blob of a cache.
type blobOpener func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error)

// cacheStore is where a cache manifest and its blobs live: a registry
// repository or an OCI image layout directory.
type cacheStore interface {
	// read returns the cache manifest and its config (NotFound when there
	// is none).
	read(ctx context.Context) (manifest, config []byte, err error)
	open(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error)
	// write uploads the blobs the manifest lists (and its config), then
	// the manifest.
	write(ctx context.Context, manifest, config []byte, blobs []ocispec.Descriptor, open blobOpener) error
}

func (b *Builder) cacheStoreFor(sp cacheSpec, o Options) (cacheStore, error) {
	switch sp.Type {
	case "registry":
		if b.cfg.Registry == nil {
			return nil, errdefs.Newf(errdefs.NotImplemented, "registry build caches are not available")
		}
		cl := b.cfg.Registry(sp.Ref, o.AuthConfigs)
		nref, err := cl.ParseReference(sp.Ref)
		if err != nil {
			return nil, err
		}
		return &registryStore{cl: cl, ref: nref}, nil
	case "local":
		return &layoutStore{dir: sp.Dir, tag: sp.Tag}, nil
	}
	return nil, errdefs.Newf(errdefs.InvalidArgument, "cache type %q", sp.Type)
}

// registryStore keeps a cache as a manifest in a registry repository.
type registryStore struct {
	cl  *distribution.Client
	ref name.Reference
	res *distribution.Resolved
}

func (r *registryStore) read(ctx context.Context) ([]byte, []byte, error) {
	res, err := r.cl.Resolve(ctx, r.ref)
	if err != nil {
		return nil, nil, err
	}
	r.res = res
	if mt := string(res.Descriptor.MediaType); mt != ocispec.MediaTypeImageManifest {
		return nil, nil, fmt.Errorf("not a build cache: a %s", mt)
	}
	mb := res.Descriptor.Manifest
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	if m.Config.MediaType != cacheConfigMediaType {
		return nil, nil, fmt.Errorf("not a berth build cache (config media type %q)", m.Config.MediaType)
	}
	if m.Config.Size > maxCacheConfig {
		return nil, nil, fmt.Errorf("config too large (%d bytes)", m.Config.Size)
	}
	rc, err := r.open(ctx, m.Config)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	cb, err := io.ReadAll(io.LimitReader(rc, maxCacheConfig+1))
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	return mb, cb, nil
}

func (r *registryStore) open(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if r.res == nil {
		return nil, errdefs.Newf(errdefs.FailedPrecondition, "cache %s not resolved", r.ref)
	}
	return r.res.Blob(ctx, v1.Hash{Algorithm: d.Digest.Algorithm().String(), Hex: d.Digest.Encoded()})
}

func (r *registryStore) write(ctx context.Context, manifest, config []byte, blobs []ocispec.Descriptor, open blobOpener) error {
	core := &cacheImage{ctx: ctx, manifest: manifest, config: config, blobs: map[string]ocispec.Descriptor{}, open: open}
	for _, b := range blobs {
		core.blobs[b.Digest.String()] = b
	}
	img, err := partial.CompressedToImage(core)
	if err != nil {
		return err
	}
	return r.cl.Push(ctx, r.ref, img, nil)
}

// cacheImage presents a cache manifest to go-containerregistry for a
// push: its manifest and config as written, its blobs read on demand.
type cacheImage struct {
	ctx      context.Context
	manifest []byte
	config   []byte
	blobs    map[string]ocispec.Descriptor
	open     blobOpener
}

func (c *cacheImage) RawConfigFile() ([]byte, error) { return c.config, nil }
func (c *cacheImage) MediaType() (types.MediaType, error) {
	return types.MediaType(ocispec.MediaTypeImageManifest), nil
}
func (c *cacheImage) RawManifest() ([]byte, error) { return c.manifest, nil }
func (c *cacheImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	d, ok := c.blobs[h.String()]
	if !ok {
		return nil, fmt.Errorf("blob %s is not part of the cache", h)
	}
	return &cacheBlob{c: c, desc: d}, nil
}

type cacheBlob struct {
	c    *cacheImage
	desc ocispec.Descriptor
}

func (b *cacheBlob) Digest() (v1.Hash, error) {
	return v1.Hash{Algorithm: b.desc.Digest.Algorithm().String(), Hex: b.desc.Digest.Encoded()}, nil
}
func (b *cacheBlob) Size() (int64, error) { return b.desc.Size, nil }
func (b *cacheBlob) MediaType() (types.MediaType, error) {
	return types.MediaType(b.desc.MediaType), nil
}
func (b *cacheBlob) Compressed() (io.ReadCloser, error) { return b.c.open(b.c.ctx, b.desc) }

// layoutStore keeps caches in an OCI image layout directory (on the
// daemon's host): blobs under blobs/<alg>/<hex>, each cache manifest in
// index.json named by its tag (org.opencontainers.image.ref.name).
type layoutStore struct {
	dir string
	tag string
}

const refNameAnnotation = "org.opencontainers.image.ref.name"

func (l *layoutStore) blobPath(d digest.Digest) string {
	return filepath.Join(l.dir, "blobs", d.Algorithm().String(), d.Encoded())
}

func (l *layoutStore) index() (*ocispec.Index, error) {
	b, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.Newf(errdefs.NotFound, "no build cache at %s (no index.json)", l.dir)
		}
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	return &idx, nil
}

func (l *layoutStore) readBlob(d ocispec.Descriptor, limit int64) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, err
	}
	f, err := os.Open(l.blobPath(d.Digest))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit || digest.FromBytes(b) != d.Digest {
		return nil, fmt.Errorf("blob %s does not match its digest", d.Digest)
	}
	return b, nil
}

func (l *layoutStore) read(ctx context.Context) ([]byte, []byte, error) {
	idx, err := l.index()
	if err != nil {
		return nil, nil, err
	}
	for _, m := range idx.Manifests {
		if m.Annotations[refNameAnnotation] != l.tag {
			continue
		}
		if m.MediaType != ocispec.MediaTypeImageManifest {
			return nil, nil, fmt.Errorf("not a build cache: a %s", m.MediaType)
		}
		mb, err := l.readBlob(m, maxCacheConfig)
		if err != nil {
			return nil, nil, fmt.Errorf("manifest: %w", err)
		}
		var man ocispec.Manifest
		if err := json.Unmarshal(mb, &man); err != nil {
			return nil, nil, fmt.Errorf("manifest: %w", err)
		}
		if man.Config.MediaType != cacheConfigMediaType {
			return nil, nil, fmt.Errorf("not a berth build cache (config media type %q)", man.Config.MediaType)
		}
		cb, err := l.readBlob(man.Config, maxCacheConfig)
		if err != nil {
			return nil, nil, fmt.Errorf("config: %w", err)
		}
		return mb, cb, nil
	}
	return nil, nil, errdefs.Newf(errdefs.NotFound, "no build cache tagged %q in %s", l.tag, l.dir)
}

func (l *layoutStore) open(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, err
	}
	return os.Open(l.blobPath(d.Digest))
}

func (l *layoutStore) write(ctx context.Context, manifest, config []byte, blobs []ocispec.Descriptor, open blobOpener) error {
	if err := os.MkdirAll(filepath.Join(l.dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	put := func(d digest.Digest, size int64, r io.Reader) error {
		p := l.blobPath(d)
		if fi, err := os.Stat(p); err == nil && fi.Size() == size {
			return nil
		}
		tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		h := digest.SHA256.Digester()
		n, err := io.Copy(io.MultiWriter(tmp, h.Hash()), r)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if n != size || h.Digest() != d {
			return fmt.Errorf("blob %s: wrote %d bytes of digest %s", d, n, h.Digest())
		}
		return os.Rename(tmp.Name(), p)
	}
	for _, b := range blobs {
		if err := func() error {
			rc, err := open(ctx, b)
			if err != nil {
				return err
			}
			defer rc.Close()
			return put(b.Digest, b.Size, rc)
		}(); err != nil {
			return err
		}
	}
	if err := put(digest.FromBytes(config), int64(len(config)), bytes.NewReader(config)); err != nil {
		return err
	}
	md := digest.FromBytes(manifest)
	if err := put(md, int64(len(manifest)), bytes.NewReader(manifest)); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(l.dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	idx, err := l.index()
	if err != nil {
		if !errdefs.Is(err, errdefs.NotFound) {
			return err
		}
		idx = &ocispec.Index{MediaType: ocispec.MediaTypeImageIndex}
		idx.SchemaVersion = 2
	}
	var keep []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.Annotations[refNameAnnotation] != l.tag {
			keep = append(keep, m)
		}
	}
	idx.Manifests = append(keep, ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest, ArtifactType: cacheArtifactType,
		Digest: md, Size: int64(len(manifest)), Annotations: map[string]string{refNameAnnotation: l.tag},
	})
	ib, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.dir, ".index.json.tmp")
	if err := os.WriteFile(tmp, ib, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(l.dir, "index.json"))
}
