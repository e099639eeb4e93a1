// Package image is the Engine API router for /images, /commit and
// /distribution: list, create (pull and import), inspect, history, push,
// tag, delete, prune, get (save), load, commit and distribution inspect.
// Image names in paths may contain slashes
// ("/images/localhost:5000/a/b/json"): the routes catch the whole rest of
// the path and dispatch on its last segment, as dockerd's ".*" patterns
// do.
package image

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/filters"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/progress"
)

// Router serves the image endpoints.
type Router struct {
	images Backend
	commit CommitBackend
	dist   DistributionBackend
}

// New returns the image router. commit and dist may be nil: their
// endpoints then answer 501.
func New(images Backend, commit CommitBackend, dist DistributionBackend) *Router {
	return &Router{images: images, commit: commit, dist: dist}
}

// Routes implements api.Router.
func (ir *Router) Routes() []api.Route {
	return []api.Route{
		{Method: "GET", Path: "/images/json", Handler: ir.list},
		{Method: "GET", Path: "/images/get", Handler: ir.getAll},
		{Method: "GET", Path: "/images/search", Handler: ir.search},
		{Method: "GET", Path: "/images/{rest...}", Handler: ir.getByName},
		{Method: "POST", Path: "/images/create", Handler: ir.create},
		{Method: "POST", Path: "/images/load", Handler: ir.load},
		{Method: "POST", Path: "/images/prune", Handler: ir.prune},
		{Method: "POST", Path: "/images/{rest...}", Handler: ir.postByName},
		{Method: "DELETE", Path: "/images/{rest...}", Handler: ir.remove},
		{Method: "POST", Path: "/commit", Handler: ir.commitContainer},
		{Method: "GET", Path: "/distribution/{rest...}", Handler: ir.distribution},
	}
}

// splitAction splits "a/b/json" into ("a/b", "json").
func splitAction(rest string) (name, action string) {
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", rest
	}
	return rest[:i], rest[i+1:]
}

func (ir *Router) getByName(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name, action := splitAction(r.PathValue("rest"))
	if name == "" {
		return api.ErrPageNotFound
	}
	switch action {
	case "json":
		resp, err := ir.images.Inspect(ctx, name)
		if err != nil {
			return err
		}
		return api.WriteJSON(w, http.StatusOK, inspectForVersion(ctx, resp))
	case "history":
		h, err := ir.images.History(ctx, name)
		if err != nil {
			return err
		}
		if h == nil {
			h = []image.HistoryResponseItem{}
		}
		return api.WriteJSON(w, http.StatusOK, h)
	case "get":
		return ir.save(ctx, w, []string{name})
	}
	return api.ErrPageNotFound
}

func (ir *Router) postByName(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name, action := splitAction(r.PathValue("rest"))
	if name == "" {
		return api.ErrPageNotFound
	}
	switch action {
	case "push":
		return ir.push(ctx, w, r, name)
	case "tag":
		return ir.tag(ctx, w, r, name)
	}
	return api.ErrPageNotFound
}

func (ir *Router) list(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate(ListFilters...); err != nil {
		return err
	}
	opts := ListOptions{All: api.BoolValue(r, "all"), Filters: f, SharedSize: api.BoolValue(r, "shared-size")}
	if api.VersionAtLeast(ctx, "1.47") {
		opts.Manifests = api.BoolValue(r, "manifests")
	}
	list, err := ir.images.List(ctx, opts)
	if err != nil {
		return err
	}
	if list == nil {
		list = []image.Summary{}
	}
	if !opts.Manifests {
		for i := range list {
			list[i].Manifests = nil
		}
	}
	return api.WriteJSON(w, http.StatusOK, list)
}

func (ir *Router) search(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return errdefs.Newf(errdefs.NotImplemented, "image search is not supported by berth")
}

func (ir *Router) tag(ctx context.Context, w http.ResponseWriter, r *http.Request, name string) error {
	q := r.URL.Query()
	repo, tag := q.Get("repo"), q.Get("tag")
	if repo == "" {
		return api.InvalidParam(errors.New("repository name (repo) is required"))
	}
	target := repo
	if tag != "" {
		target += ":" + tag
	}
	if err := ir.images.Tag(ctx, name, target); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (ir *Router) remove(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("rest")
	if name == "" {
		return api.ErrPageNotFound
	}
	resp, err := ir.images.Remove(ctx, name, RemoveOptions{Force: api.BoolValue(r, "force"), NoPrune: api.BoolValue(r, "noprune")})
	if err != nil {
		return err
	}
	if resp == nil {
		resp = []image.DeleteResponse{}
	}
	return api.WriteJSON(w, http.StatusOK, resp)
}

func (ir *Router) prune(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate(PruneFilters...); err != nil {
		return err
	}
	rep, err := ir.images.Prune(ctx, f)
	if err != nil {
		return err
	}
	if rep.ImagesDeleted == nil {
		rep.ImagesDeleted = []image.DeleteResponse{}
	}
	return api.WriteJSON(w, http.StatusOK, rep)
}

func (ir *Router) getAll(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	names := r.URL.Query()["names"]
	if len(names) == 0 {
		return api.InvalidParam(errors.New("no image names given"))
	}
	return ir.save(ctx, w, names)
}

// save streams the archive; an error before the first byte is answered
// with its status, a later one cuts the connection (a tar cannot carry an
// error message).
func (ir *Router) save(ctx context.Context, w http.ResponseWriter, names []string) error {
	lw := &lazyWriter{w: w, contentType: "application/x-tar"}
	err := ir.images.Save(ctx, names, lw)
	if err != nil && lw.started {
		panic(http.ErrAbortHandler)
	}
	if err == nil && !lw.started {
		lw.start()
	}
	return err
}

type lazyWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyWriter) start() {
	l.started = true
	l.w.Header().Set("Content-Type", l.contentType)
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(p)
}

func (ir *Router) load(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	ps := newProgressStream(w, false)
	var sink progress.Sink = ps
	if api.BoolValue(r, "quiet") {
		sink = progress.Func(func(ev progress.Event) {
			if ev.Err != nil || strings.HasPrefix(ev.Status, "Loaded image") {
				ps.Update(ev)
			}
		})
	}
	_, err := ir.images.Load(ctx, r.Body, sink)
	return ps.finish(err)
}

func (ir *Router) create(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	var platform *ocispec.Platform
	if p := q.Get("platform"); p != "" {
		pl, err := api.ParsePlatform(p)
		if err != nil {
			return err
		}
		platform = &pl
	}
	fromImage, fromSrc := q.Get("fromImage"), q.Get("fromSrc")
	switch {
	case fromImage != "":
		ref := fromImage
		if tag := q.Get("tag"); tag != "" {
			if strings.Contains(tag, ":") { // a digest, "sha256:..."
				ref += "@" + tag
			} else {
				ref += ":" + tag
			}
		}
		auth, err := api.AuthFromRequest(r)
		if err != nil {
			return err
		}
		ps := newProgressStream(w, true)
		err = ir.images.Pull(ctx, ref, PullOptions{Platform: platform, Auth: auth, Progress: ps})
		return ps.finish(err)
	case fromSrc == "-":
		opts := ImportOptions{Changes: q["changes"], Message: q.Get("message"), Platform: platform}
		if repo := q.Get("repo"); repo != "" {
			opts.Ref = repo
			if tag := q.Get("tag"); tag != "" {
				opts.Ref += ":" + tag
			}
		}
		ps := newProgressStream(w, false)
		id, err := ir.images.Import(ctx, r.Body, opts)
		if err == nil {
			ps.Update(progress.Event{Status: id})
		}
		return ps.finish(err)
	case fromSrc != "":
		return errdefs.Newf(errdefs.NotImplemented, "importing from a URL is not supported by berth: download the archive and import it from standard input (fromSrc=-)")
	}
	return api.InvalidParam(errors.New("fromImage or fromSrc is required"))
}

func (ir *Router) push(ctx context.Context, w http.ResponseWriter, r *http.Request, name string) error {
	ref := name
	if tag := r.URL.Query().Get("tag"); tag != "" {
		ref += ":" + tag
	}
	auth, err := api.AuthFromRequest(r)
	if err != nil {
		return err
	}
	ps := newProgressStream(w, false)
	err = ir.images.Push(ctx, ref, PushOptions{Auth: auth, Progress: ps})
	return ps.finish(err)
}

func (ir *Router) commitContainer(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if ir.commit == nil {
		return errdefs.Newf(errdefs.NotImplemented, "commit is not available")
	}
	var cfg *container.Config
	if r.ContentLength != 0 {
		var c container.Config
		if err := api.ReadJSON(r, &c); err != nil {
			return err
		}
		cfg = &c
	}
	q := r.URL.Query()
	opts := CommitOptions{
		Container: q.Get("container"),
		Comment:   q.Get("comment"),
		Author:    q.Get("author"),
		Pause:     api.BoolValueOrDefault(r, "pause", true),
		Changes:   q["changes"],
		Config:    cfg,
	}
	if repo := q.Get("repo"); repo != "" {
		opts.Ref = repo
		if tag := q.Get("tag"); tag != "" {
			opts.Ref += ":" + tag
		}
	} else if q.Get("tag") != "" {
		return api.InvalidParam(errors.New("tag without repository name"))
	}
	id, err := ir.commit.Commit(ctx, opts)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusCreated, &container.CommitResponse{ID: id})
}

func (ir *Router) distribution(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	name, action := splitAction(r.PathValue("rest"))
	if name == "" || action != "json" {
		return api.ErrPageNotFound
	}
	if ir.dist == nil {
		return errdefs.Newf(errdefs.NotImplemented, "distribution inspect is not available")
	}
	auth, err := api.AuthFromRequest(r)
	if err != nil {
		return err
	}
	resp, err := ir.dist.DistributionInspect(ctx, name, auth)
	if err != nil {
		return err
	}
	if resp.Platforms == nil {
		resp.Platforms = []ocispec.Platform{}
	}
	return api.WriteJSON(w, http.StatusOK, resp)
}

// progressStream is a progress.Sink that writes Docker's JSON messages. The
// 200 header goes out with the first message, so an error before it gets
// its own status; with holdPulling the "Pulling from" line does not count
// (it precedes the registry lookup that most often fails).
type progressStream struct {
	mu          sync.Mutex
	w           http.ResponseWriter
	enc         *progress.Encoder
	holdPulling bool
	held        []progress.Event
}

func newProgressStream(w http.ResponseWriter, holdPulling bool) *progressStream {
	return &progressStream{w: w, holdPulling: holdPulling}
}

func (p *progressStream) Update(ev progress.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.enc == nil && p.holdPulling && ev.Err == nil && strings.HasPrefix(ev.Status, "Pulling from ") {
		p.held = append(p.held, ev)
		return
	}
	p.startLocked()
	p.enc.Update(ev)
}

func (p *progressStream) startLocked() {
	if p.enc != nil {
		return
	}
	p.w.Header().Set("Content-Type", "application/json")
	p.w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(p.w)
	p.enc = progress.NewEncoder(p.w, func() { rc.Flush() })
	for _, h := range p.held {
		p.enc.Update(h)
	}
	p.held = nil
}

// finish ends the stream: nil on success; err itself if nothing was sent
// (the server answers it with its status); else err written in the stream.
func (p *progressStream) finish(err error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && p.enc == nil {
		return err
	}
	p.startLocked()
	if err != nil {
		p.enc.Update(progress.Event{Err: err})
	}
	return nil
}
