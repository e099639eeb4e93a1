package image_test

// Interop tests of the image Service (pull, push, auth, retries, mirrors)
// against two registries on 127.0.0.1: berth's own server
// (internal/distribution/registry) and the CNCF Distribution reference
// registry (fixture.StartDistribution). Every registry is reached through
// a small reverse proxy that counts requests and can misbehave on purpose.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/distribution/registry"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/fixture"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/image/content"
	"github.com/berth-dev/berth/internal/image/snapshot"
)

// interopHtpasswd is one bcrypt entry (user "ci", password "interop", cost
// 4), a format both registries read.
const (
	interopUser     = "ci"
	interopPassword = "interop"
	interopHtpasswd = "ci:$2y$04$berthinteropsaltsaltsOeLAD7TW9gR.TZxxyYTw6TLQs9R.kOvO\n"
)

// interopRegistry is one registry under test, reached through a proxy.
type interopRegistry struct {
	kind     string // "berth" or "distribution"
	upstream string // host:port of the registry itself (pushes go here)
	host     string // host:port of the proxy in front of it (the Service uses this)
	proxy    *interopProxy
}

// interopProxy forwards to a registry, counts requests and lets a test
// take over some of them.
type interopProxy struct {
	next http.Handler
	mu   sync.Mutex
	hits map[string]int // "GET blob sha256:..." / "GET manifest v1" / ...
	// intercept, when set and returning true, has answered the request.
	intercept func(w http.ResponseWriter, r *http.Request, next http.Handler) bool
}

func (p *interopProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.hits[requestKey(r)]++
	icpt := p.intercept
	p.mu.Unlock()
	if icpt != nil && icpt(w, r, p.next) {
		return
	}
	p.next.ServeHTTP(w, r)
}

func (p *interopProxy) setIntercept(f func(w http.ResponseWriter, r *http.Request, next http.Handler) bool) {
	p.mu.Lock()
	p.intercept = f
	p.mu.Unlock()
}

// count sums the hits whose key has the prefix ("GET blob", "GET manifest").
func (p *interopProxy) count(prefix string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, v := range p.hits {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

func (p *interopProxy) reset() {
	p.mu.Lock()
	p.hits = map[string]int{}
	p.mu.Unlock()
}

// requestKey is "METHOD kind last-path-element", kind being blob,
// manifest, upload or other.
func requestKey(r *http.Request) string {
	path := r.URL.Path
	last := path[strings.LastIndexByte(path, '/')+1:]
	kind := "other"
	switch {
	case strings.Contains(path, "/blobs/uploads"):
		kind = "upload"
	case strings.Contains(path, "/blobs/"):
		kind = "blob"
	case strings.Contains(path, "/manifests/"):
		kind = "manifest"
	}
	return r.Method + " " + kind + " " + last
}

func newProxy(t *testing.T, upstream string) (string, *interopProxy) {
	t.Helper()
	u, err := url.Parse("http://" + upstream)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p := &interopProxy{next: rp, hits: map[string]int{}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), p
}

// startBerthRegistry serves berth's registry from a fresh root.
func startBerthRegistry(t *testing.T, opts registry.Options) string {
	t.Helper()
	root := t.TempDir()
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := registry.New(cs, filepath.Join(root, "registry"), opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return strings.TrimPrefix(hs.URL, "http://")
}

// interopRegistries starts both registries, with basic auth when auth is
// true (htpasswd user "ci", password "interop").
func interopRegistries(t *testing.T, auth bool) []*interopRegistry {
	t.Helper()
	var opts registry.Options
	htpasswd := ""
	if auth {
		htpasswd = filepath.Join(t.TempDir(), "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(interopHtpasswd), 0o600); err != nil {
			t.Fatal(err)
		}
		users, err := registry.ParseHtpasswd(strings.NewReader(interopHtpasswd))
		if err != nil {
			t.Fatal(err)
		}
		opts.Htpasswd = users
	}
	var out []*interopRegistry
	for _, r := range []struct{ kind, up string }{
		{"berth", startBerthRegistry(t, opts)},
		{"distribution", fixture.StartDistribution(t, htpasswd)},
	} {
		host, p := newProxy(t, r.up)
		out = append(out, &interopRegistry{kind: r.kind, upstream: r.up, host: host, proxy: p})
	}
	return out
}

// dockerConfig points DOCKER_CONFIG at a fresh directory whose config.json
// has an "auths" entry (user:password) for each host; no hosts gives an
// empty configuration, so the host's own ~/.docker never leaks in.
func dockerConfig(t *testing.T, user, password string, hosts ...string) {
	t.Helper()
	dir := t.TempDir()
	var entries []string
	for _, h := range hosts {
		auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
		entries = append(entries, fmt.Sprintf("%q: {\"auth\": %q}", h, auth))
	}
	cfg := "{\"auths\": {" + strings.Join(entries, ", ") + "}}\n"
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

// newInteropService opens a Service on a fresh root with its own bbolt DB.
func newInteropService(t *testing.T, opts distribution.Options) *image.Service {
	t.Helper()
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := image.New(image.Config{
		Root: root, DB: db, Registry: distribution.New(opts),
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// storesEmpty fails unless the service holds no blob and no snapshot.
func storesEmpty(t *testing.T, svc *image.Service) {
	t.Helper()
	ctx := context.Background()
	n := 0
	svc.Content().Walk(ctx, func(i content.Info) error { n++; t.Logf("blob left: %s", i.Digest); return nil })
	svc.Snapshots().Walk(ctx, func(i snapshot.Info) error { n++; t.Logf("snapshot left: %s", i.Key); return nil })
	if n > 0 {
		t.Fatalf("%d objects left in the stores", n)
	}
}

// interopImage builds a linux/amd64 image of four gzip layers (a few
// hundred KiB of pseudo-random, incompressible data each, directories, a
// whiteout), with Docker or OCI media types. seed makes distinct images.
func interopImage(t *testing.T, seed int64, oci bool) v1.Image {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	blob := func(n int) []byte {
		b := make([]byte, n)
		rng.Read(b)
		return b
	}
	layerMT := types.DockerLayer
	if oci {
		layerMT = types.OCILayer
	}
	specs := []map[string][]byte{
		{"etc/": nil, "etc/release": []byte(fmt.Sprintf("seed %d\n", seed)), "usr/": nil, "usr/lib/": nil, "usr/lib/big.so": blob(300 << 10)},
		{"usr/": nil, "usr/lib/": nil, "usr/lib/big.so": blob(200 << 10), "usr/share/": nil, "usr/share/data": blob(150 << 10)},
		{"usr/": nil, "usr/share/": nil, "usr/share/.wh.data": {}, "opt/": nil, "opt/app": blob(250 << 10)},
		{"opt/": nil, "opt/config": []byte("key=value\n"), "var/": nil, "var/cache": blob(120 << 10)},
	}
	img := empty.Image
	for _, files := range specs {
		var raw bytes.Buffer
		tw := tar.NewWriter(&raw)
		for _, n := range sortedKeys(files) {
			c := files[n]
			h := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}
			if strings.HasSuffix(n, "/") {
				h = &tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeDir}
			}
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if h.Typeflag == tar.TypeReg {
				tw.Write(c)
			}
		}
		tw.Close()
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		zw.Write(raw.Bytes())
		zw.Close()
		data := gz.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
			tarball.WithMediaType(layerMT))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/bin:/bin"}
	cf.Config.Labels = map[string]string{"org.berth.interop": fmt.Sprint(seed)}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	return img
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys) // parents before their children
	return keys
}

// pushRemote writes img to host/repo with go-containerregistry.
func pushRemote(t *testing.T, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

func remoteDigest(t *testing.T, ref string, opts ...remote.Option) v1.Hash {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r, opts...)
	if err != nil {
		t.Fatalf("head %s: %v", ref, err)
	}
	return d.Digest
}

func imageIDs(t *testing.T, img v1.Image) (id, manifest string, diffIDs []string) {
	t.Helper()
	c, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range cf.RootFS.DiffIDs {
		diffIDs = append(diffIDs, d.String())
	}
	return c.String(), m.String(), diffIDs
}

// checkPulled asserts a pull result and what Inspect says about it.
func checkPulled(t *testing.T, svc *image.Service, ref string, res *image.PullResult, wantID, wantDigest string, wantDiffIDs []string) {
	t.Helper()
	if res.ID.String() != wantID || res.Digest.String() != wantDigest {
		t.Fatalf("pull %s: id %s digest %s, want %s %s", ref, res.ID, res.Digest, wantID, wantDigest)
	}
	ins, err := svc.Inspect(context.Background(), ref)
	if err != nil {
		t.Fatalf("inspect %s: %v", ref, err)
	}
	if ins.ID != wantID || strings.Join(ins.RootFS.Layers, ",") != strings.Join(wantDiffIDs, ",") {
		t.Fatalf("inspect %s: id %s layers %v, want %s %v", ref, ins.ID, ins.RootFS.Layers, wantID, wantDiffIDs)
	}
	repo := ref[:strings.LastIndexByte(ref, ':')]
	found := false
	for _, d := range ins.RepoDigests {
		found = found || d == repo+"@"+wantDigest
	}
	if !found {
		t.Fatalf("inspect %s: repo digests %v lack %s@%s", ref, ins.RepoDigests, repo, wantDigest)
	}
}

// TestInteropPullPushRoundTrip pulls an image pushed by go-containerregistry
// into one registry, pushes it with Service.Push to the other, and pulls it
// from there into a fresh Service: IDs, manifest digests and layers agree.
func TestInteropPullPushRoundTrip(t *testing.T) {
	dockerConfig(t, "", "")
	regs := interopRegistries(t, false)
	ctx := context.Background()
	for i, from := range regs {
		to := regs[1-i]
		for _, oci := range []bool{false, true} {
			mt := "docker"
			if oci {
				mt = "oci"
			}
			t.Run(from.kind+"-to-"+to.kind+"-"+mt, func(t *testing.T) {
				img := interopImage(t, int64(10*i)+int64(len(mt)), oci)
				wantID, wantDigest, diffIDs := imageIDs(t, img)
				pushRemote(t, from.upstream+"/interop/app:v1", img)
				from.proxy.reset()

				src := from.host + "/interop/app:v1"
				svc := newInteropService(t, distribution.Options{})
				res, err := svc.Pull(ctx, src, image.PullOptions{})
				if err != nil {
					t.Fatalf("pull from %s: %v", from.kind, err)
				}
				checkPulled(t, svc, src, res, wantID, wantDigest, diffIDs)
				if n := from.proxy.count("GET blob"); n != 5 {
					t.Errorf("%d blob GETs for a 4-layer image, want 5 (config + layers)", n)
				}

				dst := to.host + "/copied/app:v2"
				if err := svc.Tag(ctx, src, dst); err != nil {
					t.Fatal(err)
				}
				d, err := svc.Push(ctx, dst, image.PushOptions{})
				if err != nil {
					t.Fatalf("push to %s: %v", to.kind, err)
				}
				if d.String() != wantDigest {
					t.Fatalf("pushed digest %s, want %s", d, wantDigest)
				}
				if got := remoteDigest(t, to.upstream+"/copied/app:v2"); got.String() != wantDigest {
					t.Fatalf("%s serves %s after the push, want %s", to.kind, got, wantDigest)
				}
				// A second push uploads nothing: every blob is there.
				to.proxy.reset()
				if _, err := svc.Push(ctx, dst, image.PushOptions{}); err != nil {
					t.Fatalf("second push: %v", err)
				}
				if n := to.proxy.count("PATCH upload") + to.proxy.count("PUT upload"); n != 0 {
					t.Errorf("second push uploaded %d blobs", n)
				}

				fresh := newInteropService(t, distribution.Options{})
				res2, err := fresh.Pull(ctx, dst, image.PullOptions{})
				if err != nil {
					t.Fatalf("pull back from %s: %v", to.kind, err)
				}
				checkPulled(t, fresh, dst, res2, wantID, wantDigest, diffIDs)
				// The pulled-back image removes and collects to nothing.
				if _, err := fresh.Remove(ctx, dst, image.RemoveOptions{}); err != nil {
					t.Fatal(err)
				}
				if _, err := fresh.GC(ctx); err != nil {
					t.Fatal(err)
				}
				storesEmpty(t, fresh)
			})
		}
	}
}

// TestInteropAuthDockerConfig uses credentials from a docker config.json
// (DOCKER_CONFIG, "auths"), as distribution.Options{} does through
// authn.DefaultKeychain: right ones pull and push, wrong or missing ones
// fail with an Unauthorized error and record nothing.
func TestInteropAuthDockerConfig(t *testing.T) {
	dockerConfig(t, "", "")
	regs := interopRegistries(t, true)
	ctx := context.Background()
	good := remote.WithAuth(&authn.Basic{Username: interopUser, Password: interopPassword})
	img := interopImage(t, 7, false)
	wantID, wantDigest, diffIDs := imageIDs(t, img)
	var hosts []string
	for _, r := range regs {
		pushRemote(t, r.upstream+"/private/app:v1", img, good)
		hosts = append(hosts, r.host)
	}
	for _, r := range regs {
		t.Run(r.kind, func(t *testing.T) {
			ref := r.host + "/private/app:v1"
			for _, c := range []struct{ name, user, password string }{
				{"wrong password", interopUser, "wrong"},
				{"unknown user", "nobody", interopPassword},
				{"no credentials", "", ""},
			} {
				if c.user == "" {
					dockerConfig(t, "", "")
				} else {
					dockerConfig(t, c.user, c.password, hosts...)
				}
				svc := newInteropService(t, distribution.Options{})
				_, err := svc.Pull(ctx, ref, image.PullOptions{})
				if !errdefs.Is(err, errdefs.Unauthorized) {
					t.Fatalf("%s: pull error %v (class %v), want unauthorized", c.name, err, errdefs.ClassOf(err))
				}
				if _, err := svc.Inspect(ctx, ref); !errdefs.Is(err, errdefs.NotFound) {
					t.Fatalf("%s: image recorded after a refused pull: %v", c.name, err)
				}
			}

			dockerConfig(t, interopUser, interopPassword, hosts...)
			svc := newInteropService(t, distribution.Options{})
			res, err := svc.Pull(ctx, ref, image.PullOptions{})
			if err != nil {
				t.Fatalf("pull with the right credentials: %v", err)
			}
			checkPulled(t, svc, ref, res, wantID, wantDigest, diffIDs)
			dst := r.host + "/private/pushed:v1"
			if err := svc.Tag(ctx, ref, dst); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Push(ctx, dst, image.PushOptions{}); err != nil {
				t.Fatalf("push with the right credentials: %v", err)
			}
			if got := remoteDigest(t, r.upstream+"/private/pushed:v1", good); got.String() != wantDigest {
				t.Fatalf("pushed %s, want %s", got, wantDigest)
			}

			// The same service, credentials changed under it: refused.
			dockerConfig(t, interopUser, "wrong", hosts...)
			dst2 := r.host + "/private/refused:v1"
			if err := svc.Tag(ctx, ref, dst2); err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Push(ctx, dst2, image.PushOptions{}); !errdefs.Is(err, errdefs.Unauthorized) {
				t.Fatalf("push with a wrong password: %v (class %v), want unauthorized", err, errdefs.ClassOf(err))
			}
		})
	}
}

// truncateLayer answers GETs of blob digest with the full Content-Length
// but only half the body, then drops the connection, while times > 0
// (times < 0: always).
func truncateLayer(digest string, times int) func(http.ResponseWriter, *http.Request, http.Handler) bool {
	var mu sync.Mutex
	return func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+digest) {
			return false
		}
		mu.Lock()
		if times == 0 {
			mu.Unlock()
			return false
		}
		if times > 0 {
			times--
		}
		mu.Unlock()
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			// Not a body to cut (a redirect, an error): pass it on.
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return true
		}
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection is cut mid-body
	}
}

// TestInteropTruncatedLayer cuts a layer's download halfway: once, the
// pull retries it and succeeds; every time, the pull fails and leaves
// nothing behind once garbage is collected.
func TestInteropTruncatedLayer(t *testing.T) {
	dockerConfig(t, "", "")
	regs := interopRegistries(t, false)
	ctx := context.Background()
	img := interopImage(t, 3, false)
	wantID, wantDigest, diffIDs := imageIDs(t, img)
	ls, _ := img.Layers()
	ld, _ := ls[2].Digest()
	for _, r := range regs {
		pushRemote(t, r.upstream+"/cut/app:v1", img)
		ref := r.host + "/cut/app:v1"
		t.Run(r.kind+"-once", func(t *testing.T) {
			r.proxy.reset()
			r.proxy.setIntercept(truncateLayer(ld.String(), 1))
			defer r.proxy.setIntercept(nil)
			svc := newInteropService(t, distribution.Options{})
			res, err := svc.Pull(ctx, ref, image.PullOptions{})
			if err != nil {
				t.Fatalf("pull with one truncated download: %v", err)
			}
			checkPulled(t, svc, ref, res, wantID, wantDigest, diffIDs)
			if n := r.proxy.count("GET blob " + ld.String()); n != 2 {
				t.Errorf("truncated layer fetched %d times, want 2", n)
			}
		})
		t.Run(r.kind+"-always", func(t *testing.T) {
			r.proxy.reset()
			r.proxy.setIntercept(truncateLayer(ld.String(), -1))
			defer r.proxy.setIntercept(nil)
			svc := newInteropService(t, distribution.Options{})
			_, err := svc.Pull(ctx, ref, image.PullOptions{})
			if err == nil {
				t.Fatal("pull succeeded with a layer that is always cut")
			}
			t.Logf("pull error: %v", err)
			failedCleanly(t, svc, ref)
			if n := r.proxy.count("GET blob " + ld.String()); n != 3 {
				t.Errorf("always-truncated layer fetched %d times, want 3 (two retries)", n)
			}
		})
	}
}

// failedCleanly asserts that a failed pull of ref recorded no image and
// that GC then leaves the stores empty.
func failedCleanly(t *testing.T, svc *image.Service, ref string) {
	t.Helper()
	ctx := context.Background()
	if _, err := svc.Inspect(ctx, ref); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("image recorded after a failed pull: %v", err)
	}
	if list, err := svc.List(ctx, image.ListFilters{}); err != nil || len(list) != 0 {
		t.Fatalf("images listed after a failed pull: %+v %v", list, err)
	}
	if _, err := svc.GC(ctx); err != nil {
		t.Fatal(err)
	}
	storesEmpty(t, svc)
}

// TestInteropMissingBlob pulls a manifest whose layer blob the registry
// no longer has: a NotFound error, nothing recorded, nothing left after GC.
func TestInteropMissingBlob(t *testing.T) {
	dockerConfig(t, "", "")
	regs := interopRegistries(t, false)
	ctx := context.Background()
	img := interopImage(t, 5, true)
	ls, _ := img.Layers()
	ld, _ := ls[1].Digest()
	for _, r := range regs {
		t.Run(r.kind, func(t *testing.T) {
			pushRemote(t, r.upstream+"/holes/app:v1", img)
			// Delete the layer blob behind the manifest's back.
			req, _ := http.NewRequest(http.MethodDelete, "http://"+r.upstream+"/v2/holes/app/blobs/"+ld.String(), nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusAccepted {
				t.Fatalf("DELETE blob: status %d", res.StatusCode)
			}
			ref := r.host + "/holes/app:v1"
			svc := newInteropService(t, distribution.Options{})
			_, err = svc.Pull(ctx, ref, image.PullOptions{})
			if !errdefs.Is(err, errdefs.NotFound) {
				t.Fatalf("pull with a missing blob: %v (class %v), want not found", err, errdefs.ClassOf(err))
			}
			if !strings.Contains(err.Error(), ld.String()) {
				t.Errorf("error does not name the missing blob %s: %v", ld, err)
			}
			failedCleanly(t, svc, ref)
		})
	}
}

// TestInteropMirror configures each registry as the other's mirror: a pull
// of an image the mirror has is served by it (the origin sees no request);
// an image only the origin has falls back to the origin.
func TestInteropMirror(t *testing.T) {
	dockerConfig(t, "", "")
	regs := interopRegistries(t, false)
	ctx := context.Background()
	for i, origin := range regs {
		mirror := regs[1-i]
		t.Run("origin-"+origin.kind+"-mirror-"+mirror.kind, func(t *testing.T) {
			cached := interopImage(t, int64(100+i), false)
			only := interopImage(t, int64(200+i), true)
			cID, cDigest, cDiff := imageIDs(t, cached)
			oID, oDigest, oDiff := imageIDs(t, only)
			cachedRepo := fmt.Sprintf("/library/cached%d:v1", i)
			onlyRepo := fmt.Sprintf("/library/only%d:v1", i)
			pushRemote(t, origin.upstream+cachedRepo, cached)
			pushRemote(t, mirror.upstream+cachedRepo, cached)
			pushRemote(t, origin.upstream+onlyRepo, only)
			origin.proxy.reset()
			mirror.proxy.reset()

			svc := newInteropService(t, distribution.Options{Mirrors: map[string][]string{origin.host: {mirror.host}}})
			ref := origin.host + cachedRepo
			res, err := svc.Pull(ctx, ref, image.PullOptions{})
			if err != nil {
				t.Fatalf("pull through the mirror: %v", err)
			}
			checkPulled(t, svc, ref, res, cID, cDigest, cDiff)
			if n := origin.proxy.count(""); n != 0 {
				t.Errorf("origin saw %d requests for an image the mirror has", n)
			}
			if n := mirror.proxy.count("GET blob"); n != 5 {
				t.Errorf("mirror served %d blobs, want 5", n)
			}

			origin.proxy.reset()
			mirror.proxy.reset()
			ref = origin.host + onlyRepo
			res, err = svc.Pull(ctx, ref, image.PullOptions{})
			if err != nil {
				t.Fatalf("pull falling back to the origin: %v", err)
			}
			checkPulled(t, svc, ref, res, oID, oDigest, oDiff)
			if n := mirror.proxy.count("GET manifest") + mirror.proxy.count("HEAD manifest"); n == 0 {
				t.Errorf("the mirror was not asked first")
			}
			if n := mirror.proxy.count("GET blob"); n != 0 {
				t.Errorf("mirror served %d blobs of an image it lacks", n)
			}
			if n := origin.proxy.count("GET blob"); n != 5 {
				t.Errorf("origin served %d blobs, want 5", n)
			}
		})
	}
}

// TestInteropAuthPerRequest passes credentials with each pull and push
// (PullOptions.Auth, PushOptions.Auth: the Engine API's X-Registry-Auth)
// while the keychain (an empty DOCKER_CONFIG) has none: right ones pull
// and push; wrong or missing ones fail with Unauthorized and leave nothing
// behind, locally or in the registry. The request's credentials override
// the keychain's for the registry named, and are not sent to its mirror.
func TestInteropAuthPerRequest(t *testing.T) {
	dockerConfig(t, "", "")
	regs := interopRegistries(t, true)
	ctx := context.Background()
	goodAuth := &authn.Basic{Username: interopUser, Password: interopPassword}
	good := remote.WithAuth(goodAuth)
	img := interopImage(t, 11, true)
	wantID, wantDigest, diffIDs := imageIDs(t, img)
	var hosts []string
	for _, r := range regs {
		pushRemote(t, r.upstream+"/private/app:v1", img, good)
		hosts = append(hosts, r.host)
	}
	refused := []struct {
		name string
		auth authn.Authenticator
	}{
		{"wrong password", &authn.Basic{Username: interopUser, Password: "wrong"}},
		{"unknown user", &authn.Basic{Username: "nobody", Password: interopPassword}},
		{"no credentials", nil},
	}
	for _, r := range regs {
		t.Run(r.kind, func(t *testing.T) {
			dockerConfig(t, "", "")
			ref := r.host + "/private/app:v1"
			for _, c := range refused {
				svc := newInteropService(t, distribution.Options{})
				_, err := svc.Pull(ctx, ref, image.PullOptions{Auth: c.auth})
				if !errdefs.Is(err, errdefs.Unauthorized) {
					t.Fatalf("%s: pull error %v (class %v), want unauthorized", c.name, err, errdefs.ClassOf(err))
				}
				failedCleanly(t, svc, ref)
			}

			svc := newInteropService(t, distribution.Options{})
			res, err := svc.Pull(ctx, ref, image.PullOptions{Auth: goodAuth})
			if err != nil {
				t.Fatalf("pull with the request's credentials: %v", err)
			}
			checkPulled(t, svc, ref, res, wantID, wantDigest, diffIDs)

			dst := r.host + "/private/pushed:v1"
			if err := svc.Tag(ctx, ref, dst); err != nil {
				t.Fatal(err)
			}
			for _, c := range refused {
				if _, err := svc.Push(ctx, dst, image.PushOptions{Auth: c.auth}); !errdefs.Is(err, errdefs.Unauthorized) {
					t.Fatalf("%s: push error %v (class %v), want unauthorized", c.name, err, errdefs.ClassOf(err))
				}
			}
			// Nothing reached the registry, nothing changed locally.
			rr, _ := name.ParseReference(r.upstream+"/private/pushed:v1", name.Insecure)
			if _, err := remote.Head(rr, good); err == nil {
				t.Fatal("a refused push left a manifest in the registry")
			}
			ins, err := svc.Inspect(ctx, dst)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range ins.RepoDigests {
				if strings.HasPrefix(d, r.host+"/private/pushed@") {
					t.Fatalf("a refused push recorded the repo digest %s", d)
				}
			}
			if _, err := svc.Push(ctx, dst, image.PushOptions{Auth: goodAuth}); err != nil {
				t.Fatalf("push with the request's credentials: %v", err)
			}
			if got := remoteDigest(t, r.upstream+"/private/pushed:v1", good); got.String() != wantDigest {
				t.Fatalf("pushed %s, want %s", got, wantDigest)
			}

			// The request's credentials come before the keychain's: right
			// ones win over a wrong keychain entry, and wrong ones are not
			// rescued by a right keychain entry.
			dockerConfig(t, interopUser, "wrong", hosts...)
			fresh := newInteropService(t, distribution.Options{})
			if _, err := fresh.Pull(ctx, ref, image.PullOptions{Auth: goodAuth}); err != nil {
				t.Fatalf("pull with right request credentials over a wrong keychain: %v", err)
			}
			dockerConfig(t, interopUser, interopPassword, hosts...)
			fresh = newInteropService(t, distribution.Options{})
			if _, err := fresh.Pull(ctx, ref, image.PullOptions{Auth: refused[0].auth}); !errdefs.Is(err, errdefs.Unauthorized) {
				t.Fatalf("pull with wrong request credentials over a right keychain: %v, want unauthorized", err)
			}
			failedCleanly(t, fresh, ref)
		})
	}

	// Mirrors never see the request's credentials: each registry mirrors
	// the other; the mirror refuses (anonymous), the origin serves.
	dockerConfig(t, "", "")
	for i, origin := range regs {
		mirror := regs[1-i]
		t.Run("mirror-"+mirror.kind+"-of-"+origin.kind, func(t *testing.T) {
			var mu sync.Mutex
			var sent []string
			mirror.proxy.setIntercept(func(w http.ResponseWriter, r *http.Request, next http.Handler) bool {
				if a := r.Header.Get("Authorization"); a != "" {
					mu.Lock()
					sent = append(sent, a)
					mu.Unlock()
				}
				return false
			})
			defer mirror.proxy.setIntercept(nil)
			mirror.proxy.reset()
			origin.proxy.reset()
			svc := newInteropService(t, distribution.Options{Mirrors: map[string][]string{origin.host: {mirror.host}}})
			ref := origin.host + "/private/app:v1"
			res, err := svc.Pull(ctx, ref, image.PullOptions{Auth: goodAuth})
			if err != nil {
				t.Fatalf("pull through a refusing mirror: %v", err)
			}
			checkPulled(t, svc, ref, res, wantID, wantDigest, diffIDs)
			if mirror.proxy.count("") == 0 {
				t.Error("the mirror was not asked first")
			}
			if n := origin.proxy.count("GET blob"); n != 5 {
				t.Errorf("origin served %d blobs, want 5", n)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(sent) != 0 {
				t.Errorf("the mirror was sent credentials: %q", sent)
			}
		})
	}
}
