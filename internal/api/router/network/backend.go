package network

import (
	"context"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/api/filters"
)

// Backend is what the network router needs; the daemon adapts the
// network and container services to it.
//
// Errors are classified with package errdefs: an unknown network is
// NotFound ("network <name> not found"), a duplicate name Conflict,
// removing a predefined network or one with active endpoints Forbidden,
// connecting a container twice Forbidden.
type Backend interface {
	// NetworkList is GET /networks (filters already parsed).
	NetworkList(ctx context.Context, f filters.Args) ([]network.Summary, error)
	// NetworkInspect is GET /networks/{id}.
	NetworkInspect(ctx context.Context, id string) (network.Inspect, error)
	// NetworkCreate is POST /networks/create; it returns the new ID.
	NetworkCreate(ctx context.Context, req network.CreateRequest) (string, error)
	// NetworkRemove is DELETE /networks/{id}.
	NetworkRemove(ctx context.Context, id string) error
	// NetworkConnect and NetworkDisconnect plug a container in and out.
	NetworkConnect(ctx context.Context, id string, req network.ConnectRequest) error
	NetworkDisconnect(ctx context.Context, id string, req network.DisconnectRequest) error
	// NetworksPrune is POST /networks/prune.
	NetworksPrune(ctx context.Context, f filters.Args) (*network.PruneReport, error)
}
