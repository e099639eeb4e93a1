// Package system is the Engine API router for the daemon-wide endpoints:
// /_ping, /version, /info, /system/df, /events and /auth; and for what
// berth answers as a dockerd outside a swarm and without plugins (swarm,
// node, service, task, secret, config: 503; plugins: an empty list).
package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	apisystem "github.com/moby/moby/api/types/system"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/filters"
)

// Router serves the system endpoints.
type Router struct {
	backend Backend
}

// New returns the system router over b.
func New(b Backend) *Router { return &Router{backend: b} }

// Routes implements api.Router.
func (s *Router) Routes() []api.Route {
	rs := []api.Route{
		{Method: "GET", Path: "/_ping", Handler: s.ping},
		{Method: "HEAD", Path: "/_ping", Handler: s.ping},
		{Method: "GET", Path: "/version", Handler: s.version},
		{Method: "GET", Path: "/info", Handler: s.info},
		{Method: "GET", Path: "/system/df", Handler: s.diskUsage},
		{Method: "GET", Path: "/events", Handler: s.events},
		{Method: "POST", Path: "/auth", Handler: s.auth},
	}
	rs = append(rs, swarmRoutes()...)
	return append(rs, pluginRoutes()...)
}

func (s *Router) ping(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Add("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Add("Pragma", "no-cache")
	// "1": the classic builder (/build); BuildKit (/session, /grpc) is
	// not served, so the docker CLI must not choose it.
	h.Set("Builder-Version", "1")
	h.Set("Swarm", string(swarm.LocalNodeStateInactive))
	h.Set("Docker-Experimental", "false")
	if r.Method == http.MethodHead {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("Content-Length", "0")
		return nil
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	_, err := w.Write([]byte("OK"))
	return err
}

func (s *Router) version(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	v, err := s.backend.SystemVersion(ctx)
	if err != nil {
		return err
	}
	out := *v
	out.APIVersion = api.MaxAPIVersion
	out.MinAPIVersion = api.MinAPIVersion
	if out.Os == "" {
		out.Os = "linux"
	}
	if len(out.Components) == 0 {
		details := map[string]string{
			"ApiVersion":    api.MaxAPIVersion,
			"MinAPIVersion": api.MinAPIVersion,
			"Os":            out.Os,
			"Arch":          out.Arch,
			"KernelVersion": out.KernelVersion,
			"GoVersion":     out.GoVersion,
			"GitCommit":     out.GitCommit,
			"BuildTime":     out.BuildTime,
			"Experimental":  "false",
		}
		out.Components = []apisystem.ComponentVersion{{Name: "Engine", Version: out.Version, Details: details}}
	} else {
		out.Components = append([]apisystem.ComponentVersion(nil), out.Components...)
		for i, c := range out.Components {
			if c.Name == "Engine" {
				d := map[string]string{}
				for k, v := range c.Details {
					d[k] = v
				}
				d["ApiVersion"], d["MinAPIVersion"] = api.MaxAPIVersion, api.MinAPIVersion
				// The docker CLI prints these; fill the ones left out
				// from the top-level fields.
				for k, v := range map[string]string{
					"Os": out.Os, "Arch": out.Arch, "KernelVersion": out.KernelVersion, "GoVersion": out.GoVersion,
					"GitCommit": out.GitCommit, "BuildTime": out.BuildTime, "Experimental": "false",
				} {
					if _, ok := d[k]; !ok && v != "" {
						d[k] = v
					}
				}
				out.Components[i].Details = d
			}
		}
	}
	return api.WriteJSON(w, http.StatusOK, &out)
}

func (s *Router) info(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	info, err := s.backend.SystemInfo(ctx)
	if err != nil {
		return err
	}
	out := *info
	if out.Swarm.LocalNodeState == "" {
		out.Swarm.LocalNodeState = swarm.LocalNodeStateInactive
	}
	if out.OSType == "" {
		out.OSType = "linux"
	}
	if !api.VersionAtLeast(ctx, "1.50") {
		out.DiscoveredDevices = nil
	}
	if !api.VersionAtLeast(ctx, "1.49") {
		out.FirewallBackend = nil
	}
	if !api.VersionAtLeast(ctx, "1.46") {
		out.Containerd = nil
	}
	return api.WriteJSON(w, http.StatusOK, &out)
}

func (s *Router) auth(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var ac registry.AuthConfig
	if err := api.ReadJSON(r, &ac); err != nil {
		return err
	}
	token, err := s.backend.AuthenticateToRegistry(ctx, &ac)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, &registry.AuthResponse{Status: "Login Succeeded", IdentityToken: token})
}

func (s *Router) events(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	since, err := api.ParseTime("since", q.Get("since"))
	if err != nil {
		return err
	}
	until, err := api.ParseTime("until", q.Get("until"))
	if err != nil {
		return err
	}
	if !until.IsZero() && until.Before(since) {
		return api.InvalidParam(fmt.Errorf("`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until")))
	}
	f, err := filters.FromJSON(q.Get("filters"))
	if err != nil {
		return err
	}
	if err := f.Validate(EventFilters...); err != nil {
		return err
	}
	stream := api.StartJSONStream(w, api.NegotiateStreamType(r))
	legacy := !api.VersionAtLeast(ctx, "1.52")
	skipImageCreate := !api.VersionAtLeast(ctx, "1.46")
	err = s.backend.Events(ctx, EventsOptions{Since: since, Until: until, Filters: f}, func(ev events.Message) error {
		if skipImageCreate && ev.Type == events.ImageEventType && ev.Action == events.ActionCreate {
			return nil
		}
		if legacy {
			return stream.Send(withLegacyFields(ev))
		}
		return stream.Send(ev)
	})
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// withLegacyFields adds the fields deprecated in API 1.22 but sent until
// 1.52 ("status", "id", "from"), which docker CLI before 25 reads.
func withLegacyFields(ev events.Message) any {
	if ev.Type != events.ContainerEventType && ev.Type != events.ImageEventType {
		return ev
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return ev
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return ev
	}
	m["status"] = string(ev.Action)
	m["id"] = ev.Actor.ID
	if ev.Type == events.ContainerEventType {
		m["from"] = ev.Actor.Attributes["image"]
	}
	return m
}
