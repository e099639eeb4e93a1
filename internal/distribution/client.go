package distribution

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Options configure a Client. The zero value works: anonymous or
// ~/.docker/config.json credentials, plain HTTP only for loopback hosts.
type Options struct {
	// Mirrors maps a registry host ("docker.io", "ghcr.io",
	// "127.0.0.1:5000") to mirror hosts tried before it, in order. A mirror
	// is "host[:port]" or a URL whose scheme says http or https.
	Mirrors map[string][]string
	// Insecure lists registries reachable over plain HTTP: "host[:port]"
	// or CIDRs. Loopback and localhost always are.
	Insecure []string
	// Keychain resolves credentials; default authn.DefaultKeychain.
	Keychain authn.Keychain
	// Transport is the HTTP transport (tests, proxies).
	Transport http.RoundTripper
	// UserAgent is sent with every request.
	UserAgent string
	// Jobs bounds concurrent transfers of one push (default 4).
	Jobs int
}

// Client talks to registries. It is safe for concurrent use.
type Client struct {
	opts Options
	// live holds what a daemon reload may change (reload.go), shared by
	// the copies WithAuth makes.
	live *liveOptions
	// auth, when set (WithAuth), is what the registry a call names is
	// given instead of the keychain's answer; mirrors still ask the
	// keychain.
	auth authn.Authenticator
}

// New returns a client for opts.
func New(opts Options) *Client {
	if opts.Keychain == nil {
		opts.Keychain = authn.DefaultKeychain
	}
	if opts.Transport == nil {
		opts.Transport = remote.DefaultTransport
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "berth"
	}
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	return &Client{opts: opts, live: newLiveOptions(opts)}
}

// WithAuth returns a shallow copy of c that authenticates with auth, the
// credentials of one request (the Engine API's X-Registry-Auth), instead
// of asking the keychain, to the registry each operation names: the
// registry of the reference given to Resolve (and so to the Resolved's
// Manifest and Blob), Push and Delete. Mirrors of that registry are not
// given them, as Docker sends a request's credentials only to the
// registry named: they get the keychain's credentials or none. Any other
// registry the operation reaches also asks the keychain.
//
// A nil auth means no per-request credentials: the copy uses the keychain
// everywhere, as c does. authn.Anonymous means "explicitly anonymous" for
// the named registry. c is not changed.
func (c *Client) WithAuth(auth authn.Authenticator) *Client {
	cp := *c
	cp.auth = auth
	return &cp
}

// keychain is the keychain for an operation on target: the per-request
// credentials for target's registry, if any, then c.opts.Keychain.
func (c *Client) keychain(target name.Reference) authn.Keychain {
	if c.auth == nil || target == nil {
		return c.opts.Keychain
	}
	return requestKeychain{registry: target.Context().RegistryStr(), auth: c.auth, next: c.opts.Keychain}
}

// requestKeychain answers auth for one registry and defers to next for
// every other one.
type requestKeychain struct {
	registry string
	auth     authn.Authenticator
	next     authn.Keychain
}

func (k requestKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

func (k requestKeychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	if r.RegistryStr() == k.registry {
		return k.auth, nil
	}
	return authn.Resolve(ctx, k.next, r)
}

// remoteOptions are the go-containerregistry options for one operation on
// target (the reference the caller named, whose registry gets the
// per-request credentials).
func (c *Client) remoteOptions(ctx context.Context, target name.Reference, extra ...remote.Option) []remote.Option {
	o := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(c.keychain(target)),
		remote.WithTransport(c.opts.Transport),
		remote.WithUserAgent(c.opts.UserAgent),
		remote.WithJobs(c.opts.Jobs),
		remote.WithRetryBackoff(remote.Backoff{Duration: 200 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 3}),
	}
	return append(o, extra...)
}

// insecure reports whether host may be reached over plain HTTP.
func (c *Client) insecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, e := range c.live.get().insecure {
		if e == host || e == h {
			return true
		}
		if _, cidr, err := net.ParseCIDR(e); err == nil {
			if ip := net.ParseIP(h); ip != nil && cidr.Contains(ip) {
				return true
			}
		}
	}
	return false
}

// ParseReference turns a canonical reference ("docker.io/library/busybox:
// latest", "127.0.0.1:5000/app@sha256:...") into go-containerregistry's
// form, honouring the insecure configuration.
func (c *Client) ParseReference(ref string) (name.Reference, error) {
	host := ref
	if i := strings.IndexByte(ref, '/'); i >= 0 {
		host = ref[:i]
	}
	var opts []name.Option
	if c.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, append(opts, name.StrictValidation)...)
	if err != nil {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid reference %q: %w", ref, err)
	}
	return r, nil
}

// candidates lists where to look for ref: each configured mirror of its
// registry, then the registry itself.
func (c *Client) candidates(ref name.Reference) []name.Reference {
	reg := ref.Context().RegistryStr()
	keys := []string{reg}
	if reg == name.DefaultRegistry {
		keys = append(keys, "docker.io")
	}
	var out []name.Reference
	for _, k := range keys {
		for _, m := range c.live.get().mirrors[k] {
			if mr, err := c.onMirror(ref, m); err == nil {
				out = append(out, mr)
			}
		}
	}
	return append(out, ref)
}

// onMirror rewrites ref to the same repository on mirror.
func (c *Client) onMirror(ref name.Reference, mirror string) (name.Reference, error) {
	host := mirror
	var opts []name.Option
	switch {
	case strings.HasPrefix(mirror, "http://"):
		host = strings.TrimPrefix(mirror, "http://")
		opts = append(opts, name.Insecure)
	case strings.HasPrefix(mirror, "https://"):
		host = strings.TrimPrefix(mirror, "https://")
	default:
		if c.insecure(mirror) {
			opts = append(opts, name.Insecure)
		}
	}
	host = strings.TrimSuffix(host, "/")
	repo := host + "/" + ref.Context().RepositoryStr()
	switch r := ref.(type) {
	case name.Digest:
		return name.NewDigest(repo+"@"+r.DigestStr(), opts...)
	case name.Tag:
		return name.NewTag(repo+":"+r.TagStr(), opts...)
	}
	return nil, fmt.Errorf("unexpected reference type %T", ref)
}

// Resolved is a reference resolved to a manifest (or index) on one host.
type Resolved struct {
	// Ref is where it was found: a mirror or the registry itself.
	Ref name.Reference
	// Descriptor holds the manifest bytes and media type.
	Descriptor *remote.Descriptor
	puller     *remote.Puller
}

// Resolve fetches the manifest or index ref points to, trying mirrors
// first. A "not found" from every candidate is a NotFound error. With
// WithAuth's credentials, they go to ref's registry only (not to mirrors);
// the Resolved keeps using them for Manifest and Blob.
func (c *Client) Resolve(ctx context.Context, ref name.Reference) (*Resolved, error) {
	var errs []error
	for _, cand := range c.candidates(ref) {
		p, err := remote.NewPuller(c.remoteOptions(ctx, ref)...)
		if err != nil {
			return nil, err
		}
		d, err := p.Get(ctx, cand)
		if err == nil {
			return &Resolved{Ref: cand, Descriptor: d, puller: p}, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", cand.Context().RegistryStr(), err))
		if ctx.Err() != nil {
			break
		}
	}
	err := errors.Join(errs...)
	if isNotFound(err) {
		return nil, errdefs.Newf(errdefs.NotFound, "manifest for %s not found: %w", ref, err)
	}
	if isUnauthorized(err) {
		return nil, errdefs.Newf(errdefs.Unauthorized, "pull access denied for %s: %w", ref.Context(), err)
	}
	return nil, errdefs.Newf(errdefs.Unavailable, "resolve %s: %w", ref, err)
}

// Manifest fetches the manifest with digest d from the repository r was
// resolved in (a platform manifest of an index).
func (r *Resolved) Manifest(ctx context.Context, d v1.Hash) (*remote.Descriptor, error) {
	ref := r.Ref.Context().Digest(d.String())
	desc, err := r.puller.Get(ctx, ref)
	if err != nil {
		return nil, classify(err, "manifest "+d.String())
	}
	return desc, nil
}

// Blob opens the compressed stream of blob d in the resolved repository.
// The stream is verified against d when read to the end: a truncated or
// corrupted download fails with an error, never silently.
func (r *Resolved) Blob(ctx context.Context, d v1.Hash) (io.ReadCloser, error) {
	l, err := r.puller.Layer(ctx, r.Ref.Context().Digest(d.String()))
	if err != nil {
		return nil, classify(err, "blob "+d.String())
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, classify(err, "blob "+d.String())
	}
	return rc, nil
}

// Push uploads t (a v1.Image or v1.ImageIndex) to ref: blobs the registry
// already has are skipped, layers that are MountableLayers are mounted from
// their source repository when it is on the same registry. progress, if
// not nil, receives updates and is closed when the push ends. WithAuth's
// credentials, if any, are used for ref's registry.
func (c *Client) Push(ctx context.Context, ref name.Reference, t remote.Taggable, progress chan<- v1.Update) error {
	opts := c.remoteOptions(ctx, ref)
	if progress != nil {
		opts = append(opts, remote.WithProgress(progress))
	}
	// remote.Write and WriteIndex close the progress channel when done.
	var err error
	switch v := t.(type) {
	case v1.Image:
		err = remote.Write(ref, v, opts...)
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, v, opts...)
	default:
		if progress != nil {
			close(progress)
		}
		var p *remote.Pusher
		if p, err = remote.NewPusher(c.remoteOptions(ctx, ref)...); err == nil {
			err = p.Push(ctx, ref, t)
		}
	}
	if err != nil {
		return classify(err, "push "+ref.String())
	}
	return nil
}

// Delete removes the manifest ref points to from its registry.
func (c *Client) Delete(ctx context.Context, ref name.Reference) error {
	if err := remote.Delete(ref, c.remoteOptions(ctx, ref)...); err != nil {
		return classify(err, "delete "+ref.String())
	}
	return nil
}

// CheckLogin verifies credentials against a registry (`login`).
func (c *Client) CheckLogin(ctx context.Context, registry string, auth authn.Authenticator) error {
	var opts []name.Option
	if c.insecure(registry) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(registry, opts...)
	if err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid registry %q: %w", registry, err)
	}
	tr, err := transport.NewWithContext(ctx, reg, auth, c.opts.Transport, []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return classify(err, "login to "+registry)
	}
	// A token flow has checked the credentials by now; with Basic auth
	// nothing was sent yet: ask the API root with them.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return classify(err, "login to "+registry)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return errdefs.Newf(errdefs.Unauthorized, "login to %s: unauthorized: incorrect username or password", registry)
	case resp.StatusCode >= 300:
		return errdefs.Newf(errdefs.Unavailable, "login to %s: registry answered %s", registry, resp.Status)
	}
	return nil
}

func classify(err error, what string) error {
	switch {
	case isNotFound(err):
		return errdefs.Newf(errdefs.NotFound, "%s: %w", what, err)
	case isUnauthorized(err):
		return errdefs.Newf(errdefs.Unauthorized, "%s: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isNotFound(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return true
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.BlobUnknownErrorCode, transport.NameUnknownErrorCode:
				return true
			}
		}
	}
	return false
}

func isUnauthorized(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden
	}
	return false
}
