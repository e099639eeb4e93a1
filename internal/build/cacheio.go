package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/image/archive"
)

// cacheImport is what a build may take its steps from besides the local
// build cache: the steps of imported cache manifests (--cache-from
// type=registry|local), materialised on first use, and local images
// whose history matches the build (the classic builder's --cache-from).
type cacheImport struct {
	b   *Builder
	ctx context.Context
	// steps are the imported entries by cache key.
	steps map[string]importedStep
	// images are the classic builder's cache sources.
	images []*image.State
}

type importedStep struct {
	step  *cacheStep
	cache *importedCache
	store cacheStore
}

// parseCacheOptions checks --cache-from and --cache-to before anything
// is read.
func parseCacheOptions(o Options) (from, to []cacheSpec, images []string, err error) {
	for _, s := range joinSplitSpecs(o.CacheFrom) {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !isCacheSpec(s) {
			images = append(images, s)
			continue
		}
		sp, err := parseCacheSpec(s, false)
		if err != nil {
			return nil, nil, nil, err
		}
		from = append(from, sp)
	}
	for _, s := range joinSplitSpecs(o.CacheTo) {
		sp, err := parseCacheSpec(strings.TrimSpace(s), true)
		if err != nil {
			return nil, nil, nil, err
		}
		to = append(to, sp)
	}
	return from, to, images, nil
}

// joinSplitSpecs undoes the docker CLI's splitting of --cache-from at
// commas (a string slice flag): "type=registry", "ref=..." are one spec.
// An image reference never contains "=", so a key=value entry belongs to
// the spec before it.
func joinSplitSpecs(in []string) []string {
	var out []string
	for _, s := range in {
		s = strings.TrimSpace(s)
		if n := len(out); n > 0 && isCacheSpec(out[n-1]) && !isCacheSpec(s) && strings.Contains(s, "=") {
			out[n-1] += "," + s
			continue
		}
		out = append(out, s)
	}
	return out
}

// importCaches reads the cache manifests of from (a missing, unreadable
// or malformed one is a warning: the build goes on without it), unpacks
// their cache mounts where this daemon has none yet, and resolves the
// classic builder's image sources (a missing image is skipped, as dockerd
// does). It returns nil when there is nothing to import.
func (b *Builder) importCaches(ctx context.Context, o Options, from []cacheSpec, images []string, out Output) *cacheImport {
	if len(from) == 0 && len(images) == 0 {
		return nil
	}
	imp := &cacheImport{b: b, ctx: ctx, steps: map[string]importedStep{}}
	warn := func(sp cacheSpec, err error) {
		b.cfg.Log.Warn("build cache import ignored", "cache", sp.raw, "err", err)
		if !o.Quiet {
			out.Stream(fmt.Sprintf("[Warning] build cache %s not imported: %v\n", sp, err))
		}
	}
	for _, sp := range from {
		store, err := b.cacheStoreFor(sp, o)
		if err != nil {
			warn(sp, err)
			continue
		}
		mb, cb, err := store.read(ctx)
		if err != nil {
			warn(sp, err)
			continue
		}
		ic, err := parseCacheManifest(mb, cb, b.cfg.Images.Platform())
		if err != nil {
			warn(sp, err)
			continue
		}
		for k, st := range ic.steps {
			if _, ok := imp.steps[k]; !ok {
				imp.steps[k] = importedStep{step: st, cache: ic, store: store}
			}
		}
		mounts := b.importCacheMounts(ctx, ic, store)
		if !o.Quiet {
			out.Stream(fmt.Sprintf("Importing build cache from %s: %d steps, %d cache mounts\n", sp, len(ic.steps), mounts))
		}
	}
	for _, ref := range images {
		st, _, err := b.cfg.Images.StateOf(ctx, ref)
		if err != nil {
			b.cfg.Log.Warn("build: cache source skipped", "image", ref, "err", err)
			continue
		}
		imp.images = append(imp.images, st)
	}
	return imp
}

// openFor opens a blob of an imported cache: from the local content
// store when it is there, else from the cache's store.
func (b *Builder) openFor(store cacheStore) func(context.Context, ocispec.Descriptor) func(context.Context) (io.ReadCloser, error) {
	return func(_ context.Context, d ocispec.Descriptor) func(context.Context) (io.ReadCloser, error) {
		return func(ctx context.Context) (io.ReadCloser, error) {
			if rc, err := b.cfg.Images.Content().Open(ctx, d.Digest); err == nil {
				return rc, nil
			}
			return store.open(ctx, d)
		}
	}
}

// fromImports is the build cache's second chance: when key is not in the
// local cache, an imported step or a matching cache source image gives
// its result, which is recorded in the local cache (so it is kept from GC
// and found locally next time). nil: no import has the step.
func (s *session) fromImports(d *dispatcher, key, desc string) *cacheEntry {
	imp := s.imp
	if imp == nil {
		return nil
	}
	var st *image.State
	var parent, description string
	if is, ok := imp.steps[key]; ok {
		var err error
		st, err = imp.materialize(is, d.st)
		if err != nil {
			imp.b.cfg.Log.Warn("build cache: imported step not usable", "key", key, "err", err)
			d.printf("[Warning] imported cache for this step not used: %v\n", err)
			st = nil
		} else {
			parent, description = is.step.Parent, is.step.Description
		}
	}
	if st == nil {
		st = imp.fromImages(d, desc)
		parent, description = d.key, desc
	}
	if st == nil {
		return nil
	}
	e := &cacheEntry{State: st, Parent: parent, Description: description}
	if n := len(st.Config.History); n > 0 && !st.Config.History[n-1].EmptyLayer && len(st.Layers) > 0 {
		e.Size = st.Layers[len(st.Layers)-1].Size
	}
	if err := imp.b.cache.put(key, e); err != nil {
		imp.b.cfg.Log.Warn("build cache: recording an imported step", "err", err)
		return nil
	}
	return e
}

// materialize makes an imported step's state local: every layer blob in
// the content store and unpacked as its chain, fetched only when missing.
// The step must extend cur (the state the build is at): the same layers
// below its own, or it is refused.
func (imp *cacheImport) materialize(is importedStep, cur *image.State) (*image.State, error) {
	if len(is.step.Layers) < len(cur.Layers) {
		return nil, fmt.Errorf("its layers do not extend the current state")
	}
	// A copy: the build changes its state's config in place.
	st := (&image.State{Config: is.step.Config}).Clone()
	st.Config.RootFS.DiffIDs = nil
	parent := ""
	open := imp.b.openFor(is.store)
	for i, bd := range is.step.Layers {
		desc, diff := is.cache.blobs[bd], is.cache.diffs[bd]
		if i < len(cur.Layers) {
			if cur.Layers[i].DiffID != diff {
				return nil, fmt.Errorf("its layer %d (%s) differs from the current state's", i, diff)
			}
			st.Layers = append(st.Layers, cur.Layers[i])
			parent = cur.Layers[i].ChainID.String()
			continue
		}
		l, err := imp.b.cfg.Images.UnpackLayer(imp.ctx, desc, diff, parent, open(imp.ctx, desc))
		if err != nil {
			return nil, err
		}
		st.Layers = append(st.Layers, *l)
		parent = l.ChainID.String()
	}
	return st, nil
}

// cacheMountDir is the directory of cache mount id.
func (b *Builder) cacheMountDir(id string) string {
	return filepath.Join(b.cfg.Root, "cache-mounts", cacheMountName(id))
}

// importCacheMounts unpacks the cache's mounts that this daemon does not
// have (a missing or empty directory): a local cache mount is never
// overwritten. It returns how many it unpacked.
func (b *Builder) importCacheMounts(ctx context.Context, ic *importedCache, store cacheStore) int {
	n := 0
	for _, mr := range ic.mounts {
		dir := b.cacheMountDir(mr.ID)
		if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
			continue
		}
		if err := b.unpackCacheMount(ctx, dir, ic.blobs[mr.Blob], ic.diffs[mr.Blob], store); err != nil {
			b.cfg.Log.Warn("build cache: importing a cache mount", "id", mr.ID, "err", err)
			continue
		}
		n++
	}
	return n
}

func (b *Builder) unpackCacheMount(ctx context.Context, dir string, desc ocispec.Descriptor, diffID digest.Digest, store cacheStore) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	// Unpacked beside, then renamed into place: a crash leaves a ctx-
	// directory, which New removes.
	tmp, err := os.MkdirTemp(b.cfg.Root, "ctx-mount-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	// As a cache mount directory is made (the tar's own root entry, if
	// any, sets it).
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	rc, err := store.open(ctx, desc)
	if err != nil {
		return err
	}
	defer rc.Close()
	vr := &verifyReader{r: rc, h: digest.SHA256.Digester(), want: desc}
	dr, _, err := archive.DecompressStream(vr)
	if err != nil {
		return err
	}
	res, err := archive.Apply(ctx, tmp, dr, archive.ApplyOptions{})
	dr.Close()
	if err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, vr); err != nil {
		return err
	}
	if err := vr.check(); err != nil {
		return err
	}
	if diffID != "" && res.DiffID != diffID {
		return fmt.Errorf("content is %s, not %s", res.DiffID, diffID)
	}
	_ = os.Remove(dir) // an empty directory, if any
	return os.Rename(tmp, dir)
}

// verifyReader checks a stream against its descriptor once read to the
// end.
type verifyReader struct {
	r    io.Reader
	h    digest.Digester
	n    int64
	want ocispec.Descriptor
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Hash().Write(p[:n])
	return n, err
}

func (v *verifyReader) check() error {
	if v.n != v.want.Size || v.h.Digest() != v.want.Digest {
		return fmt.Errorf("blob %s: content does not match its digest or size", v.want.Digest)
	}
	return nil
}
