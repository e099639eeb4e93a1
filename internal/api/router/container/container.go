// Package container is the Engine API router for /containers: list,
// create, inspect, top, logs, changes, export, stats, resize, start, stop,
// restart, kill, update, rename, pause, unpause, attach, wait, delete,
// archive and prune. Its backend (backend.go) is the daemon's container
// service. Exec has its own router (router/exec); commit is in the image
// router.
package container

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/filters"
)

// Router serves /containers.
type Router struct {
	backend Backend
}

// New returns the container router over b.
func New(b Backend) *Router { return &Router{backend: b} }

// Routes implements api.Router.
func (c *Router) Routes() []api.Route {
	return []api.Route{
		{Method: "GET", Path: "/containers/json", Handler: c.list},
		{Method: "POST", Path: "/containers/create", Handler: c.create},
		{Method: "GET", Path: "/containers/{name}/json", Handler: c.inspect},
		{Method: "GET", Path: "/containers/{name}/top", Handler: c.top},
		{Method: "GET", Path: "/containers/{name}/logs", Handler: c.logs},
		{Method: "GET", Path: "/containers/{name}/changes", Handler: c.changes},
		{Method: "GET", Path: "/containers/{name}/export", Handler: c.export},
		{Method: "GET", Path: "/containers/{name}/stats", Handler: c.stats},
		{Method: "POST", Path: "/containers/{name}/resize", Handler: c.resize},
		{Method: "POST", Path: "/containers/{name}/start", Handler: c.start},
		{Method: "POST", Path: "/containers/{name}/stop", Handler: c.stop},
		{Method: "POST", Path: "/containers/{name}/restart", Handler: c.restart},
		{Method: "POST", Path: "/containers/{name}/kill", Handler: c.kill},
		{Method: "POST", Path: "/containers/{name}/update", Handler: c.update},
		{Method: "POST", Path: "/containers/{name}/rename", Handler: c.rename},
		{Method: "POST", Path: "/containers/{name}/pause", Handler: c.pause},
		{Method: "POST", Path: "/containers/{name}/unpause", Handler: c.unpause},
		{Method: "POST", Path: "/containers/{name}/attach", Handler: c.attach},
		{Method: "GET", Path: "/containers/{name}/attach/ws", Handler: c.attachWS},
		{Method: "POST", Path: "/containers/{name}/wait", Handler: c.wait},
		{Method: "DELETE", Path: "/containers/{name}", Handler: c.remove},
		{Method: "HEAD", Path: "/containers/{name}/archive", Handler: c.statPath},
		{Method: "GET", Path: "/containers/{name}/archive", Handler: c.getArchive},
		{Method: "PUT", Path: "/containers/{name}/archive", Handler: c.putArchive},
		{Method: "POST", Path: "/containers/prune", Handler: c.prune},
	}
}

// validName is dockerd's container name rule.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ValidateName checks a requested container name as dockerd does.
func ValidateName(name string) error {
	if !validName.MatchString(name) {
		return api.InvalidParam(fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
	}
	return nil
}

func (c *Router) list(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := filters.FromJSON(q.Get("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate(ListFilters...); err != nil {
		return err
	}
	opts := ListOptions{All: api.BoolValue(r, "all"), Size: api.BoolValue(r, "size"), Filters: f}
	if n, err := api.IntValue(r, "limit"); err != nil {
		return err
	} else if n != nil {
		opts.Limit = *n
	}
	list, err := c.backend.ContainerList(ctx, opts)
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	for i := range list {
		if !api.VersionAtLeast(ctx, "1.46") {
			list[i].HostConfig.Annotations = nil
		}
		if !api.VersionAtLeast(ctx, "1.48") {
			list[i].ImageManifestDescriptor = nil
		}
		if !api.VersionAtLeast(ctx, "1.52") {
			list[i].Health = nil
		}
	}
	return api.WriteJSON(w, http.StatusOK, list)
}

func (c *Router) create(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	name := q.Get("name")
	if name != "" {
		if err := ValidateName(name); err != nil {
			return err
		}
		name = strings.TrimPrefix(name, "/")
	}
	var platform *ocispec.Platform
	if p := q.Get("platform"); p != "" {
		pl, err := api.ParsePlatform(p)
		if err != nil {
			return err
		}
		platform = &pl
	}
	var req container.CreateRequest
	if err := api.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Config == nil {
		return api.InvalidParam(errors.New("config cannot be empty in order to create a container"))
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	if req.NetworkingConfig == nil {
		req.NetworkingConfig = &network.NetworkingConfig{}
	}
	if req.HostConfig.PidsLimit != nil && *req.HostConfig.PidsLimit <= 0 {
		req.HostConfig.PidsLimit = nil // 0 and -1 mean unlimited
	}
	resp, err := c.backend.ContainerCreate(ctx, CreateOptions{
		Name: name, Platform: platform,
		Config: req.Config, HostConfig: req.HostConfig, NetworkingConfig: req.NetworkingConfig,
	})
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return api.WriteJSON(w, http.StatusCreated, &resp)
}

func (c *Router) inspect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	resp, err := c.backend.ContainerInspect(ctx, r.PathValue("name"), api.BoolValue(r, "size"))
	if err != nil {
		return err
	}
	if !api.VersionAtLeast(ctx, "1.52") {
		return api.WriteJSON(w, http.StatusOK, withLegacyNetworkSettings(resp))
	}
	return api.WriteJSON(w, http.StatusOK, resp)
}

func (c *Router) top(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	resp, err := c.backend.ContainerTop(ctx, r.PathValue("name"), r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, resp)
}

func (c *Router) changes(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	ch, err := c.backend.ContainerChanges(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	if ch == nil {
		ch = []container.FilesystemChange{}
	}
	return api.WriteJSON(w, http.StatusOK, ch)
}

func (c *Router) start(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	// A host config in the start body was removed in API 1.24; an empty
	// JSON object ("{}" or "null") is tolerated, as dockerd does.
	if r.ContentLength > 7 || r.ContentLength == -1 {
		return api.InvalidParam(errors.New("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24"))
	}
	if err := c.backend.ContainerStart(ctx, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func stopOptions(ctx context.Context, r *http.Request) (StopOptions, error) {
	var o StopOptions
	if api.VersionAtLeast(ctx, "1.42") {
		o.Signal = r.URL.Query().Get("signal")
	}
	t, err := api.IntValue(r, "t")
	if err != nil {
		return o, err
	}
	o.Timeout = t
	return o, nil
}

func (c *Router) stop(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	o, err := stopOptions(ctx, r)
	if err != nil {
		return err
	}
	if err := c.backend.ContainerStop(ctx, r.PathValue("name"), o); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *Router) restart(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	o, err := stopOptions(ctx, r)
	if err != nil {
		return err
	}
	if err := c.backend.ContainerRestart(ctx, r.PathValue("name"), o); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *Router) kill(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if err := c.backend.ContainerKill(ctx, r.PathValue("name"), r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *Router) pause(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if err := c.backend.ContainerPause(ctx, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *Router) unpause(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if err := c.backend.ContainerUnpause(ctx, r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *Router) update(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var u container.UpdateConfig
	if err := api.ReadJSON(r, &u); err != nil {
		return err
	}
	if u.PidsLimit != nil && *u.PidsLimit <= 0 {
		var unlimited int64
		u.PidsLimit = &unlimited // 0 and any negative value: unlimited
	}
	resp, err := c.backend.ContainerUpdate(ctx, r.PathValue("name"), u)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	return api.WriteJSON(w, http.StatusOK, &resp)
}

func (c *Router) rename(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	newName := r.URL.Query().Get("name")
	if newName == "" {
		return api.InvalidParam(errors.New("Neither old nor new names may be empty"))
	}
	if err := ValidateName(newName); err != nil {
		return err
	}
	if err := c.backend.ContainerRename(ctx, r.PathValue("name"), strings.TrimPrefix(newName, "/")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *Router) remove(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	err := c.backend.ContainerRemove(ctx, r.PathValue("name"), RemoveOptions{
		Force:         api.BoolValue(r, "force"),
		RemoveVolumes: api.BoolValue(r, "v"),
		RemoveLink:    api.BoolValue(r, "link"),
	})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (c *Router) prune(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate(PruneFilters...); err != nil {
		return err
	}
	rep, err := c.backend.ContainersPrune(ctx, f)
	if err != nil {
		return err
	}
	if rep.ContainersDeleted == nil {
		rep.ContainersDeleted = []string{}
	}
	return api.WriteJSON(w, http.StatusOK, rep)
}

func (c *Router) resize(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	h, err := api.Uint32Value(r, "h")
	if err != nil {
		return api.InvalidParam(fmt.Errorf("invalid resize height %q: %w", r.URL.Query().Get("h"), err))
	}
	wd, err := api.Uint32Value(r, "w")
	if err != nil {
		return api.InvalidParam(fmt.Errorf("invalid resize width %q: %w", r.URL.Query().Get("w"), err))
	}
	if err := c.backend.ContainerResize(ctx, r.PathValue("name"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (c *Router) wait(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	cond := container.WaitConditionNotRunning
	if v := r.URL.Query().Get("condition"); v != "" {
		switch container.WaitCondition(v) {
		case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
			cond = container.WaitCondition(v)
		default:
			return api.InvalidParam(fmt.Errorf("invalid condition: %q", v))
		}
	}
	ch, err := c.backend.ContainerWait(ctx, r.PathValue("name"), cond)
	if err != nil {
		return err
	}
	// Headers now, so the client knows the wait is registered (docker run
	// waits for this before it starts the container); the body when the
	// condition is met.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	http.NewResponseController(w).Flush()
	resp, ok := awaitWait(ctx, ch)
	if !ok {
		return nil
	}
	b, err := jsonLine(&resp)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// awaitWait is a wait's answer, once the backend gives it; false when ctx
// ended first.
func awaitWait(ctx context.Context, ch <-chan container.WaitResponse) (container.WaitResponse, bool) {
	select {
	case res, ok := <-ch:
		if !ok {
			return container.WaitResponse{StatusCode: -1, Error: &container.WaitExitError{Message: "wait ended without a result"}}, true
		}
		return res, true
	case <-ctx.Done():
		return container.WaitResponse{}, false
	}
}

func (c *Router) attachWS(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	return api.Errorf(notImplemented, "attach over websocket is not supported by berth")
}

func parseTail(s string) int {
	if s == "" || s == "all" {
		return -1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
