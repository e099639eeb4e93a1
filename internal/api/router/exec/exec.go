// Package exec is the Engine API router for exec: create
// (POST /containers/{name}/exec), start (hijacked unless detached),
// resize and inspect. Its backend is the daemon's container service.
package exec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/api"
)

// Router serves exec.
type Router struct {
	backend Backend
}

// New returns the exec router over b.
func New(b Backend) *Router { return &Router{backend: b} }

// Routes implements api.Router.
func (e *Router) Routes() []api.Route {
	return []api.Route{
		{Method: "POST", Path: "/containers/{name}/exec", Handler: e.create},
		{Method: "POST", Path: "/exec/{id}/start", Handler: e.start},
		{Method: "POST", Path: "/exec/{id}/resize", Handler: e.resize},
		{Method: "GET", Path: "/exec/{id}/json", Handler: e.inspect},
	}
}

func (e *Router) create(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := api.ReadJSON(r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return api.InvalidParam(errors.New("No exec command specified"))
	}
	if !api.VersionAtLeast(ctx, "1.42") {
		req.ConsoleSize = nil
	}
	id, err := e.backend.ExecCreate(ctx, r.PathValue("name"), req)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusCreated, &container.ExecCreateResponse{ID: id})
}

func (e *Router) start(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var req container.ExecStartRequest
	if err := api.ReadJSON(r, &req); err != nil {
		return err
	}
	if !api.VersionAtLeast(ctx, "1.42") || !req.Tty {
		req.ConsoleSize = nil
	}
	id := r.PathValue("id")
	if req.Detach {
		if err := e.backend.ExecStart(ctx, id, StartOptions{Detach: true, ConsoleSize: req.ConsoleSize}); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var conn *api.Conn
	var errOut io.Writer
	opts := StartOptions{ConsoleSize: req.ConsoleSize}
	opts.Streams = func(tty, stdin, stdout, stderr bool) (*api.Streams, error) {
		if conn != nil {
			return nil, errors.New("exec streams already set up")
		}
		var err error
		conn, err = api.Hijack(w, r.WithContext(ctx), api.StreamContentType(ctx, !tty))
		if err != nil {
			return nil, err
		}
		go func() {
			<-conn.Context().Done()
			cancel()
		}()
		s, errs := api.HijackedStreams(conn, tty, stdin, stdout, stderr)
		// dockerd reports a failed start on the stdout stream.
		errOut = errs
		if s.Stdout != nil {
			errOut = s.Stdout
		}
		return s, nil
	}
	err := e.backend.ExecStart(ctx, id, opts)
	if conn == nil {
		return err
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(errOut, "%v\r\n", err)
	}
	conn.Close()
	return nil
}

func (e *Router) resize(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	h, err := api.Uint32Value(r, "h")
	if err != nil {
		return api.InvalidParam(fmt.Errorf("invalid resize height %q: %w", r.URL.Query().Get("h"), err))
	}
	wd, err := api.Uint32Value(r, "w")
	if err != nil {
		return api.InvalidParam(fmt.Errorf("invalid resize width %q: %w", r.URL.Query().Get("w"), err))
	}
	if err := e.backend.ExecResize(ctx, r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (e *Router) inspect(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	resp, err := e.backend.ExecInspect(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, resp)
}
