package api

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/apiext"
)

// HandlerFunc serves one route. ctx carries the negotiated API version
// (VersionFromContext); path wildcards are read with r.PathValue. A handler
// returns an error instead of writing one: the server maps it to a status
// once (StatusFromError). A handler that has started a stream (or hijacked
// the connection) must report later errors in the stream itself.
type HandlerFunc func(ctx context.Context, w http.ResponseWriter, r *http.Request) error

// Route is one operation: Method and a net/http ServeMux path pattern
// without the /v1.NN prefix ("/containers/{name}/json",
// "/images/{name...}").
type Route struct {
	Method  string
	Path    string
	Handler HandlerFunc
}

// Router is a group of routes (system, container, exec, image, and later
// volume, network, build).
type Router interface {
	Routes() []Route
}

// Config configures the server.
type Config struct {
	// EngineVersion is berthd's version: the Server header says
	// "Docker/<EngineVersion> (linux)" as dockerd's does.
	EngineVersion string
	// Logger receives handler errors (5xx) and recovered panics; default
	// slog.Default().
	Logger *slog.Logger
	// OnIdle, if set, is called once IdleDelay after the last request
	// ended with no new one since (berthd gives its free heap back to the
	// kernel then, off the path of any request).
	OnIdle    func()
	IdleDelay time.Duration
	// Busy, if set, is called as each request begins; the function it
	// returns, as it ends (berthd holds work done ahead of time until no
	// request is in progress: internal/quiet).
	Busy func() (done func())
}

// Server is the Engine API HTTP server. Serve it on any number of
// listeners; Shutdown stops them all.
type Server struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
	srv *http.Server
	// base is the parent of every request's context; cancelled by
	// Shutdown and Close so endless streams (events, logs --follow) end.
	base       context.Context
	cancelBase context.CancelFunc

	mu       sync.Mutex
	hijacked map[*Conn]struct{}
	idle     *time.Timer
	requests atomic.Uint64
}

// NewServer builds a server for routers. It fails if two routes collide.
func NewServer(cfg Config, routers ...Router) (s *Server, err error) {
	if cfg.EngineVersion == "" {
		cfg.EngineVersion = "dev"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s = &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), hijacked: map[*Conn]struct{}{}}
	s.base, s.cancelBase = context.WithCancel(context.Background())
	defer func() {
		// ServeMux panics on conflicting patterns.
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("api: registering routes: %v", p)
		}
	}()
	for _, rt := range routers {
		for _, r := range rt.Routes() {
			s.mux.Handle(r.Method+" "+r.Path, s.wrap(r))
		}
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: time.Minute,
		BaseContext:       func(net.Listener) context.Context { return s.base },
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Serve accepts connections on l (a unix socket or plain TCP listener)
// until Shutdown; it returns nil after Shutdown.
func (s *Server) Serve(l net.Listener) error {
	err := s.srv.Serve(l)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeTLS serves l over TLS with cfg (the daemon sets ClientAuth and
// ClientCAs for mutual TLS). HTTP/1.1 only: attach and exec hijack the
// connection, which HTTP/2 cannot do.
func (s *Server) ServeTLS(l net.Listener, cfg *tls.Config) error {
	c := cfg.Clone()
	c.NextProtos = []string{"http/1.1"}
	return s.Serve(tls.NewListener(l, c))
}

// Shutdown stops accepting connections, ends streams (their request
// contexts are cancelled), closes hijacked connections (attach, exec) and
// waits for the other requests to finish, or for ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancelBase()
	s.closeHijacked()
	return s.srv.Shutdown(ctx)
}

// Close closes every listener and connection at once, hijacked ones
// included.
func (s *Server) Close() error {
	s.cancelBase()
	s.closeHijacked()
	return s.srv.Close()
}

func (s *Server) track(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hijacked[c] = struct{}{}
}

func (s *Server) untrack(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.hijacked, c)
}

func (s *Server) closeHijacked() {
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.hijacked))
	for c := range s.hijacked {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

type serverKey struct{}

type rawVersionKey struct{}

// versionPrefix matches dockerd's "/v{version:[0-9.]+}" prefix.
var versionPrefix = regexp.MustCompile(`^/v([0-9.]+)(/.*)$`)

// ServeHTTP strips the version prefix, sets dockerd's headers and
// dispatches. An unknown path, or a known path with another method, is 404
// "page not found" as in dockerd (its router answers 404 for both).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Server", "Docker/"+s.cfg.EngineVersion+" (linux)")
	h.Set("Api-Version", MaxAPIVersion)
	h.Set("Ostype", "linux")
	h.Set(apiext.Header, apiext.AttachRun)

	version := ""
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		version = m[1]
		r2 := r.Clone(r.Context())
		r2.URL.Path = m[2]
		r2.URL.RawPath = ""
		if raw := r.URL.RawPath; raw != "" {
			if rm := versionPrefix.FindStringSubmatch(raw); rm != nil {
				r2.URL.RawPath = rm[2]
			}
		}
		r = r2
	}
	r = r.WithContext(context.WithValue(r.Context(), rawVersionKey{}, version))
	if _, pattern := s.mux.Handler(r); pattern == "" {
		WriteError(w, ErrPageNotFound)
		return
	}
	if s.cfg.OnIdle != nil {
		defer s.resetIdle()
	}
	if s.cfg.Busy != nil {
		defer s.cfg.Busy()()
	}
	s.mux.ServeHTTP(w, r)
}

// Requests counts the requests served so far that armed the idle timer
// (only counted when OnIdle is set): an idle hook compares two readings
// to learn whether anything came in between.
func (s *Server) Requests() uint64 { return s.requests.Load() }

// resetIdle (re)arms the idle timer after a request.
func (s *Server) resetIdle() {
	s.requests.Add(1)
	d := s.cfg.IdleDelay
	if d <= 0 {
		d = 2 * time.Second
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle == nil {
		s.idle = time.AfterFunc(d, s.cfg.OnIdle)
		return
	}
	s.idle.Reset(d)
}

// wrap adds, around one route: the version check, the version in the
// context, error mapping and panic recovery.
func (s *Server) wrap(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &responseWriter{ResponseWriter: w}
		defer s.recoverPanic(rw, r)
		ctx := r.Context()
		v, _ := ctx.Value(rawVersionKey{}).(string)
		var err error
		switch {
		case v == "":
			v = MaxAPIVersion
		case VersionLess(v, MinAPIVersion):
			err = InvalidParam(fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", v, MinAPIVersion))
		case VersionLess(MaxAPIVersion, v):
			err = InvalidParam(fmt.Errorf("client version %s is too new. Maximum supported API version is %s", v, MaxAPIVersion))
		}
		if err == nil {
			ctx = WithVersion(context.WithValue(ctx, serverKey{}, s), v)
			err = rt.Handler(ctx, rw, r.WithContext(ctx))
		}
		if err != nil {
			s.handleError(rw, r, err)
		}
	})
}

func (s *Server) handleError(rw *responseWriter, r *http.Request, err error) {
	code := StatusFromError(err)
	if code >= 500 {
		s.log.Error("api: handler failed", "method", r.Method, "path", r.URL.Path, "status", code, "err", err)
	}
	if rw.hijacked != nil || rw.wroteHeader {
		// The answer has started; the handler should have reported the
		// error in its stream.
		if code < 500 {
			s.log.Warn("api: error after the response started", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		return
	}
	WriteError(rw, err)
}

func (s *Server) recoverPanic(rw *responseWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.log.Error("api: panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	switch {
	case rw.hijacked != nil:
		rw.hijacked.Close()
	case !rw.wroteHeader:
		WriteError(rw, fmt.Errorf("internal server error: %v", p))
	default:
		// Mid-stream: abort the connection so the client sees a failure
		// rather than a truncated success.
		panic(http.ErrAbortHandler)
	}
}

// responseWriter remembers whether the answer started, so an error
// returned afterwards is not written into the body.
type responseWriter struct {
	http.ResponseWriter
	wroteHeader bool
	hijacked    net.Conn
}

func (w *responseWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(p []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(p)
}

func (w *responseWriter) Flush() {
	w.wroteHeader = true
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = c
	}
	return c, brw, err
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
