// Package network is the Engine API router for networks: list, inspect,
// create, remove, connect, disconnect and prune. Its backend is the
// daemon's network service (with the container service for connect and
// disconnect).
package network

import (
	"context"
	"errors"
	"net/http"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/filters"
)

// Router serves /networks.
type Router struct {
	backend Backend
}

// New returns the network router over b.
func New(b Backend) *Router { return &Router{backend: b} }

// Routes implements api.Router.
func (n *Router) Routes() []api.Route {
	return []api.Route{
		{Method: "GET", Path: "/networks", Handler: n.list},
		{Method: "GET", Path: "/networks/{id}", Handler: n.inspect},
		{Method: "POST", Path: "/networks/create", Handler: n.create},
		{Method: "DELETE", Path: "/networks/{id}", Handler: n.remove},
		{Method: "POST", Path: "/networks/{id}/connect", Handler: n.connect},
		{Method: "POST", Path: "/networks/{id}/disconnect", Handler: n.disconnect},
		{Method: "POST", Path: "/networks/prune", Handler: n.prune},
	}
}

func (n *Router) list(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return api.InvalidParam(err)
	}
	out, err := n.backend.NetworkList(ctx, f)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, out)
}

func (n *Router) inspect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	out, err := n.backend.NetworkInspect(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, out)
}

func (n *Router) create(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req network.CreateRequest
	if err := api.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Name == "" {
		return api.InvalidParam(errors.New("network name cannot be empty"))
	}
	id, err := n.backend.NetworkCreate(ctx, req)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusCreated, &network.CreateResponse{ID: id})
}

func (n *Router) remove(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if err := n.backend.NetworkRemove(ctx, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (n *Router) connect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req network.ConnectRequest
	if err := api.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return api.InvalidParam(errors.New("container is required"))
	}
	if err := n.backend.NetworkConnect(ctx, r.PathValue("id"), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (n *Router) disconnect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req network.DisconnectRequest
	if err := api.ReadJSON(r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return api.InvalidParam(errors.New("container is required"))
	}
	if err := n.backend.NetworkDisconnect(ctx, r.PathValue("id"), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (n *Router) prune(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	f, err := filters.FromJSON(r.URL.Query().Get("filters"))
	if err != nil {
		return api.InvalidParam(err)
	}
	rep, err := n.backend.NetworksPrune(ctx, f)
	if err != nil {
		return err
	}
	if rep.NetworksDeleted == nil {
		rep.NetworksDeleted = []string{}
	}
	return api.WriteJSON(w, http.StatusOK, rep)
}
