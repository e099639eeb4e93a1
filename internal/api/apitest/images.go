package apitest

import (
	"archive/tar"
	"context"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/api/filters"
	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/progress"
)

// Images is a fake image backend (and distribution backend). Pulling a
// reference whose name starts with "nosuch" fails as a registry's
// "manifest unknown"; one starting with "broken" fails mid-stream.
type Images struct {
	mu   sync.Mutex
	refs map[string]string // familiar ref → ID
	// Auths records the X-Registry-Auth of each pull and push.
	Auths []registry.AuthConfig
}

var (
	_ imagerouter.Backend             = (*Images)(nil)
	_ imagerouter.DistributionBackend = (*Images)(nil)
)

// NewImages returns a fake holding busybox:latest.
func NewImages() *Images {
	return &Images{refs: map[string]string{"busybox:latest": "sha256:" + strings.Repeat("a", 64)}}
}

func familiar(ref string) string {
	if !strings.Contains(ref, "@") && !strings.Contains(ref[strings.LastIndexByte(ref, '/')+1:], ":") {
		ref += ":latest"
	}
	return strings.TrimPrefix(strings.TrimPrefix(ref, "docker.io/"), "library/")
}

func (f *Images) resolve(name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.refs[familiar(name)]; ok {
		return id, nil
	}
	for _, id := range f.refs {
		if len(name) >= 4 && (strings.HasPrefix(id, name) || strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), name)) {
			return id, nil
		}
	}
	return "", errdefs.Newf(errdefs.NotFound, "No such image: %s", familiar(name))
}

func (f *Images) tagsOf(id string) []string {
	var tags []string
	for r, i := range f.refs {
		if i == id {
			tags = append(tags, r)
		}
	}
	sort.Strings(tags)
	return tags
}

func (f *Images) List(ctx context.Context, o imagerouter.ListOptions) ([]image.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := map[string]bool{}
	for _, id := range f.refs {
		ids[id] = true
	}
	var out []image.Summary
	for id := range ids {
		tags := f.tagsOf(id)
		keep := !o.Filters.Contains("reference")
		for _, t := range tags {
			for _, p := range o.Filters.Get("reference") {
				if t == p || strings.HasPrefix(t, p+":") {
					keep = true
				}
			}
		}
		if keep {
			out = append(out, image.Summary{ID: id, RepoTags: tags, RepoDigests: []string{}, Size: 4_000_000, Containers: -1, SharedSize: -1, Labels: map[string]string{}})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *Images) Inspect(ctx context.Context, name string) (*image.InspectResponse, error) {
	id, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &image.InspectResponse{ID: id, RepoTags: f.tagsOf(id), RepoDigests: []string{}, Architecture: "amd64", Os: "linux", Size: 4_000_000}, nil
}

func (f *Images) History(ctx context.Context, name string) ([]image.HistoryResponseItem, error) {
	id, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	return []image.HistoryResponseItem{{ID: id, CreatedBy: "/bin/sh -c #(nop) ADD file:123 in /", Size: 4_000_000, Tags: []string{}}}, nil
}

func (f *Images) Tag(ctx context.Context, source, target string) error {
	id, err := f.resolve(source)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refs[familiar(target)] = id
	return nil
}

func (f *Images) Remove(ctx context.Context, name string, o imagerouter.RemoveOptions) ([]image.DeleteResponse, error) {
	id, err := f.resolve(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := familiar(name); f.refs[r] == id {
		delete(f.refs, r)
		out := []image.DeleteResponse{{Untagged: r}}
		if len(f.tagsOf(id)) == 0 {
			out = append(out, image.DeleteResponse{Deleted: id})
		}
		return out, nil
	}
	if len(f.tagsOf(id)) > 1 && !o.Force {
		return nil, errdefs.Newf(errdefs.Conflict, "conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", strings.TrimPrefix(id, "sha256:")[:12])
	}
	var out []image.DeleteResponse
	for _, t := range f.tagsOf(id) {
		delete(f.refs, t)
		out = append(out, image.DeleteResponse{Untagged: t})
	}
	return append(out, image.DeleteResponse{Deleted: id}), nil
}

func (f *Images) Prune(ctx context.Context, fl filters.Args) (*image.PruneReport, error) {
	return &image.PruneReport{ImagesDeleted: []image.DeleteResponse{}}, nil
}

func (f *Images) Pull(ctx context.Context, ref string, o imagerouter.PullOptions) error {
	f.mu.Lock()
	if o.Auth != nil {
		f.Auths = append(f.Auths, *o.Auth)
	}
	f.mu.Unlock()
	r := familiar(ref)
	name, tag, _ := strings.Cut(r, ":")
	o.Progress.Update(progress.Event{Status: "Pulling from " + name, ID: tag})
	if strings.HasPrefix(name, "nosuch") {
		return errdefs.Newf(errdefs.NotFound, "manifest for %s not found: manifest unknown", r)
	}
	layer := "0123456789ab"
	o.Progress.Update(progress.Event{ID: layer, Status: "Pulling fs layer"})
	o.Progress.Update(progress.Event{ID: layer, Status: "Downloading", Current: 500, Total: 1000})
	if strings.HasPrefix(name, "broken") {
		return errdefs.Newf(errdefs.Unavailable, "unexpected EOF")
	}
	o.Progress.Update(progress.Event{ID: layer, Status: "Download complete"})
	o.Progress.Update(progress.Event{ID: layer, Status: "Pull complete"})
	o.Progress.Update(progress.Event{Status: "Digest: sha256:" + strings.Repeat("d", 64)})
	o.Progress.Update(progress.Event{Status: "Status: Downloaded newer image for " + r})
	f.mu.Lock()
	f.refs[r] = "sha256:" + strings.Repeat("b", 64)
	f.mu.Unlock()
	return nil
}

func (f *Images) Push(ctx context.Context, ref string, o imagerouter.PushOptions) error {
	if _, err := f.resolve(ref); err != nil {
		return errdefs.Newf(errdefs.NotFound, "An image does not exist locally with the tag: %s", ref)
	}
	f.mu.Lock()
	if o.Auth != nil {
		f.Auths = append(f.Auths, *o.Auth)
	}
	f.mu.Unlock()
	o.Progress.Update(progress.Event{Status: "The push refers to repository [" + ref + "]"})
	o.Progress.Update(progress.Event{ID: "0123456789ab", Status: "Pushed"})
	o.Progress.Update(progress.Event{Status: "latest: digest: sha256:" + strings.Repeat("d", 64) + " size: 527", Aux: map[string]any{"Tag": "latest", "Digest": "sha256:" + strings.Repeat("d", 64), "Size": 527}})
	return nil
}

func (f *Images) Import(ctx context.Context, src io.Reader, o imagerouter.ImportOptions) (string, error) {
	tr := tar.NewReader(src)
	for {
		_, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", errdefs.Newf(errdefs.InvalidArgument, "invalid tar archive: %w", err)
		}
	}
	id := "sha256:" + randomID()
	if o.Ref != "" {
		f.mu.Lock()
		f.refs[familiar(o.Ref)] = id
		f.mu.Unlock()
	}
	return id, nil
}

func (f *Images) Load(ctx context.Context, r io.Reader, sink progress.Sink) ([]string, error) {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return nil, err
	}
	sink.Update(progress.Event{ID: "0123456789ab", Status: "Loading layer", Current: 10, Total: 10})
	sink.Update(progress.Event{Status: "Loaded image: loaded:latest"})
	f.mu.Lock()
	f.refs["loaded:latest"] = "sha256:" + strings.Repeat("c", 64)
	f.mu.Unlock()
	return []string{"loaded:latest"}, nil
}

func (f *Images) Save(ctx context.Context, names []string, w io.Writer) error {
	for _, n := range names {
		if _, err := f.resolve(n); err != nil {
			return err
		}
	}
	tw := tar.NewWriter(w)
	b := []byte(`[{"RepoTags":["` + strings.Join(names, `","`) + `"]}]`)
	tw.WriteHeader(&tar.Header{Name: "manifest.json", Mode: 0o644, Size: int64(len(b))})
	tw.Write(b)
	return tw.Close()
}

// DistributionInspect answers for busybox only.
func (f *Images) DistributionInspect(ctx context.Context, ref string, auth *registry.AuthConfig) (*registry.DistributionInspect, error) {
	if !strings.HasPrefix(familiar(ref), "busybox:") {
		return nil, errdefs.Newf(errdefs.NotFound, "manifest for %s not found", ref)
	}
	return &registry.DistributionInspect{
		Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.Digest("sha256:" + strings.Repeat("d", 64)), Size: 1234},
		Platforms:  []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}},
	}, nil
}
