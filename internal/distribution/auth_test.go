package distribution_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	mobyregistry "github.com/moby/moby/api/types/registry"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/distribution/registry"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/content"
)

// user "ci", password "interop" (bcrypt, cost 4), as in internal/image's
// interop tests.
const testHtpasswd = "ci:$2y$04$berthinteropsaltsaltsOeLAD7TW9gR.TZxxyYTw6TLQs9R.kOvO\n"

// keychainFunc is a keychain answering through a function, recording the
// registries it was asked about.
type keychainFunc struct {
	mu    sync.Mutex
	asked []string
	f     func(registry string) authn.Authenticator
}

func (k *keychainFunc) Resolve(r authn.Resource) (authn.Authenticator, error) {
	k.mu.Lock()
	k.asked = append(k.asked, r.RegistryStr())
	k.mu.Unlock()
	if a := k.f(r.RegistryStr()); a != nil {
		return a, nil
	}
	return authn.Anonymous, nil
}

// basicMirror is a registry that challenges every request for basic
// credentials, refuses them all and records the Authorization headers it
// was sent.
type basicMirror struct {
	mu   sync.Mutex
	seen []string
}

func (m *basicMirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	if a := r.Header.Get("Authorization"); a != "" {
		m.seen = append(m.seen, a)
	}
	m.mu.Unlock()
	w.Header().Set("WWW-Authenticate", `Basic realm="mirror"`)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`)
}

func (m *basicMirror) headers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.seen...)
}

func basicHeader(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// startAuthRegistry serves berth's registry with basic auth ("ci").
func startAuthRegistry(t *testing.T) string {
	t.Helper()
	users, err := registry.ParseHtpasswd(strings.NewReader(testHtpasswd))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := registry.New(cs, filepath.Join(root, "registry"), registry.Options{Htpasswd: users})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return strings.TrimPrefix(hs.URL, "http://")
}

// TestWithAuth: per-call credentials reach the registry the reference
// names, for Resolve, the Resolved's Manifest and Blob, and Push; they are
// never sent to a mirror of it, which asks the keychain instead; the
// client WithAuth was called on keeps using the keychain.
func TestWithAuth(t *testing.T) {
	ctx := context.Background()
	origin := startAuthRegistry(t)
	mirror := &basicMirror{}
	ms := httptest.NewServer(mirror)
	t.Cleanup(ms.Close)
	mirrorHost := strings.TrimPrefix(ms.URL, "http://")

	good := &authn.Basic{Username: "ci", Password: "interop"}
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	src, _ := name.ParseReference(origin+"/private/app:v1", name.Insecure)
	if err := remote.Write(src, img, remote.WithAuth(good)); err != nil {
		t.Fatal(err)
	}

	kc := &keychainFunc{f: func(reg string) authn.Authenticator {
		if reg == mirrorHost {
			return &authn.Basic{Username: "mirror-user", Password: "mirror-secret"}
		}
		return nil // the origin: anonymous
	}}
	c := distribution.New(distribution.Options{Keychain: kc, Mirrors: map[string][]string{origin: {mirrorHost}}})
	ref, err := c.ParseReference(origin + "/private/app:v1")
	if err != nil {
		t.Fatal(err)
	}

	// The keychain alone has nothing for the origin.
	if _, err := c.Resolve(ctx, ref); !errdefs.Is(err, errdefs.Unauthorized) {
		t.Fatalf("resolve without credentials: %v (class %v), want unauthorized", err, errdefs.ClassOf(err))
	}
	kc.mu.Lock()
	kc.asked = nil
	kc.mu.Unlock()
	mirror.mu.Lock()
	mirror.seen = nil
	mirror.mu.Unlock()
	// Wrong per-call credentials are refused; they are not replaced by
	// the keychain's.
	if _, err := c.WithAuth(&authn.Basic{Username: "ci", Password: "wrong"}).Resolve(ctx, ref); !errdefs.Is(err, errdefs.Unauthorized) {
		t.Fatalf("resolve with a wrong password: %v (class %v), want unauthorized", err, errdefs.ClassOf(err))
	}

	wc := c.WithAuth(good)
	res, err := wc.Resolve(ctx, ref)
	if err != nil {
		t.Fatalf("resolve with per-call credentials: %v", err)
	}
	if res.Ref.Context().RegistryStr() != origin {
		t.Fatalf("resolved on %s, want the origin %s", res.Ref.Context().RegistryStr(), origin)
	}
	want, _ := img.Digest()
	if res.Descriptor.Digest != want {
		t.Fatalf("resolved %s, want %s", res.Descriptor.Digest, want)
	}
	if _, err := res.Manifest(ctx, want); err != nil {
		t.Fatalf("manifest by digest: %v", err)
	}
	ls, _ := img.Layers()
	ld, _ := ls[0].Digest()
	rc, err := res.Blob(ctx, ld)
	if err != nil {
		t.Fatalf("blob: %v", err)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatal(err)
	}
	if err := rc.Close(); err != nil {
		t.Fatal(err)
	}

	// The mirror was asked first, with the keychain's credentials only.
	seen := mirror.headers()
	if len(seen) == 0 {
		t.Fatal("the mirror was not asked with the keychain's credentials")
	}
	for _, h := range seen {
		if h != basicHeader("mirror-user", "mirror-secret") {
			t.Errorf("the mirror was sent %q; want only the keychain's credentials for it", h)
		}
	}
	for _, reg := range kc.asked {
		if reg == origin {
			t.Errorf("the keychain was asked about the origin %s although the call had credentials for it", origin)
		}
	}

	// Push: refused without credentials, done with them.
	dst, _ := c.ParseReference(origin + "/private/pushed:v1")
	if err := c.Push(ctx, dst, img, nil); !errdefs.Is(err, errdefs.Unauthorized) {
		t.Fatalf("push without credentials: %v (class %v), want unauthorized", err, errdefs.ClassOf(err))
	}
	if err := c.WithAuth(&authn.Basic{Username: "nobody", Password: "interop"}).Push(ctx, dst, img, nil); !errdefs.Is(err, errdefs.Unauthorized) {
		t.Fatalf("push as an unknown user: %v (class %v), want unauthorized", err, errdefs.ClassOf(err))
	}
	if _, err := remote.Head(dst, remote.WithAuth(good)); err == nil {
		t.Fatal("a refused push left a manifest")
	}
	if err := wc.Push(ctx, dst, img, nil); err != nil {
		t.Fatalf("push with per-call credentials: %v", err)
	}
	d, err := remote.Head(dst, remote.WithAuth(good))
	if err != nil || d.Digest != want {
		t.Fatalf("after push: %v %v, want %s", d, err, want)
	}
	// WithAuth(nil) is the keychain again.
	if _, err := wc.WithAuth(nil).Resolve(ctx, ref); !errdefs.Is(err, errdefs.Unauthorized) {
		t.Fatalf("WithAuth(nil): %v, want unauthorized", err)
	}
}

func TestAuthFromConfig(t *testing.T) {
	if a := distribution.AuthFromConfig(nil); a != nil {
		t.Fatalf("nil config: %v", a)
	}
	if a := distribution.AuthFromConfig(&mobyregistry.AuthConfig{ServerAddress: "example.com"}); a != nil {
		t.Fatalf("config without credentials: %v", a)
	}
	for _, c := range []struct {
		in   mobyregistry.AuthConfig
		want authn.AuthConfig
	}{
		{mobyregistry.AuthConfig{Username: "u", Password: "p", ServerAddress: "example.com"}, authn.AuthConfig{Username: "u", Password: "p"}},
		{mobyregistry.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("u:p"))}, authn.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("u:p"))}},
		{mobyregistry.AuthConfig{IdentityToken: "refresh"}, authn.AuthConfig{IdentityToken: "refresh"}},
		{mobyregistry.AuthConfig{RegistryToken: "bearer"}, authn.AuthConfig{RegistryToken: "bearer"}},
	} {
		a := distribution.AuthFromConfig(&c.in)
		if a == nil {
			t.Fatalf("%+v: nil authenticator", c.in)
		}
		got, err := a.Authorization()
		if err != nil || *got != c.want {
			t.Errorf("%+v: %+v %v, want %+v", c.in, got, err, c.want)
		}
	}
}
