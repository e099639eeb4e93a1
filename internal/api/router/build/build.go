// Package build is the Engine API router for /build (the classic
// builder's endpoint, which the docker CLI uses with DOCKER_BUILDKIT=0),
// /build/prune and /build/cancel. It parses the query, streams the
// builder's output as Docker's JSON messages ({"stream": ...},
// {"aux": {"ID": ...}}, {"errorDetail": ...}) and leaves the building to
// its Backend.
package build

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"github.com/berth-dev/berth/internal/api/filters"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	apibuild "github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Options are POST /build's parameters.
type Options struct {
	Tags        []string
	Dockerfile  string
	BuildArgs   map[string]*string
	Labels      map[string]string
	Target      string
	NoCache     bool
	Pull        bool
	Quiet       bool
	NetworkMode string
	ExtraHosts  []string
	Platform    string
	Remote      string
	// Secrets are RUN --mount=type=secret values by ID (berth's
	// X-Berth-Build-Secrets header).
	Secrets map[string][]byte
	// AuthConfigs are the client's registry credentials by registry
	// (X-Registry-Config), for pulling base images.
	AuthConfigs map[string]registry.AuthConfig
	// Resources limit RUN containers (memory, memswap, cpushares,
	// cpusetcpus, cpusetmems, cpuquota, cpuperiod, cgroupparent, ulimits).
	Resources container.Resources
	ShmSize   int64
	// CacheFrom (cachefrom) are the classic builder's cache source
	// images, or berth's BuildKit-style cache imports (type=...);
	// CacheTo are cache exports (berth's cacheto query parameter or
	// X-Berth-Build-Cache-To header).
	CacheFrom []string
	CacheTo   []string
	// ContextRef and SSH: berth's extensions (see ext.go).
	ContextRef *ContextRef
	SSH        map[string]string
}

// SecretsHeader is the berth CLI's header carrying build secrets: base64
// of a JSON object of IDs to base64 bytes.
const SecretsHeader = "X-Berth-Build-Secrets"

// Output receives a build's progress.
type Output interface {
	// Stream is a piece of the classic builder's text output.
	Stream(s string)
	// Aux reports the built image's ID.
	Aux(id string)
}

// Backend builds images.
type Backend interface {
	// Build reads the context from body and builds; it returns the image
	// ID. An error with an ExitCode() method (a failed RUN) is reported
	// with that code.
	Build(ctx context.Context, o Options, body io.Reader, out Output) (string, error)
	// PruneCache empties the build cache.
	PruneCache(ctx context.Context, all bool, filters map[string][]string) (*apibuild.CachePruneReport, error)
}

// Router serves the build endpoints.
type Router struct{ b Backend }

// New returns the router.
func New(b Backend) *Router { return &Router{b: b} }

// Routes implements api.Router.
func (br *Router) Routes() []api.Route {
	return []api.Route{
		{Method: "POST", Path: "/build", Handler: br.build},
		{Method: "POST", Path: "/build/prune", Handler: br.prune},
		{Method: "POST", Path: "/build/cancel", Handler: br.cancel},
	}
}

func (br *Router) build(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	o := Options{
		Tags: q["t"], Dockerfile: q.Get("dockerfile"), Target: q.Get("target"),
		NoCache: api.BoolValue(r, "nocache"), Pull: api.BoolValue(r, "pull") && q.Get("pull") != "0",
		Quiet: api.BoolValue(r, "q"), NetworkMode: q.Get("networkmode"), Platform: q.Get("platform"),
		Remote: q.Get("remote"),
	}
	for _, h := range q["extrahosts"] {
		for _, e := range strings.Split(h, ",") {
			if e = strings.TrimSpace(e); e != "" {
				o.ExtraHosts = append(o.ExtraHosts, e)
			}
		}
	}
	if v := q.Get("buildargs"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.BuildArgs); err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid buildargs: %v", err)
		}
	}
	if v := q.Get("labels"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.Labels); err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid labels: %v", err)
		}
	}
	ints := map[string]*int64{
		"memory": &o.Resources.Memory, "memswap": &o.Resources.MemorySwap, "cpushares": &o.Resources.CPUShares,
		"cpuquota": &o.Resources.CPUQuota, "cpuperiod": &o.Resources.CPUPeriod, "shmsize": &o.ShmSize,
	}
	for k, p := range ints {
		if v := q.Get(k); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return errdefs.Newf(errdefs.InvalidArgument, "invalid %s: %q", k, v)
			}
			*p = n
		}
	}
	o.Resources.CpusetCpus, o.Resources.CpusetMems, o.Resources.CgroupParent = q.Get("cpusetcpus"), q.Get("cpusetmems"), q.Get("cgroupparent")
	if v := q.Get("ulimits"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.Resources.Ulimits); err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid ulimits: %v", err)
		}
	}
	if h := r.Header.Get("X-Registry-Config"); h != "" {
		b, err := base64.URLEncoding.DecodeString(h)
		if err != nil {
			b, err = base64.StdEncoding.DecodeString(h)
		}
		if err == nil {
			err = json.Unmarshal(b, &o.AuthConfigs)
		}
		if err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid X-Registry-Config header")
		}
	}
	if err := parseCacheOptions(r, &o); err != nil {
		return err
	}
	if h := r.Header.Get(SecretsHeader); h != "" {
		b, err := base64.StdEncoding.DecodeString(h)
		if err == nil {
			err = json.Unmarshal(b, &o.Secrets)
		}
		if err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid %s header", SecretsHeader)
		}
	}
	if v := q.Get("version"); v == "2" {
		return errdefs.Newf(errdefs.NotImplemented, "BuildKit is not supported by berth: build with the classic builder (DOCKER_BUILDKIT=0)")
	}
	if api.BoolValue(r, "squash") {
		return errdefs.Newf(errdefs.NotImplemented, "squash is not supported by berth")
	}
	if err := parseExt(r, &o); err != nil {
		return err
	}
	if v := q.Get("outputs"); v != "" && v != "[]" && v != "null" {
		return errdefs.Newf(errdefs.NotImplemented, "build outputs other than an image are not supported by the classic builder endpoint")
	}
	out := &jsonOutput{w: w}
	id, err := br.b.Build(ctx, o, r.Body, out)
	if err != nil {
		return out.fail(err)
	}
	_ = id
	out.start()
	return nil
}

func (br *Router) prune(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	var f map[string][]string
	if v := r.URL.Query().Get("filters"); v != "" {
		// Both encodings clients send: {"k":{"v":true}} and the legacy
		// {"k":["v"]}.
		args, err := filters.FromJSON(v)
		if err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid filters: %v", err)
		}
		f = map[string][]string{}
		for _, k := range args.Keys() {
			f[k] = args.Get(k)
		}
	}
	rep, err := br.b.PruneCache(ctx, api.BoolValue(r, "all"), f)
	if err != nil {
		return err
	}
	return api.WriteJSON(w, http.StatusOK, rep)
}

func (br *Router) cancel(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	// Builds end when their client goes away; there is nothing to look up.
	w.WriteHeader(http.StatusOK)
	return nil
}

// jsonOutput writes Docker's JSON messages, starting the 200 response at
// the first one: an error before any output is answered with its status.
type jsonOutput struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	started bool
	enc     *json.Encoder
	rc      *http.ResponseController
}

type message struct {
	Stream      string          `json:"stream,omitempty"`
	Aux         any             `json:"aux,omitempty"`
	Error       string          `json:"error,omitempty"`
	ErrorDetail *errorDetail    `json:"errorDetail,omitempty"`
	ID          string          `json:"id,omitempty"`
	Status      string          `json:"status,omitempty"`
	Progress    json.RawMessage `json:"progressDetail,omitempty"`
}

type errorDetail struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}

func (o *jsonOutput) start() {
	if o.started {
		return
	}
	o.started = true
	o.w.Header().Set("Content-Type", "application/json")
	o.w.WriteHeader(http.StatusOK)
	o.enc = json.NewEncoder(o.w)
	o.rc = http.NewResponseController(o.w)
}

func (o *jsonOutput) send(m message) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.start()
	_ = o.enc.Encode(m)
	_ = o.rc.Flush()
}

func (o *jsonOutput) Stream(s string) { o.send(message{Stream: s}) }

func (o *jsonOutput) Aux(id string) { o.send(message{Aux: map[string]string{"ID": id}}) }

// fail reports err: as the response's status when nothing was written,
// else in the stream.
func (o *jsonOutput) fail(err error) error {
	o.mu.Lock()
	started := o.started
	o.mu.Unlock()
	if !started {
		return err
	}
	code := 0
	var ce interface{ ExitCode() int }
	if errors.As(err, &ce) {
		code = ce.ExitCode()
	}
	o.send(message{Error: err.Error(), ErrorDetail: &errorDetail{Code: code, Message: err.Error()}})
	return nil
}
