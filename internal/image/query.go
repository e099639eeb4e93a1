package image

import (
	"context"
	"encoding/json"
	"io"
	"path"
	"sort"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	apiimage "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/reference"
)

// config reads an image's config from the content store.
func (s *Service) config(ctx context.Context, r *record) (*dockerspec.DockerOCIImage, error) {
	rc, err := s.content.Open(ctx, r.Config.Digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	var c dockerspec.DockerOCIImage
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, errdefs.Newf(errdefs.Internal, "image %s: config: %w", r.ID, err)
	}
	return &c, nil
}

func familiarAll(refs []string) []string {
	out := make([]string, 0, len(refs))
	for _, r := range refs {
		if ref, err := reference.Parse(r); err == nil {
			out = append(out, ref.Familiar())
		} else {
			out = append(out, r)
		}
	}
	return out
}

// Inspect returns Docker's image inspect document for name (reference or
// ID prefix).
func (s *Service) Inspect(ctx context.Context, name string) (*apiimage.InspectResponse, error) {
	var r *record
	var tags, digests []string
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if r, err = s.lookup(tx, name); err != nil {
			return err
		}
		tags, digests = refsOf(tx, r.ID)
		return nil
	}); err != nil {
		return nil, err
	}
	c, err := s.config(ctx, r)
	if err != nil {
		return nil, err
	}
	out := &apiimage.InspectResponse{
		ID: r.ID.String(), RepoTags: familiarAll(tags), RepoDigests: familiarAll(digests),
		Author: c.Author, Config: &c.Config, Architecture: c.Architecture, Variant: c.Variant,
		Os: c.OS, OsVersion: c.OSVersion, Size: r.Size,
		RootFS:   apiimage.RootFS{Type: c.RootFS.Type},
		Metadata: apiimage.Metadata{LastTagTime: r.LastTagTime},
	}
	if c.Created != nil {
		out.Created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	for _, d := range c.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	for _, h := range c.History {
		if h.Comment != "" {
			out.Comment = h.Comment
		}
	}
	desc := r.Target
	out.Descriptor = &desc
	return out, nil
}

// History returns the image's history, newest first, as Docker does:
// entries that created a layer carry its size, the newest one the image ID
// and tags, the others "<missing>".
func (s *Service) History(ctx context.Context, name string) ([]apiimage.HistoryResponseItem, error) {
	var r *record
	var tags []string
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if r, err = s.lookup(tx, name); err != nil {
			return err
		}
		tags, _ = refsOf(tx, r.ID)
		return nil
	}); err != nil {
		return nil, err
	}
	c, err := s.config(ctx, r)
	if err != nil {
		return nil, err
	}
	var items []apiimage.HistoryResponseItem
	li := 0
	for _, h := range c.History {
		it := apiimage.HistoryResponseItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
		if h.Created != nil {
			it.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && li < len(r.Layers) {
			it.Size = r.Layers[li].Size
			li++
		}
		items = append(items, it)
	}
	if len(c.History) == 0 {
		// No history (an imported image): one entry per layer.
		for _, l := range r.Layers {
			items = append(items, apiimage.HistoryResponseItem{ID: "<missing>", Size: l.Size})
		}
	}
	for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
		items[i], items[j] = items[j], items[i]
	}
	if len(items) > 0 {
		items[0].ID = r.ID.String()
		items[0].Tags = familiarAll(tags)
	}
	for i := range items {
		if items[i].Tags == nil {
			items[i].Tags = []string{}
		}
	}
	return items, nil
}

// ListFilters are the image list filters Docker accepts.
type ListFilters struct {
	All       bool
	Dangling  *bool
	Labels    []string // "key" or "key=value"
	Reference []string // patterns matched against familiar and full names
	Before    string   // image reference or ID
	Since     string
	// Containers counts containers per image ID (optional).
	Containers func(id string) int64
}

// List returns image summaries, newest first.
func (s *Service) List(ctx context.Context, f ListFilters) ([]apiimage.Summary, error) {
	type item struct {
		r             *record
		tags, digests []string
	}
	var items []item
	var before, since *record
	err := s.db.View(func(tx *bolt.Tx) error {
		recs, err := allRecords(tx)
		if err != nil {
			return err
		}
		for _, r := range recs {
			t, d := refsOf(tx, r.ID)
			items = append(items, item{r, t, d})
		}
		if f.Before != "" {
			if before, err = s.lookup(tx, f.Before); err != nil {
				return err
			}
		}
		if f.Since != "" {
			if since, err = s.lookup(tx, f.Since); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := []apiimage.Summary{}
	for _, it := range items {
		c, err := s.config(ctx, it.r)
		if err != nil {
			return nil, err
		}
		created := it.r.Added
		if c.Created != nil {
			created = *c.Created
		}
		dangling := len(it.tags) == 0
		if f.Dangling != nil && *f.Dangling != dangling {
			continue
		}
		if !matchLabels(c.Config.Labels, f.Labels) {
			continue
		}
		if len(f.Reference) > 0 && !matchReference(f.Reference, it.tags, it.digests) {
			continue
		}
		if before != nil && !createdOf(s, ctx, before).After(created) {
			continue
		}
		if since != nil && !created.After(createdOf(s, ctx, since)) {
			continue
		}
		sum := apiimage.Summary{
			ID: it.r.ID.String(), Created: created.Unix(), Labels: c.Config.Labels, ParentID: "",
			RepoTags: familiarAll(it.tags), RepoDigests: familiarAll(it.digests), Size: it.r.Size,
			SharedSize: -1, Containers: -1,
		}
		if f.Containers != nil {
			sum.Containers = f.Containers(it.r.ID.String())
		}
		if sum.Labels == nil {
			sum.Labels = map[string]string{}
		}
		desc := it.r.Target
		sum.Descriptor = &desc
		out = append(out, sum)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created > out[j].Created })
	return out, nil
}

func createdOf(s *Service, ctx context.Context, r *record) time.Time {
	if c, err := s.config(ctx, r); err == nil && c.Created != nil {
		return *c.Created
	}
	return r.Added
}

func matchLabels(labels map[string]string, want []string) bool {
	for _, w := range want {
		k, v, hasV := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	return true
}

// matchReference applies Docker's reference filter: a pattern matches the
// familiar name[:tag] or the full name, with path.Match globbing.
func matchReference(patterns, tags, digests []string) bool {
	for _, p := range patterns {
		for _, r := range append(append([]string{}, tags...), digests...) {
			ref, err := reference.Parse(r)
			if err != nil {
				continue
			}
			cands := []string{ref.Familiar(), ref.FamiliarName(), ref.String(), ref.Name()}
			for _, c := range cands {
				if ok, _ := path.Match(p, c); ok {
					return true
				}
			}
		}
	}
	return false
}

var _ = digest.Digest("")
var _ ocispec.Descriptor
