// Package volume is the Engine API router for /volumes: list, create,
// inspect, delete and prune. Its backend is the daemon's volume service.
package volume

import (
	"context"
	"net/http"

	apivolume "github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/filters"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Backend is what the volume router needs.
//
// Errors are classified with package errdefs: an unknown volume is
// NotFound ("get <name>: no such volume"), a volume used by a container
// Conflict ("remove <name>: volume is in use - [<ids>]"), a bad name,
// option or filter InvalidArgument, an unknown driver NotFound.
type Backend interface {
	// VolumeList returns the volumes matching f (dangling, driver,
	// label, name).
	VolumeList(ctx context.Context, f filters.Args) ([]apivolume.Volume, error)
	// VolumeCreate creates a volume, or returns the one with that name.
	VolumeCreate(ctx context.Context, req apivolume.CreateRequest) (*apivolume.Volume, error)
	// VolumeInspect returns one volume.
	VolumeInspect(ctx context.Context, name string) (*apivolume.Volume, error)
	// VolumeRemove deletes a volume; force ignores a missing one.
	VolumeRemove(ctx context.Context, name string, force bool) error
	// VolumePrune removes unused volumes: anonymous ones unless f has
	// all=true; label and label! restrict it.
	VolumePrune(ctx context.Context, f filters.Args) (*apivolume.PruneReport, error)
}

// Router serves /volumes.
type Router struct{ backend Backend }

// New returns the volume router over b.
func New(b Backend) *Router { return &Router{backend: b} }

// Routes implements api.Router.
func (v *Router) Routes() []api.Route {
	return []api.Route{
		{Method: "GET", Path: "/volumes", Handler: v.list},
		{Method: "POST", Path: "/volumes/create", Handler: v.create},
		{Method: "POST", Path: "/volumes/prune", Handler: v.prune},
		{Method: "GET", Path: "/volumes/{name}", Handler: v.inspect},
		{Method: "DELETE", Path: "/volumes/{name}", Handler: v.remove},
	}
}

func (v *Router) list(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	vols, err := v.backend.VolumeList(ctx, f)
	if err != nil {
		return err
	}
	// Warnings is null, as dockerd answers when no driver warns.
	return api.WriteJSON(w, http.StatusOK, &apivolume.ListResponse{Volumes: vols})
}

func (v *Router) create(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req apivolume.CreateRequest
	if err := api.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.ClusterVolumeSpec != nil {
		return api.Errorf(errdefs.Unavailable, "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.")
	}
	vol, err := v.backend.VolumeCreate(ctx, req)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusCreated, vol)
}

func (v *Router) inspect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	vol, err := v.backend.VolumeInspect(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, vol)
}

func (v *Router) remove(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if err := v.backend.VolumeRemove(ctx, r.PathValue("name"), api.BoolValue(r, "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (v *Router) prune(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	// Before API 1.42 prune removed every unused volume (dockerd keeps
	// that for old clients).
	if !api.VersionAtLeast(ctx, "1.42") && !f.Contains("all") {
		f.Add("all", "true")
	}
	rep, err := v.backend.VolumePrune(ctx, f)
	if err != nil {
		return err
	}
	if rep.VolumesDeleted == nil {
		rep.VolumesDeleted = []string{}
	}
	return api.WriteJSON(w, http.StatusOK, rep)
}
