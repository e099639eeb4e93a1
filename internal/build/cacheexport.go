package build

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/image/archive"
)

// exportCaches writes the build's cache to each --cache-to: mode=min the
// steps of the target stage's chain (the image's own steps), mode=max
// those of every stage the build ran, with the layers they use and the
// contents of the cache mounts the build's RUN steps name. A failed
// export fails the build unless the spec says ignore-error=true.
func (s *session) exportCaches(ctx context.Context, to []cacheSpec) error {
	for _, sp := range to {
		err := s.exportCache(ctx, sp)
		if err == nil {
			continue
		}
		if sp.IgnoreError {
			s.b.cfg.Log.Warn("build cache export failed", "cache", sp.raw, "err", err)
			if !s.opts.Quiet {
				s.out.Stream(fmt.Sprintf("[Warning] build cache export to %s failed: %v\n", sp, err))
			}
			continue
		}
		return fmt.Errorf("exporting build cache to %s: %w", sp, err)
	}
	return nil
}

func (s *session) exportCache(ctx context.Context, sp cacheSpec) error {
	store, err := s.b.cacheStoreFor(sp, s.opts)
	if err != nil {
		return err
	}
	var heads []string
	if sp.Mode == "max" {
		for _, sr := range s.stages {
			if sr.needed && sr.key != "" {
				heads = append(heads, sr.key)
			}
		}
	} else if t := s.target(); t >= 0 {
		heads = append(heads, s.stages[t].key)
	}
	cfg := cacheConfig{SchemaVersion: cacheSchemaVersion, Layers: map[digest.Digest]digest.Digest{}}
	p := s.b.cfg.Images.Platform()
	cfg.Platform = ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	var blobs []ocispec.Descriptor
	seen := map[string]bool{}
	for _, k := range heads {
		for k != "" && !seen[k] {
			e := s.b.cache.get(k)
			if e == nil {
				break
			}
			seen[k] = true
			step := cacheStep{Key: k, Parent: e.Parent, Description: e.Description, Config: e.State.Config}
			step.Config.RootFS.DiffIDs = nil
			for _, l := range e.State.Layers {
				step.Layers = append(step.Layers, l.Blob.Digest)
				if _, ok := cfg.Layers[l.Blob.Digest]; !ok {
					cfg.Layers[l.Blob.Digest] = l.DiffID
					desc := l.Blob
					desc.Annotations = map[string]string{cacheDiffIDAnnotation: l.DiffID.String()}
					blobs = append(blobs, desc)
				}
			}
			cfg.Steps = append(cfg.Steps, step)
			k = e.Parent
		}
	}
	layers := len(blobs)
	// Parents before children: easier to read, and the order an
	// importer meets them.
	for i, j := 0, len(cfg.Steps)-1; i < j; i, j = i+1, j-1 {
		cfg.Steps[i], cfg.Steps[j] = cfg.Steps[j], cfg.Steps[i]
	}
	spool, err := os.MkdirTemp(s.b.cfg.Root, "ctx-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(spool)
	files := map[digest.Digest]string{}
	for _, id := range s.cacheMountIDs() {
		dir := s.b.cacheMountDir(id)
		if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 {
			continue
		}
		desc, diffID, file, err := packCacheMount(ctx, dir, spool)
		if err != nil {
			return fmt.Errorf("cache mount %s: %w", id, err)
		}
		desc.Annotations = map[string]string{cacheMountAnnotation: id, cacheDiffIDAnnotation: diffID.String()}
		if _, dup := cfg.Layers[desc.Digest]; !dup {
			blobs = append(blobs, desc)
		}
		files[desc.Digest] = file
		cfg.Layers[desc.Digest] = diffID
		cfg.Mounts = append(cfg.Mounts, cacheMountRecord{ID: id, Blob: desc.Digest})
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest, ArtifactType: cacheArtifactType,
		Config: ocispec.Descriptor{MediaType: cacheConfigMediaType, Digest: digest.FromBytes(cb), Size: int64(len(cb))},
		Layers: blobs,
		Annotations: map[string]string{
			ocispec.AnnotationCreated: time.Now().UTC().Format(time.RFC3339),
		},
	}
	m.SchemaVersion = 2
	if m.Layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return err
	}
	open := func(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
		if f, ok := files[d.Digest]; ok {
			return os.Open(f)
		}
		return s.b.cfg.Images.Content().Open(ctx, d.Digest)
	}
	if err := store.write(ctx, mb, cb, blobs, open); err != nil {
		return err
	}
	if !s.opts.Quiet {
		s.out.Stream(fmt.Sprintf("Exported build cache to %s: %d steps, %d layers, %d cache mounts\n", sp, len(cfg.Steps), layers, len(cfg.Mounts)))
	}
	return nil
}

// packCacheMount writes dir as a gzip tar into spool and returns its
// descriptor, its uncompressed digest and the file.
func packCacheMount(ctx context.Context, dir, spool string) (ocispec.Descriptor, digest.Digest, string, error) {
	f, err := os.CreateTemp(spool, "mount-")
	if err != nil {
		return ocispec.Descriptor{}, "", "", err
	}
	defer f.Close()
	ch := sha256.New()
	cw := &countWriter{w: io.MultiWriter(f, ch)}
	gz := archive.Compress(cw, archive.Gzip, 0)
	uh := sha256.New()
	if err := archive.Tar(ctx, dir, io.MultiWriter(gz, uh)); err != nil {
		gz.Close()
		return ocispec.Descriptor{}, "", "", err
	}
	if err := gz.Close(); err != nil {
		return ocispec.Descriptor{}, "", "", err
	}
	if err := f.Close(); err != nil {
		return ocispec.Descriptor{}, "", "", err
	}
	desc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageLayerGzip,
		Digest:    digest.NewDigest(digest.SHA256, ch), Size: cw.n,
	}
	return desc, digest.NewDigest(digest.SHA256, uh), f.Name(), nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// target is the index of the stage the build made the image of.
func (s *session) target() int {
	if s.opts.Target != "" {
		if i, ok := s.df.stageIndex(s.opts.Target, len(s.df.stages)); ok {
			return i
		}
		return -1
	}
	return len(s.df.stages) - 1
}

// cacheMountIDs are the ids of the cache mounts of the RUN steps of the
// stages the build ran (those whose target is relative without an id
// are known once their step ran), sorted.
func (s *session) cacheMountIDs() []string {
	ids := map[string]bool{}
	s.mu.Lock()
	for id := range s.mountsUsed {
		ids[id] = true
	}
	s.mu.Unlock()
	for _, sr := range s.stages {
		if !sr.needed {
			continue
		}
		for _, c := range sr.stage.Commands {
			rc, ok := c.(*instructions.RunCommand)
			if !ok {
				continue
			}
			for _, m := range instructions.GetMounts(rc) {
				if m.Type != instructions.MountTypeCache {
					continue
				}
				switch {
				case m.CacheID != "":
					ids[m.CacheID] = true
				case strings.HasPrefix(m.Target, "/"):
					ids[m.Target] = true
				}
			}
		}
	}
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// noteCacheMount records that a RUN step of the build used cache mount id.
func (s *session) noteCacheMount(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mountsUsed == nil {
		s.mountsUsed = map[string]bool{}
	}
	s.mountsUsed[id] = true
}
