package registry

import (
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/internal/image/content"
)

// Options configure a Server.
type Options struct {
	// ReadOnly refuses every request that would change the registry
	// (405 UNSUPPORTED).
	ReadOnly bool
	// Htpasswd maps user names to password hashes; when non-empty every
	// request needs HTTP basic credentials that match. See CheckHash for
	// the accepted hash formats and ParseHtpasswd to read a file.
	Htpasswd map[string]string
	// Realm is the basic-auth realm (default "berth-registry").
	Realm string
	// Logger receives internal errors (default: discarded).
	Logger *slog.Logger
}

// Server is an OCI distribution-spec v1.1 registry over a content store.
// It is an http.Handler; TLS and listening belong to the caller.
type Server struct {
	store *content.Store
	meta  *meta
	opts  Options
	auth  *basicAuth
	log   *slog.Logger
	table map[routeMethod]handlerFunc
}

var _ http.Handler = (*Server)(nil)

// New returns a registry keeping blob and manifest bytes in store and the
// repository metadata (links, tags, referrers, upload sessions) under dir.
// A new Server on the same store and dir sees everything pushed before.
func New(store *content.Store, dir string, opts Options) (*Server, error) {
	if store == nil || dir == "" {
		return nil, fmt.Errorf("registry: a content store and a metadata directory are required")
	}
	m, err := openMeta(dir)
	if err != nil {
		return nil, err
	}
	s := &Server{store: store, meta: m, opts: opts, log: opts.Logger}
	s.table = s.routes()
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(opts.Htpasswd) > 0 {
		realm := opts.Realm
		if realm == "" {
			realm = "berth-registry"
		}
		if s.auth, err = newBasicAuth(opts.Htpasswd, realm); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// The distribution spec's grammar for names and tags.
var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
	uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
)

// maxNameLength bounds a repository name, as the reference registry does.
const maxNameLength = 255

func validName(name string) bool { return len(name) <= maxNameLength && nameRE.MatchString(name) }
func validTag(tag string) bool   { return tagRE.MatchString(tag) }
func validUploadID(id string) bool {
	return uuidRE.MatchString(id)
}

func newUploadID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

type routeKind int

const (
	routeNone routeKind = iota
	routeBase
	routeCatalog
	routeTags // this and the kinds below name a repository
	routeManifest
	routeBlob
	routeUploadStart
	routeUpload
	routeReferrers
)

type route struct {
	kind routeKind
	name string // repository
	ref  string // tag or digest, blob digest, upload id, subject digest
}

// parseRoute splits a /v2/ path. Names contain slashes, so the endpoint is
// recognised from the end of the path.
func parseRoute(path string) route {
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		if path == "/v2" {
			return route{kind: routeBase}
		}
		return route{}
	}
	switch rest {
	case "":
		return route{kind: routeBase}
	case "_catalog":
		return route{kind: routeCatalog}
	}
	trailing := strings.HasSuffix(rest, "/")
	parts := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	n := len(parts)
	at := func(i int) string { // parts from the end: at(1) is the last
		if n-i < 0 {
			return ""
		}
		return parts[n-i]
	}
	name := func(k int) string { return strings.Join(parts[:max(n-k, 0)], "/") }
	switch {
	case n >= 3 && at(2) == "tags" && at(1) == "list" && !trailing:
		return route{kind: routeTags, name: name(2)}
	case n >= 3 && at(2) == "blobs" && at(1) == "uploads":
		return route{kind: routeUploadStart, name: name(2)}
	case trailing:
		return route{}
	case n >= 4 && at(3) == "blobs" && at(2) == "uploads":
		return route{kind: routeUpload, name: name(3), ref: at(1)}
	case n >= 3 && at(2) == "manifests":
		return route{kind: routeManifest, name: name(2), ref: at(1)}
	case n >= 3 && at(2) == "blobs":
		return route{kind: routeBlob, name: name(2), ref: at(1)}
	case n >= 3 && at(2) == "referrers":
		return route{kind: routeReferrers, name: name(2), ref: at(1)}
	}
	return route{}
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, rt route) error

type routeMethod struct {
	kind   routeKind
	method string
}

// routes is the endpoint table: route kind and method to handler.
func (s *Server) routes() map[routeMethod]handlerFunc {
	return map[routeMethod]handlerFunc{
		{routeBase, http.MethodGet}:         s.base,
		{routeBase, http.MethodHead}:        s.base,
		{routeCatalog, http.MethodGet}:      s.catalog,
		{routeTags, http.MethodGet}:         s.tagsList,
		{routeManifest, http.MethodGet}:     s.getManifest,
		{routeManifest, http.MethodHead}:    s.getManifest,
		{routeManifest, http.MethodPut}:     s.putManifest,
		{routeManifest, http.MethodDelete}:  s.deleteManifest,
		{routeBlob, http.MethodGet}:         s.getBlob,
		{routeBlob, http.MethodHead}:        s.getBlob,
		{routeBlob, http.MethodDelete}:      s.deleteBlob,
		{routeUploadStart, http.MethodPost}: s.startUpload,
		{routeUpload, http.MethodGet}:       s.uploadStatus,
		{routeUpload, http.MethodPatch}:     s.patchUpload,
		{routeUpload, http.MethodPut}:       s.finishUpload,
		{routeUpload, http.MethodDelete}:    s.cancelUpload,
		{routeReferrers, http.MethodGet}:    s.referrers,
	}
}

// ServeHTTP authenticates, routes and reports errors in the spec's format.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if s.auth != nil && !s.auth.check(r) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", s.auth.realm))
		writeError(w, r, newError(codeUnauthorized, "authentication required"))
		return
	}
	rt := parseRoute(r.URL.Path)
	if rt.kind == routeNone {
		writeError(w, r, newError(codeNotFound, "no such endpoint"))
		return
	}
	if rt.kind >= routeTags && !validName(rt.name) { // every endpoint from tags on is per repository
		writeError(w, r, newError(codeNameInvalid, "invalid repository name %q", rt.name))
		return
	}
	h := s.table[routeMethod{rt.kind, r.Method}]
	if h == nil {
		writeError(w, r, newError(codeUnsupported, "method %s not supported here", r.Method))
		return
	}
	if s.opts.ReadOnly && r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, r, newError(codeUnsupported, "the registry is read-only"))
		return
	}
	if err := h(w, r, rt); err != nil {
		ae := toAPIError(err)
		if ae.Code == codeUnknown {
			s.log.Error("registry request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeError(w, r, ae)
	}
}

func (s *Server) base(w http.ResponseWriter, r *http.Request, _ route) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", "2")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, "{}")
	}
	return nil
}
