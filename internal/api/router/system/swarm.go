package system

import (
	"context"
	"errors"
	"net/http"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// berth runs no swarm: these endpoints answer as a dockerd outside a
// swarm does (503 with its message), so the docker CLI and Compose print
// the usual explanation and `docker inspect` skips swarm objects.
var (
	errNotManager = errdefs.With(errdefs.Unavailable, errors.New(`This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`))
	errNotInSwarm = errdefs.With(errdefs.Unavailable, errors.New("This node is not part of a swarm"))
	// Creating or joining a swarm is refused outright: berth has no
	// swarm mode, and "try docker swarm init" would send the user in a
	// circle.
	errNoSwarmMode = errdefs.With(errdefs.NotImplemented, errors.New("swarm mode is not supported by berth"))
)

func fail(err error) api.HandlerFunc {
	return func(context.Context, http.ResponseWriter, *http.Request) error { return err }
}

func swarmRoutes() []api.Route {
	var rs []api.Route
	add := func(method, path string, err error) {
		rs = append(rs, api.Route{Method: method, Path: path, Handler: fail(err)})
	}
	add("POST", "/swarm/init", errNoSwarmMode)
	add("POST", "/swarm/join", errNoSwarmMode)
	add("POST", "/swarm/leave", errNotInSwarm)
	add("GET", "/swarm", errNotManager)
	add("POST", "/swarm/update", errNotManager)
	add("GET", "/swarm/unlockkey", errNotManager)
	add("POST", "/swarm/unlock", errNotManager)
	for _, kind := range []string{"nodes", "services", "tasks", "secrets", "configs"} {
		add("GET", "/"+kind, errNotManager)
		add("GET", "/"+kind+"/{id}", errNotManager)
		add("POST", "/"+kind+"/{id}/update", errNotManager)
		if kind != "tasks" {
			add("DELETE", "/"+kind+"/{id}", errNotManager)
		}
		if kind != "nodes" && kind != "tasks" {
			add("POST", "/"+kind+"/create", errNotManager)
		}
	}
	add("GET", "/services/{id}/logs", errNotManager)
	add("GET", "/tasks/{id}/logs", errNotManager)
	return rs
}

var errNoPlugins = errdefs.With(errdefs.NotImplemented, errors.New("plugins are not supported by berth"))

// pluginRoutes: no plugins are installed and none can be. Inspect and
// remove of a named plugin are "not found" (so `docker inspect` moves on
// to the next object kind); installing and building fail clearly.
// /session and /grpc (BuildKit over the engine socket) are answered 501
// here rather than dockerd's behaviour: berth has the classic builder only
// (/_ping says Builder-Version 1), and a clear message beats "page not
// found" for a client that insists on BuildKit.
func pluginRoutes() []api.Route {
	notFound := func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		return errdefs.Newf(errdefs.NotFound, "plugin %q not found", r.PathValue("name"))
	}
	rs := []api.Route{
		{Method: "GET", Path: "/plugins", Handler: func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
			return api.WriteJSON(w, http.StatusOK, []struct{}{})
		}},
		{Method: "GET", Path: "/plugins/{name}/json", Handler: notFound},
		{Method: "DELETE", Path: "/plugins/{name}", Handler: notFound},
		{Method: "POST", Path: "/plugins/{name}/enable", Handler: notFound},
		{Method: "POST", Path: "/plugins/{name}/disable", Handler: notFound},
		{Method: "POST", Path: "/plugins/{name}/set", Handler: notFound},
		{Method: "POST", Path: "/plugins/{name}/push", Handler: notFound},
		{Method: "POST", Path: "/plugins/{name}/upgrade", Handler: fail(errNoPlugins)},
		{Method: "GET", Path: "/plugins/privileges", Handler: fail(errNoPlugins)},
		{Method: "POST", Path: "/plugins/pull", Handler: fail(errNoPlugins)},
		{Method: "POST", Path: "/plugins/create", Handler: fail(errNoPlugins)},
	}
	noBuildKit := errdefs.With(errdefs.NotImplemented, errors.New("BuildKit is not supported by berth: build with the classic builder (DOCKER_BUILDKIT=0)"))
	rs = append(rs,
		api.Route{Method: "POST", Path: "/session", Handler: fail(noBuildKit)},
		api.Route{Method: "POST", Path: "/grpc", Handler: fail(noBuildKit)},
	)
	return rs
}
