package image

import (
	"context"
	"errors"
	"io"
	"strings"

	"github.com/moby/moby/api/types/image"

	"github.com/berth-dev/berth/internal/api/filters"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	imagesvc "github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/image/reference"
	"github.com/berth-dev/berth/internal/progress"
)

// Images adapts the image service to Backend: Inspect, History, Tag and
// Load are *image.Service's own methods (embedded); List, Remove, Prune,
// Pull, Push, Import and Save translate the router's options.
//
// Pull and push use the request's X-Registry-Auth credentials for the
// named registry (never for its mirrors); without them, the daemon's
// keychain (~/.docker/config.json of its user).
type Images struct {
	*imagesvc.Service
	// InUse reports a container using an image (rmi and prune refuse or
	// need force); nil: none.
	InUse imagesvc.UseChecker
	// Containers counts the containers of an image for the list's
	// Containers field; nil: -1 (not computed), as Docker without it.
	Containers func(id string) int64
	// Events, when set, receives image events (action, actor ID,
	// attributes) as dockerd emits them: pull and push by reference,
	// tag, untag, delete, import, load and save by image ID.
	Events func(action, id string, attrs map[string]string)
}

// event publishes an image event; name is the "name" attribute.
func (s *Images) event(action, id, name string) {
	if s.Events != nil {
		s.Events(action, id, map[string]string{"name": name})
	}
}

// imageID resolves name to its image ID ("" when unknown).
func (s *Images) imageID(ctx context.Context, name string) string {
	if r, err := s.Service.Resolve(ctx, name); err == nil {
		return r.ID.String()
	}
	return ""
}

// Tag tags and emits "tag".
func (s *Images) Tag(ctx context.Context, source, target string) error {
	if err := s.Service.Tag(ctx, source, target); err != nil {
		return err
	}
	if id := s.imageID(ctx, target); id != "" {
		name := target
		if ref, err := reference.Parse(target); err == nil {
			if ref.Tag() == "" && ref.Digest() == "" {
				ref, _ = ref.WithTag("latest")
			}
			name = ref.Familiar()
		}
		s.event("tag", id, name)
	}
	return nil
}

// Load loads and emits "load" per image.
func (s *Images) Load(ctx context.Context, r io.Reader, sink progress.Sink) ([]string, error) {
	refs, err := s.Service.Load(ctx, r, sink)
	for _, ref := range refs {
		if id := s.imageID(ctx, ref); id != "" {
			s.event("load", id, ref)
		}
	}
	return refs, err
}

var _ Backend = (*Images)(nil)

// List translates the filters to the service's.
func (s *Images) List(ctx context.Context, opts ListOptions) ([]image.Summary, error) {
	f := opts.Filters
	lf := imagesvc.ListFilters{All: opts.All, Labels: f.Get("label"), Reference: f.Get("reference"), Containers: s.Containers}
	if f.Contains("dangling") {
		d, err := f.GetBoolOrDefault("dangling", false)
		if err != nil {
			return nil, err
		}
		lf.Dangling = &d
	}
	if f.Contains("until") {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "the until filter is not supported by berth's image list")
	}
	var err error
	if lf.Before, err = single(f, "before"); err != nil {
		return nil, err
	}
	if lf.Since, err = single(f, "since"); err != nil {
		return nil, err
	}
	return s.Service.List(ctx, lf)
}

func single(f filters.Args, key string) (string, error) {
	vs := f.Get(key)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", errdefs.Newf(errdefs.InvalidArgument, "invalid filter '%s': only one value is allowed", key)
}

// Remove passes InUse on.
func (s *Images) Remove(ctx context.Context, name string, opts RemoveOptions) ([]image.DeleteResponse, error) {
	id := s.imageID(ctx, name)
	out, err := s.Service.Remove(ctx, name, imagesvc.RemoveOptions{Force: opts.Force, NoPrune: opts.NoPrune, InUse: s.InUse})
	for _, r := range out {
		switch {
		case r.Untagged != "" && id != "":
			s.event("untag", id, id)
		case r.Deleted != "":
			s.event("delete", r.Deleted, r.Deleted)
		}
	}
	return out, err
}

// Prune: dangling=false prunes every unused image; label filters select.
func (s *Images) Prune(ctx context.Context, f filters.Args) (*image.PruneReport, error) {
	dangling, err := f.GetBoolOrDefault("dangling", true)
	if err != nil {
		return nil, err
	}
	if f.Contains("until") || f.Contains("label!") {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "the until and label! filters are not supported by berth's image prune")
	}
	return s.Service.Prune(ctx, imagesvc.PruneOptions{All: !dangling, Labels: f.Get("label"), InUse: s.InUse})
}

// Pull pulls ref.
func (s *Images) Pull(ctx context.Context, ref string, opts PullOptions) error {
	res, err := s.Service.Pull(ctx, ref, imagesvc.PullOptions{Platform: opts.Platform, Progress: opts.Progress, Auth: distribution.AuthFromConfig(opts.Auth)})
	if err == nil && res != nil {
		s.event("pull", res.Ref, repoOf(res.Ref))
	}
	if errdefs.Is(err, errdefs.Unauthorized) {
		// dockerd answers a refused pull with 404 and this wording; a 401
		// would make the docker CLI prompt for credentials.
		return errdefs.Newf(errdefs.NotFound, "pull access denied for %s, repository does not exist or may require 'docker login': %w", strings.TrimSuffix(strings.SplitN(ref, "@", 2)[0], ":"+lastTag(ref)), err)
	}
	return err
}

// Push pushes ref.
func (s *Images) Push(ctx context.Context, ref string, opts PushOptions) error {
	_, err := s.Service.Push(ctx, ref, imagesvc.PushOptions{Progress: opts.Progress, Auth: distribution.AuthFromConfig(opts.Auth)})
	if err == nil {
		s.event("push", ref, repoOf(ref))
	}
	return err
}

// Import imports a root filesystem tar.
func (s *Images) Import(ctx context.Context, src io.Reader, opts ImportOptions) (string, error) {
	id, err := s.Service.Import(ctx, src, imagesvc.ImportOptions{Ref: opts.Ref, Changes: opts.Changes, Message: opts.Message, Platform: opts.Platform})
	if err == nil {
		s.event("import", id.String(), id.String())
	}
	return id.String(), err
}

// Save writes a Docker archive.
func (s *Images) Save(ctx context.Context, names []string, w io.Writer) error {
	if len(names) == 0 {
		return errdefs.With(errdefs.InvalidArgument, errors.New("no image names given"))
	}
	if err := s.Service.Save(ctx, names, w, imagesvc.DockerArchive); err != nil {
		return err
	}
	for _, n := range names {
		if id := s.imageID(ctx, n); id != "" {
			s.event("save", id, n)
		}
	}
	return nil
}

// lastTag is the tag of ref ("" when it has none).
func lastTag(ref string) string {
	name := strings.SplitN(ref, "@", 2)[0]
	i := strings.LastIndex(name, ":")
	if i < 0 || strings.Contains(name[i:], "/") {
		return ""
	}
	return name[i+1:]
}

// repoOf is ref without its tag or digest.
func repoOf(ref string) string {
	name := strings.SplitN(ref, "@", 2)[0]
	if t := lastTag(name); t != "" {
		return strings.TrimSuffix(name, ":"+t)
	}
	return name
}
