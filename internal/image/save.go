package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/reference"
)

// SaveFormat selects the layout of the archive Save writes.
type SaveFormat int

const (
	// DockerArchive is what Docker 25+ writes: an OCI image layout
	// (oci-layout, index.json, blobs/sha256/*) plus manifest.json and
	// repositories, so that older `docker load` and OCI tools both read it.
	DockerArchive SaveFormat = iota
	// OCILayout is a plain OCI image layout.
	OCILayout
)

// Annotations Docker and containerd put on index.json entries.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = ocispec.AnnotationRefName
)

// dockerManifestEntry is one element of manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
	// LayerSources is unused by berth; kept so unknown fields round-trip.
	LayerSources map[digest.Digest]ocispec.Descriptor `json:",omitempty"`
}

// saveItem is one image to save and the references it is saved under.
type saveItem struct {
	r    *record
	tags []reference.Reference
}

// Save writes the images names (references or IDs) to w as one tar
// archive in format. Layers are written as stored (compressed blobs).
// Naming a tag saves that tag; a repository without tag saves all its
// tags; an ID saves the image without tags, as Docker does.
func (s *Service) Save(ctx context.Context, names []string, w io.Writer, format SaveFormat) error {
	if len(names) == 0 {
		return errdefs.Newf(errdefs.InvalidArgument, "save: no images named")
	}
	if format != DockerArchive && format != OCILayout {
		return errdefs.Newf(errdefs.InvalidArgument, "save: unknown format %d", format)
	}
	var items []*saveItem
	byID := map[digest.Digest]*saveItem{}
	s.gcLock.RLock()
	defer s.gcLock.RUnlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, n := range names {
			recs, tags, err := s.resolveSave(tx, n)
			if err != nil {
				return err
			}
			for _, r := range recs {
				it := byID[r.ID]
				if it == nil {
					it = &saveItem{r: r}
					byID[r.ID] = it
					items = append(items, it)
				}
				for _, t := range tags {
					if tv := tx.Bucket(bucketRefs).Get([]byte(t.String())); string(tv) == r.ID.String() && !hasRef(it.tags, t) {
						it.tags = append(it.tags, t)
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	addBlob := func(d ocispec.Descriptor) error {
		if written[d.Digest] {
			return nil
		}
		written[d.Digest] = true
		rc, err := s.content.Open(ctx, d.Digest)
		if err != nil {
			return fmt.Errorf("save: blob %s: %w", d.Digest, err)
		}
		defer rc.Close()
		if err := tw.WriteHeader(fileHeader(blobPath(d.Digest), rc.Size())); err != nil {
			return err
		}
		_, err = io.Copy(tw, io.NewSectionReader(rc, 0, rc.Size()))
		return err
	}
	index := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	index.SchemaVersion = 2
	var dockerManifest []dockerManifestEntry
	repos := map[string]map[string]string{}
	for _, it := range items {
		r := it.r
		for _, d := range append([]ocispec.Descriptor{r.Manifest, r.Config}, layerBlobs(r)...) {
			if err := addBlob(d); err != nil {
				return err
			}
		}
		entry := dockerManifestEntry{Config: blobPath(r.Config.Digest), RepoTags: []string{}}
		for _, l := range r.Layers {
			entry.Layers = append(entry.Layers, blobPath(l.Blob.Digest))
		}
		mdesc := ocispec.Descriptor{MediaType: r.Manifest.MediaType, Digest: r.Manifest.Digest, Size: r.Manifest.Size}
		if len(it.tags) == 0 {
			index.Manifests = append(index.Manifests, mdesc)
		}
		for _, t := range it.tags {
			d := mdesc
			d.Annotations = map[string]string{annotationImageName: t.String(), annotationRefName: t.Tag()}
			index.Manifests = append(index.Manifests, d)
			entry.RepoTags = append(entry.RepoTags, t.Familiar())
			repo := t.FamiliarName()
			if repos[repo] == nil {
				repos[repo] = map[string]string{}
			}
			repos[repo][t.Tag()] = r.ID.Encoded()
		}
		dockerManifest = append(dockerManifest, entry)
	}
	files := []struct {
		name string
		v    any
	}{
		{ocispec.ImageLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
		{"index.json", index},
	}
	if format == DockerArchive {
		files = append(files, struct {
			name string
			v    any
		}{"manifest.json", dockerManifest})
		if len(repos) > 0 {
			files = append(files, struct {
				name string
				v    any
			}{"repositories", repos})
		}
	}
	for _, f := range files {
		b, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(fileHeader(f.name, int64(len(b)))); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}

// resolveSave finds the images one name given to save stands for, and the
// tags to save them under.
func (s *Service) resolveSave(tx *bolt.Tx, name string) ([]*record, []reference.Reference, error) {
	ref, perr := reference.ParseNormalized(name)
	if perr == nil && ref.Tag() == "" && ref.Digest() == "" && !(len(name) == 64 && isHex(name)) {
		// A repository name alone: all its tags, as Docker saves them.
		var recs []*record
		var tags []reference.Reference
		prefix := ref.Name() + ":"
		c := tx.Bucket(bucketRefs).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && strings.HasPrefix(string(k), prefix); k, v = c.Next() {
			t, err := reference.Parse(string(k))
			if err != nil || t.Tag() == "" || t.Digest() != "" || t.Name() != ref.Name() {
				continue
			}
			r, err := getRecord(tx, digest.Digest(v))
			if err != nil {
				return nil, nil, err
			}
			recs, tags = append(recs, r), append(tags, t)
		}
		if len(recs) > 0 {
			return recs, tags, nil
		}
	}
	r, err := s.lookup(tx, name)
	if err != nil {
		return nil, nil, err
	}
	if perr == nil && ref.Tag() != "" && ref.Digest() == "" && tx.Bucket(bucketRefs).Get([]byte(ref.String())) != nil {
		return []*record{r}, []reference.Reference{ref}, nil
	}
	return []*record{r}, nil, nil
}

func hasRef(refs []reference.Reference, r reference.Reference) bool {
	for _, x := range refs {
		if x.String() == r.String() {
			return true
		}
	}
	return false
}

func layerBlobs(r *record) []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, len(r.Layers))
	for i, l := range r.Layers {
		out[i] = l.Blob
	}
	return out
}

func blobPath(d digest.Digest) string {
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded()
}

// fileHeader is a regular file entry with fixed metadata, so the same
// images always give the same archive.
func fileHeader(name string, size int64) *tar.Header {
	return &tar.Header{Name: name, Mode: 0o444, Size: size, Typeflag: tar.TypeReg,
		ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
}
