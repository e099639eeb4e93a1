package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
	"github.com/berth-dev/berth/internal/image/content"
	"github.com/berth-dev/berth/internal/image/manifest"
	"github.com/berth-dev/berth/internal/image/reference"
	"github.com/berth-dev/berth/internal/progress"
)

// maxMetadataSize bounds the JSON documents of an archive (manifest.json,
// index.json, manifests, configs).
const maxMetadataSize = 64 << 20

// loadPlan is one image found in an archive, ready to be unpacked.
type loadPlan struct {
	mdesc  ocispec.Descriptor
	mbytes []byte
	cdesc  ocispec.Descriptor
	cbytes []byte
	cfg    ocispec.Image
	layers []loadLayer
	tags   []reference.Reference
}

type loadLayer struct {
	file string // path inside the unpacked archive
	desc ocispec.Descriptor
}

// Load reads an image archive from r — what `docker save` writes (Docker
// 25+ OCI-based or legacy with layer.tar directories) or an OCI image
// layout, optionally gzip or zstd compressed — and adds its images with
// their tags, as pull does. Every blob is verified against its digest;
// the archive itself may hold only regular files and directories with
// names inside it. Images are recorded all together once every layer is
// unpacked, so a failure records nothing (unpacked layers and stored blobs
// of a failed load are left to GC, as after a failed pull). It returns
// the familiar tags loaded, or the IDs of images loaded without a tag.
func (s *Service) Load(ctx context.Context, r io.Reader, sink progress.Sink) ([]string, error) {
	if sink == nil {
		sink = progress.Discard
	}
	tmp, err := os.MkdirTemp(s.cfg.Root, "load-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := extractArchive(ctx, r, tmp); err != nil {
		return nil, err
	}
	if err := verifyBlobFiles(tmp); err != nil {
		return nil, err
	}
	var plans []*loadPlan
	if _, err := os.Stat(filepath.Join(tmp, "manifest.json")); err == nil {
		plans, err = s.planDockerArchive(tmp)
		if err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(filepath.Join(tmp, "index.json")); err == nil {
		plans, err = s.planOCILayout(tmp)
		if err != nil {
			return nil, err
		}
	} else {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "load: archive has neither manifest.json nor index.json")
	}
	if len(plans) == 0 {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "load: archive holds no image")
	}

	s.gcLock.RLock()
	defer s.gcLock.RUnlock()
	var recs []*record
	for _, p := range plans {
		rec, err := s.unpackPlan(ctx, tmp, p, sink)
		if err != nil {
			return nil, err
		}
		recs = append(recs, rec)
	}
	var loaded []string
	err = s.db.Update(func(tx *bolt.Tx) error {
		loaded = nil
		for i, rec := range recs {
			if old, err := getRecord(tx, rec.ID); err == nil {
				rec.Added, rec.LastTagTime = old.Added, old.LastTagTime
			}
			if len(plans[i].tags) > 0 {
				rec.LastTagTime = nowUTC()
			}
			if err := putRecord(tx, rec); err != nil {
				return err
			}
			for _, t := range plans[i].tags {
				if err := setRef(tx, t.String(), rec.ID); err != nil {
					return err
				}
				loaded = append(loaded, t.Familiar())
			}
			if len(plans[i].tags) == 0 {
				loaded = append(loaded, rec.ID.String())
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, l := range loaded {
		if strings.HasPrefix(l, "sha256:") {
			sink.Update(progress.Event{Status: "Loaded image ID: " + l})
		} else {
			sink.Update(progress.Event{Status: "Loaded image: " + l})
		}
	}
	return loaded, nil
}

// extractArchive unpacks the outer archive into dir. Only regular files
// and directories with local names are accepted: a link of any kind, a
// device or a name climbing out is refused, as is a name given twice.
func extractArchive(ctx context.Context, r io.Reader, dir string) error {
	dr, _, err := archive.DecompressStream(r)
	if err != nil {
		return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: %w", err))
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	seen := map[string]bool{}
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return errdefs.Newf(errdefs.InvalidArgument, "load: empty archive")
			}
			return nil
		}
		if err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: reading archive: %w", err))
		}
		name := strings.TrimPrefix(h.Name, "./")
		clean := path.Clean(name)
		if clean == "." && h.Typeflag == tar.TypeDir {
			continue
		}
		if path.IsAbs(name) || !filepath.IsLocal(clean) || strings.Contains(name, "\\") {
			return errdefs.Newf(errdefs.InvalidArgument, "load: archive entry %q: name is outside the archive", shorten(h.Name))
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(filepath.Join(dir, clean), 0o700); err != nil {
				return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: archive entry %q: %w", shorten(h.Name), err))
			}
			continue
		case tar.TypeReg:
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeSymlink, tar.TypeLink:
			return errdefs.Newf(errdefs.InvalidArgument, "load: archive entry %q: links are not allowed in an image archive", shorten(h.Name))
		default:
			return errdefs.Newf(errdefs.InvalidArgument, "load: archive entry %q: type %q is not allowed in an image archive", shorten(h.Name), h.Typeflag)
		}
		if seen[clean] {
			return errdefs.Newf(errdefs.InvalidArgument, "load: archive entry %q appears twice", shorten(h.Name))
		}
		seen[clean] = true
		target := filepath.Join(dir, clean)
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: archive entry %q: %w", shorten(h.Name), err))
		}
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: archive entry %q: %w", shorten(h.Name), err))
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: archive entry %q: %w", shorten(h.Name), err))
		}
	}
}

func shorten(s string) string {
	if len(s) > 200 {
		return s[:100] + "..." + s[len(s)-50:]
	}
	return s
}

// verifyBlobFiles checks that every file under blobs/<algorithm>/ hashes
// to its name.
func verifyBlobFiles(dir string) error {
	root := filepath.Join(dir, "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		alg, hex, ok := strings.Cut(filepath.ToSlash(rel), "/")
		dg := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
		if !ok || dg.Validate() != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "load: blobs/%s is not named by a digest", rel)
		}
		got, err := fileDigest(p, dg.Algorithm())
		if err != nil {
			return err
		}
		if got != dg {
			return errdefs.Newf(errdefs.InvalidArgument, "load: blob %s: content has digest %s", dg, got)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func fileDigest(p string, alg digest.Algorithm) (digest.Digest, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if !alg.Available() {
		return "", errdefs.Newf(errdefs.InvalidArgument, "load: unsupported digest algorithm %q", alg)
	}
	return alg.FromReader(f)
}

// readArchiveFile reads a small file of the archive by its name in the
// archive, which comes from the archive's own metadata and is checked.
func readArchiveFile(dir, name string) ([]byte, error) {
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	if path.IsAbs(name) || !filepath.IsLocal(clean) {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "load: %q is outside the archive", shorten(name))
	}
	f, err := os.Open(filepath.Join(dir, clean))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "load: %s is missing from the archive", shorten(name))
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadataSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMetadataSize {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "load: %s is too large", shorten(name))
	}
	return b, nil
}

// readBlobFile reads a small blob of an OCI layout and checks it against
// its descriptor.
func readBlobFile(dir string, d ocispec.Descriptor) ([]byte, error) {
	if err := content.ValidateDigest(d.Digest); err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: %w", err))
	}
	b, err := readArchiveFile(dir, blobPath(d.Digest))
	if err != nil {
		return nil, err
	}
	if digest.FromBytes(b) != d.Digest || (d.Size > 0 && int64(len(b)) != d.Size) {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "load: blob %s does not match its digest or size", d.Digest)
	}
	return b, nil
}

// planOCILayout reads index.json: every manifest it lists (an index is
// resolved to the service's platform) becomes an image, tagged from the
// annotations Docker and containerd write.
func (s *Service) planOCILayout(dir string) ([]*loadPlan, error) {
	b, err := readArchiveFile(dir, "index.json")
	if err != nil {
		return nil, err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "load: index.json: %w", err)
	}
	var plans []*loadPlan
	byDigest := map[digest.Digest]*loadPlan{}
	for _, d := range idx.Manifests {
		md, mb, err := s.resolveLayoutManifest(dir, d, 0)
		if err != nil {
			return nil, err
		}
		p := byDigest[md.Digest]
		if p == nil {
			if p, err = planFromManifest(dir, md, mb); err != nil {
				return nil, err
			}
			byDigest[md.Digest] = p
			plans = append(plans, p)
		}
		if t, ok := refFromAnnotations(d.Annotations); ok && !hasRef(p.tags, t) {
			p.tags = append(p.tags, t)
		}
	}
	return plans, nil
}

// refFromAnnotations names an index.json entry: containerd's and
// Docker's full image name, or a ref.name that is a full reference.
func refFromAnnotations(a map[string]string) (reference.Reference, bool) {
	for _, v := range []string{a[annotationImageName], a[annotationRefName]} {
		if v == "" {
			continue
		}
		if r, err := reference.Parse(v); err == nil && r.Tag() != "" && r.Digest() == "" {
			return r, true
		}
	}
	return reference.Reference{}, false
}

func (s *Service) resolveLayoutManifest(dir string, d ocispec.Descriptor, depth int) (ocispec.Descriptor, []byte, error) {
	if depth > 4 {
		return d, nil, errdefs.Newf(errdefs.InvalidArgument, "load: indexes nested too deep")
	}
	b, err := readBlobFile(dir, d)
	if err != nil {
		return d, nil, err
	}
	if !manifest.IsIndex(d.MediaType) {
		return d, b, nil
	}
	sub, err := manifest.ParseIndex(b)
	if err != nil {
		return d, nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: index %s: %w", d.Digest, err))
	}
	sel, err := manifest.SelectPlatform(sub, s.cfg.Platform)
	if err != nil {
		return d, nil, errdefs.Newf(errdefs.NotFound, "load: index %s: %w", d.Digest, err)
	}
	return s.resolveLayoutManifest(dir, sel, depth+1)
}

func planFromManifest(dir string, md ocispec.Descriptor, mb []byte) (*loadPlan, error) {
	m, err := manifest.ParseManifest(mb)
	if err != nil {
		return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: manifest %s: %w", md.Digest, err))
	}
	if md.MediaType == "" {
		md.MediaType = m.MediaType
	}
	md.Size = int64(len(mb))
	p := &loadPlan{mdesc: ocispec.Descriptor{MediaType: md.MediaType, Digest: md.Digest, Size: md.Size}, mbytes: mb, cdesc: m.Config}
	if p.cbytes, err = readBlobFile(dir, m.Config); err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if _, err := manifest.CheckLayer(l); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: %w", err))
		}
		if err := content.ValidateDigest(l.Digest); err != nil {
			return nil, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: %w", err))
		}
		f := blobPath(l.Digest)
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "load: layer blob %s is missing from the archive", l.Digest)
		}
		if fi.Size() != l.Size {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "load: layer blob %s is %d bytes, the manifest says %d", l.Digest, fi.Size(), l.Size)
		}
		p.layers = append(p.layers, loadLayer{file: f, desc: l})
	}
	return p, p.parseConfig()
}

func (p *loadPlan) parseConfig() error {
	if err := json.Unmarshal(p.cbytes, &p.cfg); err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "load: image config %s: %w", p.cdesc.Digest, err)
	}
	if len(p.cfg.RootFS.DiffIDs) != len(p.layers) {
		return errdefs.Newf(errdefs.InvalidArgument, "load: image config %s lists %d layers, the archive %d", p.cdesc.Digest, len(p.cfg.RootFS.DiffIDs), len(p.layers))
	}
	return nil
}

// planDockerArchive reads manifest.json. When the archive is also an OCI
// layout holding the image's original manifest (Docker 25+), that manifest
// is kept, so the image keeps its manifest digest; otherwise (legacy
// archives, layer.tar directories) a Docker schema 2 manifest is made for
// the layers as they are in the archive.
func (s *Service) planDockerArchive(dir string) ([]*loadPlan, error) {
	b, err := readArchiveFile(dir, "manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "load: manifest.json: %w", err)
	}
	// Original manifests by config digest, from index.json if present.
	originals := map[digest.Digest]*loadPlan{}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		ps, err := s.planOCILayout(dir)
		if err != nil {
			return nil, err
		}
		for _, p := range ps {
			originals[p.cdesc.Digest] = p
		}
	}
	var plans []*loadPlan
	for _, e := range entries {
		cb, err := readArchiveFile(dir, e.Config)
		if err != nil {
			return nil, err
		}
		cd := digest.FromBytes(cb)
		// Legacy archives name the config <hex>.json: it must match.
		if base := strings.TrimSuffix(path.Base(e.Config), ".json"); len(base) == 64 && isHex(base) && base != cd.Encoded() {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "load: config %s has digest %s", e.Config, cd)
		}
		var p *loadPlan
		if o := originals[cd]; o != nil && len(o.layers) == len(e.Layers) {
			cp := *o
			cp.tags = nil
			p = &cp
		} else {
			p, err = synthesizePlan(dir, e, cb, cd)
			if err != nil {
				return nil, err
			}
		}
		for _, t := range e.RepoTags {
			ref, err := reference.Parse(t)
			if err != nil || ref.Digest() != "" {
				return nil, errdefs.Newf(errdefs.InvalidArgument, "load: invalid tag %q in manifest.json", t)
			}
			if ref.Tag() == "" {
				ref, _ = ref.WithTag("latest")
			}
			if !hasRef(p.tags, ref) {
				p.tags = append(p.tags, ref)
			}
		}
		plans = append(plans, p)
	}
	return plans, nil
}

// synthesizePlan makes a Docker schema 2 manifest for a manifest.json
// entry whose layers are files of the archive (compressed or not).
func synthesizePlan(dir string, e dockerManifestEntry, cb []byte, cd digest.Digest) (*loadPlan, error) {
	p := &loadPlan{cbytes: cb, cdesc: ocispec.Descriptor{MediaType: manifest.MediaTypeDockerConfig, Digest: cd, Size: int64(len(cb))}}
	m := ocispec.Manifest{MediaType: manifest.MediaTypeDockerManifest, Config: p.cdesc, Layers: []ocispec.Descriptor{}}
	m.SchemaVersion = 2
	for _, lf := range e.Layers {
		clean := path.Clean(strings.TrimPrefix(lf, "./"))
		if path.IsAbs(lf) || !filepath.IsLocal(clean) {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "load: layer %q is outside the archive", shorten(lf))
		}
		full := filepath.Join(dir, clean)
		f, err := os.Open(full)
		if err != nil {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "load: layer %s is missing from the archive", shorten(lf))
		}
		head := make([]byte, 4)
		n, _ := io.ReadFull(f, head)
		fi, serr := f.Stat()
		f.Close()
		if serr != nil {
			return nil, serr
		}
		d, err := fileDigest(full, digest.SHA256)
		if err != nil {
			return nil, err
		}
		mt := manifest.MediaTypeDockerLayerUncompressed
		switch archive.Detect(head[:n]) {
		case archive.Gzip:
			mt = manifest.MediaTypeDockerLayer
		case archive.Zstd:
			mt = manifest.MediaTypeDockerLayerZstd
		}
		desc := ocispec.Descriptor{MediaType: mt, Digest: d, Size: fi.Size()}
		m.Layers = append(m.Layers, desc)
		p.layers = append(p.layers, loadLayer{file: clean, desc: desc})
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	p.mbytes = mb
	p.mdesc = ocispec.Descriptor{MediaType: m.MediaType, Digest: digest.FromBytes(mb), Size: int64(len(mb))}
	return p, p.parseConfig()
}

// unpackPlan stores one image's blobs and unpacks its layers (those whose
// chain is not there yet), verifying each layer's content against the
// config's diff ID and its blob digest. It returns the image's record.
func (s *Service) unpackPlan(ctx context.Context, dir string, p *loadPlan, sink progress.Sink) (*record, error) {
	chains := manifest.ChainIDs(p.cfg.RootFS.DiffIDs)
	for i, l := range p.layers {
		id := progress.ShortID(l.desc.Digest.String())
		if err := s.loadLayer(ctx, filepath.Join(dir, l.file), l.desc, p.cfg.RootFS.DiffIDs[i], chains, i); err != nil {
			return nil, err
		}
		sink.Update(progress.Event{ID: id, Status: "Loading layer", Current: l.desc.Size, Total: l.desc.Size})
	}
	if err := s.storeBytes(ctx, p.cdesc, p.cbytes); err != nil {
		return nil, err
	}
	if err := s.storeBytes(ctx, p.mdesc, p.mbytes); err != nil {
		return nil, err
	}
	rec := &record{
		ID: p.cdesc.Digest, Target: p.mdesc, Manifest: p.mdesc, Config: p.cdesc,
		Platform: ocispec.Platform{OS: p.cfg.OS, Architecture: p.cfg.Architecture, Variant: p.cfg.Variant, OSVersion: p.cfg.OSVersion},
		Added:    time.Now().UTC(),
	}
	for i, l := range p.layers {
		usage, err := s.layerSize(ctx, chains[i])
		if err != nil {
			return nil, err
		}
		rec.Layers = append(rec.Layers, layer{Blob: l.desc, DiffID: p.cfg.RootFS.DiffIDs[i], ChainID: chains[i], Size: usage})
		rec.Size += usage
	}
	return rec, nil
}

// loadLayer makes sure the blob in file is stored and its chain
// (chains[i], on chains[i-1]) is unpacked.
func (s *Service) loadLayer(ctx context.Context, file string, desc ocispec.Descriptor, diffID digest.Digest, chains []digest.Digest, i int) (retErr error) {
	chain := chains[i]
	mu := s.chainLock(chain)
	mu.Lock()
	defer mu.Unlock()
	if !s.haveChain(ctx, chain) {
		key := fmt.Sprintf("load-%s-%d", chain.Encoded()[:16], time.Now().UnixNano())
		if _, err := s.snaps.Prepare(ctx, key, "", map[string]string{"berth.layer": desc.Digest.String()}); err != nil {
			return err
		}
		committed := false
		defer func() {
			if !committed {
				_ = s.snaps.Remove(context.WithoutCancel(ctx), key)
			}
		}()
		upper, _, err := s.snaps.Upper(ctx, key)
		if err != nil {
			return err
		}
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		dr, _, err := archive.DecompressStream(f)
		if err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: layer %s: %w", desc.Digest, err))
		}
		res, err := archive.Apply(ctx, upper, dr, archive.ApplyOptions{})
		if err == nil {
			if cd, ok := dr.(archive.CompressedDigester); ok {
				d, _, derr := cd.CompressedDigest()
				if derr != nil {
					err = derr
				} else if d != desc.Digest {
					err = errdefs.Newf(errdefs.InvalidArgument, "load: layer %s: content has digest %s", desc.Digest, d)
				}
			}
		}
		dr.Close()
		if err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: layer %s: %w", desc.Digest, err))
		}
		if res.DiffID != diffID {
			return errdefs.Newf(errdefs.InvalidArgument, "load: layer %s: uncompressed content is %s, the image config says %s", desc.Digest, res.DiffID, diffID)
		}
		parent := ""
		if i > 0 {
			parent = chains[i-1].String()
		}
		if err := s.snaps.CommitOn(ctx, chain.String(), key, parent); err != nil {
			return err
		}
		committed = true
	}
	if s.haveBlob(ctx, desc.Digest) {
		return nil
	}
	if err := checkDiffID(file, desc.Digest, diffID); err != nil {
		return err
	}
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := s.content.Put(ctx, f, desc.Digest, desc.Size); err != nil {
		return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: layer %s: %w", desc.Digest, err))
	}
	return nil
}

// checkDiffID verifies that the blob in file decompresses to diffID (for a
// layer whose chain was unpacked before, from another blob).
func checkDiffID(file string, blob, diffID digest.Digest) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	dr, _, err := archive.DecompressStream(f)
	if err != nil {
		return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: layer %s: %w", blob, err))
	}
	defer dr.Close()
	got, err := digest.SHA256.FromReader(dr)
	if err != nil {
		return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("load: layer %s: %w", blob, err))
	}
	if got != diffID {
		return errdefs.Newf(errdefs.InvalidArgument, "load: layer %s: uncompressed content is %s, the image config says %s", blob, got, diffID)
	}
	return nil
}
