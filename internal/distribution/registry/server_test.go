package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/image/content"
)

type testRegistry struct {
	t     *testing.T
	srv   *Server
	http  *httptest.Server
	store *content.Store
	root  string
	user  string
	pass  string
}

func newTestRegistry(t *testing.T, opts Options) *testRegistry {
	t.Helper()
	return openTestRegistry(t, t.TempDir(), opts)
}

// openTestRegistry serves a registry over root/content and root/registry.
func openTestRegistry(t *testing.T, root string, opts Options) *testRegistry {
	t.Helper()
	cs, err := content.Open(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cs, filepath.Join(root, "registry"), opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &testRegistry{t: t, srv: srv, http: hs, store: cs, root: root}
}

type resp struct {
	*http.Response
	body []byte
}

func (r resp) errorCode() string {
	var eb struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(r.body, &eb) != nil || len(eb.Errors) == 0 {
		return ""
	}
	return eb.Errors[0].Code
}

func (tr *testRegistry) do(method, path string, body []byte, hdr ...string) resp {
	tr.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	u := path
	if !strings.HasPrefix(u, "http") {
		u = tr.http.URL + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		tr.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if tr.user != "" {
		req.SetBasicAuth(tr.user, tr.pass)
	}
	res, err := tr.http.Client().Do(req)
	if err != nil {
		tr.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res, b}
}

func (tr *testRegistry) expect(r resp, status int, code string) {
	tr.t.Helper()
	if r.StatusCode != status {
		tr.t.Fatalf("%s %s: status %d, want %d (body %s)", r.Request.Method, r.Request.URL, r.StatusCode, status, r.body)
	}
	if code != "" && r.Request.Method != http.MethodHead && r.errorCode() != code {
		tr.t.Fatalf("%s %s: error code %q, want %q (body %s)", r.Request.Method, r.Request.URL, r.errorCode(), code, r.body)
	}
}

func randBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// pushBlob uploads b monolithically and returns its descriptor.
func (tr *testRegistry) pushBlob(repo string, b []byte, mediaType string) ocispec.Descriptor {
	tr.t.Helper()
	d := digest.FromBytes(b)
	r := tr.do("POST", "/v2/"+repo+"/blobs/uploads/?digest="+string(d), b)
	tr.expect(r, http.StatusCreated, "")
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
}

func (tr *testRegistry) putManifest(repo, ref, mediaType string, v any) (ocispec.Descriptor, resp) {
	tr.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tr.t.Fatal(err)
	}
	r := tr.do("PUT", "/v2/"+repo+"/manifests/"+ref, b, "Content-Type", mediaType)
	return ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}, r
}

// pushImage uploads a config and one layer and tags an OCI manifest.
func (tr *testRegistry) pushImage(repo, tag string) ocispec.Descriptor {
	tr.t.Helper()
	cfg := tr.pushBlob(repo, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`), ocispec.MediaTypeImageConfig)
	layer := tr.pushBlob(repo, randBytes(tr.t, 1000), ocispec.MediaTypeImageLayerGzip)
	desc, r := tr.putManifest(repo, tag, ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{layer},
	})
	tr.expect(r, http.StatusCreated, "")
	return desc
}

func TestBase(t *testing.T) {
	tr := newTestRegistry(t, Options{})
	for _, m := range []string{"GET", "HEAD"} {
		r := tr.do(m, "/v2/", nil)
		tr.expect(r, 200, "")
		if r.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Fatalf("API version header %q", r.Header.Get("Docker-Distribution-API-Version"))
		}
	}
	tr.expect(tr.do("GET", "/v3/", nil), 404, "NOT_FOUND")
	tr.expect(tr.do("GET", "/v2/foo/bar", nil), 404, "NOT_FOUND")
	tr.expect(tr.do("POST", "/v2/foo/manifests/latest", nil), 405, "UNSUPPORTED")
}

func TestParseRoute(t *testing.T) {
	for _, c := range []struct {
		path string
		want route
	}{
		{"/v2/", route{kind: routeBase}},
		{"/v2", route{kind: routeBase}},
		{"/v2/_catalog", route{kind: routeCatalog}},
		{"/v2/a/b/c/tags/list", route{kind: routeTags, name: "a/b/c"}},
		{"/v2/library/busybox/manifests/latest", route{kind: routeManifest, name: "library/busybox", ref: "latest"}},
		{"/v2/a/blobs/sha256:x", route{kind: routeBlob, name: "a", ref: "sha256:x"}},
		{"/v2/a/blobs/uploads/", route{kind: routeUploadStart, name: "a"}},
		{"/v2/a/blobs/uploads", route{kind: routeUploadStart, name: "a"}},
		{"/v2/a/b/blobs/uploads/123", route{kind: routeUpload, name: "a/b", ref: "123"}},
		{"/v2/a/referrers/sha256:x", route{kind: routeReferrers, name: "a", ref: "sha256:x"}},
		// Names may themselves contain endpoint words.
		{"/v2/blobs/manifests/manifests/tags", route{kind: routeManifest, name: "blobs/manifests", ref: "tags"}},
		{"/v2/x/blobs/uploads/blobs/sha256:x", route{kind: routeBlob, name: "x/blobs/uploads", ref: "sha256:x"}},
		{"/v2/a/manifests/", route{}},
		{"/v2/a", route{}},
	} {
		if got := parseRoute(c.path); got != c.want {
			t.Errorf("parseRoute(%q) = %+v, want %+v", c.path, got, c.want)
		}
	}
}

func TestNames(t *testing.T) {
	tr := newTestRegistry(t, Options{})
	for _, name := range []string{"a/b/c", "library/busybox", "my-app_1.x", "a__b", "a---b/c.d"} {
		tr.pushImage(name, "v1")
		tr.expect(tr.do("GET", "/v2/"+name+"/manifests/v1", nil), 200, "")
	}
	for _, name := range []string{"Upper", "a//b", "-a", "a-", "a/_b", "a..b", strings.Repeat("a", 256), "a/../b"} {
		tr.expect(tr.do("GET", "/v2/"+name+"/tags/list", nil), 400, "NAME_INVALID")
	}
}

func TestMonolithicUpload(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t, Options{})
	b := randBytes(t, 5000)
	d := digest.FromBytes(b)
	r := tr.do("POST", "/v2/repo/blobs/uploads/?digest="+string(d), b)
	tr.expect(r, 201, "")
	if r.Header.Get("Location") != "/v2/repo/blobs/"+string(d) || r.Header.Get("Docker-Content-Digest") != string(d) {
		t.Fatalf("headers %v", r.Header)
	}
	r = tr.do("HEAD", "/v2/repo/blobs/"+string(d), nil)
	tr.expect(r, 200, "")
	if r.ContentLength != 5000 || r.Header.Get("Docker-Content-Digest") != string(d) || len(r.body) != 0 {
		t.Fatalf("HEAD: length %d, headers %v", r.ContentLength, r.Header)
	}
	r = tr.do("GET", "/v2/repo/blobs/"+string(d), nil)
	tr.expect(r, 200, "")
	if !bytes.Equal(r.body, b) {
		t.Fatal("GET returned other bytes")
	}

	// Wrong digest: refused, nothing stored.
	b2 := randBytes(t, 100)
	wrong := digest.FromString("other")
	tr.expect(tr.do("POST", "/v2/repo/blobs/uploads/?digest="+string(wrong), b2), 400, "DIGEST_INVALID")
	tr.expect(tr.do("HEAD", "/v2/repo/blobs/"+string(wrong), nil), 404, "")
	if tr.store.Exists(digest.FromBytes(b2)) || tr.store.Exists(wrong) {
		t.Fatal("mismatched upload stored")
	}
	// Claiming an existing blob's digest with other bytes: refused too.
	tr.expect(tr.do("POST", "/v2/other/blobs/uploads/?digest="+string(d), b2), 400, "DIGEST_INVALID")
	tr.expect(tr.do("HEAD", "/v2/other/blobs/"+string(d), nil), 404, "")
	// Existing blob, right bytes: linked without rewriting.
	tr.expect(tr.do("POST", "/v2/other/blobs/uploads/?digest="+string(d), b), 201, "")
	tr.expect(tr.do("HEAD", "/v2/other/blobs/"+string(d), nil), 200, "")
	// Malformed digests.
	for _, bad := range []string{"sha256:xyz", "sha512:" + strings.Repeat("a", 128), "sha256:../../x", ""} {
		tr.expect(tr.do("POST", "/v2/repo/blobs/uploads/?digest="+url.QueryEscape(bad), b2), 400, "DIGEST_INVALID")
		if !strings.Contains(bad, "/") {
			tr.expect(tr.do("GET", "/v2/repo/blobs/"+url.PathEscape(bad)+"x", nil), 400, "DIGEST_INVALID")
		}
	}
	// A digest with slashes is not a blob route at all.
	tr.expect(tr.do("GET", "/v2/repo/blobs/sha256:..%2F..%2Fx", nil), 404, "NOT_FOUND")
	if ing, _ := tr.store.ListIngests(ctx); len(ing) != 0 {
		t.Fatalf("ingests left: %+v", ing)
	}
}

func TestChunkedUpload(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t, Options{})
	b := randBytes(t, 30000)
	d := digest.FromBytes(b)

	r := tr.do("POST", "/v2/a/b/blobs/uploads/", nil)
	tr.expect(r, 202, "")
	loc := r.Header.Get("Location")
	id := r.Header.Get("Docker-Upload-UUID")
	if loc != "/v2/a/b/blobs/uploads/"+id || r.Header.Get("Range") != "0-0" {
		t.Fatalf("start headers %v", r.Header)
	}

	r = tr.do("PATCH", loc, b[:10000], "Content-Range", "0-9999", "Content-Type", "application/octet-stream")
	tr.expect(r, 202, "")
	if r.Header.Get("Range") != "0-9999" || r.Header.Get("Location") != loc {
		t.Fatalf("patch headers %v", r.Header)
	}
	// Out of order: 416 with the current range.
	r = tr.do("PATCH", loc, b[20000:], "Content-Range", "20000-29999")
	tr.expect(r, 416, "RANGE_INVALID")
	if r.Header.Get("Range") != "0-9999" {
		t.Fatalf("416 Range %q", r.Header.Get("Range"))
	}
	tr.expect(tr.do("PATCH", loc, b[10000:20000], "Content-Range", "10000-20000"), 400, "BLOB_UPLOAD_INVALID")
	tr.expect(tr.do("PATCH", loc, b[10000:20000], "Content-Range", "garbage"), 400, "BLOB_UPLOAD_INVALID")
	// Status.
	r = tr.do("GET", loc, nil)
	tr.expect(r, 204, "")
	if r.Header.Get("Range") != "0-9999" {
		t.Fatalf("status Range %q", r.Header.Get("Range"))
	}
	// Streamed chunk without Content-Range.
	tr.expect(tr.do("PATCH", loc, b[10000:20000]), 202, "")
	// The blob is not visible before the PUT.
	tr.expect(tr.do("HEAD", "/v2/a/b/blobs/"+string(d), nil), 404, "")
	// A PUT without a digest is refused and keeps the session.
	tr.expect(tr.do("PUT", loc, nil), 400, "DIGEST_INVALID")
	// Final chunk with the PUT.
	r = tr.do("PUT", loc+"?digest="+string(d), b[20000:], "Content-Range", "20000-29999")
	tr.expect(r, 201, "")
	if r.Header.Get("Docker-Content-Digest") != string(d) || r.Header.Get("Location") != "/v2/a/b/blobs/"+string(d) {
		t.Fatalf("put headers %v", r.Header)
	}
	r = tr.do("GET", "/v2/a/b/blobs/"+string(d), nil)
	tr.expect(r, 200, "")
	if !bytes.Equal(r.body, b) {
		t.Fatal("chunked blob differs")
	}
	tr.expect(tr.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	tr.expect(tr.do("PATCH", loc, b), 404, "BLOB_UPLOAD_UNKNOWN")
	if ing, _ := tr.store.ListIngests(ctx); len(ing) != 0 {
		t.Fatalf("ingests left: %+v", ing)
	}

	// POST + PUT with the whole body (no PATCH).
	b2 := randBytes(t, 123)
	r = tr.do("POST", "/v2/a/b/blobs/uploads/", nil)
	r = tr.do("PUT", r.Header.Get("Location")+"?digest="+string(digest.FromBytes(b2)), b2)
	tr.expect(r, 201, "")
}

func TestUploadDigestMismatchStoresNothing(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t, Options{})
	b := randBytes(t, 4096)
	r := tr.do("POST", "/v2/repo/blobs/uploads/", nil)
	loc := r.Header.Get("Location")
	tr.expect(tr.do("PATCH", loc, b), 202, "")
	wrong := digest.FromString("not it")
	tr.expect(tr.do("PUT", loc+"?digest="+string(wrong), nil), 400, "DIGEST_INVALID")
	tr.expect(tr.do("HEAD", "/v2/repo/blobs/"+string(wrong), nil), 404, "")
	tr.expect(tr.do("HEAD", "/v2/repo/blobs/"+string(digest.FromBytes(b)), nil), 404, "")
	n := 0
	tr.store.Walk(ctx, func(content.Info) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d blobs stored", n)
	}
	if ing, _ := tr.store.ListIngests(ctx); len(ing) != 0 {
		t.Fatalf("ingests left: %+v", ing)
	}
	tr.expect(tr.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
}

func TestUploadCancelAndIsolation(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t, Options{})
	r := tr.do("POST", "/v2/one/blobs/uploads/", nil)
	loc, id := r.Header.Get("Location"), r.Header.Get("Docker-Upload-UUID")
	tr.expect(tr.do("PATCH", loc, randBytes(t, 10)), 202, "")
	// Another repository cannot touch the session.
	tr.expect(tr.do("GET", "/v2/two/blobs/uploads/"+id, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	tr.expect(tr.do("GET", "/v2/one/blobs/uploads/not-a-uuid", nil), 404, "BLOB_UPLOAD_UNKNOWN")
	tr.expect(tr.do("DELETE", loc, nil), 204, "")
	tr.expect(tr.do("GET", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	tr.expect(tr.do("DELETE", loc, nil), 404, "BLOB_UPLOAD_UNKNOWN")
	if ing, _ := tr.store.ListIngests(ctx); len(ing) != 0 {
		t.Fatalf("ingests left: %+v", ing)
	}
	// Prune removes stale sessions.
	r = tr.do("POST", "/v2/one/blobs/uploads/", nil)
	tr.expect(tr.do("PATCH", r.Header.Get("Location"), randBytes(t, 10)), 202, "")
	if n, err := tr.srv.PruneUploads(ctx, 0); err != nil || n != 1 {
		t.Fatalf("prune = %d, %v", n, err)
	}
	tr.expect(tr.do("GET", r.Header.Get("Location"), nil), 404, "BLOB_UPLOAD_UNKNOWN")
}

func TestBlobReadsAndDelete(t *testing.T) {
	tr := newTestRegistry(t, Options{})
	b := randBytes(t, 1000)
	desc := tr.pushBlob("repo", b, "")
	path := "/v2/repo/blobs/" + string(desc.Digest)
	r := tr.do("GET", path, nil, "Range", "bytes=10-19")
	tr.expect(r, 206, "")
	if !bytes.Equal(r.body, b[10:20]) || r.Header.Get("Content-Range") != "bytes 10-19/1000" {
		t.Fatalf("range read: %q %v", r.body, r.Header)
	}
	tr.expect(tr.do("GET", path, nil, "Range", "bytes=2000-"), 416, "")
	// Other repositories do not see it.
	tr.expect(tr.do("GET", "/v2/elsewhere/blobs/"+string(desc.Digest), nil), 404, "BLOB_UNKNOWN")
	tr.expect(tr.do("GET", "/v2/repo/blobs/"+string(digest.FromString("x")), nil), 404, "BLOB_UNKNOWN")
	tr.expect(tr.do("HEAD", "/v2/repo/blobs/"+string(digest.FromString("x")), nil), 404, "")
	tr.expect(tr.do("DELETE", path, nil), 202, "")
	tr.expect(tr.do("GET", path, nil), 404, "BLOB_UNKNOWN")
	tr.expect(tr.do("DELETE", path, nil), 404, "BLOB_UNKNOWN")
}

func TestCrossRepoMount(t *testing.T) {
	tr := newTestRegistry(t, Options{})
	desc := tr.pushBlob("src/repo", randBytes(t, 100), "")
	r := tr.do("POST", "/v2/dst/blobs/uploads/?mount="+string(desc.Digest)+"&from=src/repo", nil)
	tr.expect(r, 201, "")
	if r.Header.Get("Location") != "/v2/dst/blobs/"+string(desc.Digest) || r.Header.Get("Docker-Content-Digest") != string(desc.Digest) {
		t.Fatalf("mount headers %v", r.Header)
	}
	tr.expect(tr.do("HEAD", "/v2/dst/blobs/"+string(desc.Digest), nil), 200, "")
	// Unknown blob or repository: a normal session instead.
	for _, q := range []string{
		"?mount=" + string(digest.FromString("missing")) + "&from=src/repo",
		"?mount=" + string(desc.Digest) + "&from=nowhere",
		"?mount=" + string(desc.Digest),
	} {
		r = tr.do("POST", "/v2/dst2/blobs/uploads/"+q, nil)
		tr.expect(r, 202, "")
		if r.Header.Get("Docker-Upload-UUID") == "" {
			t.Fatalf("no session for %s", q)
		}
	}
	tr.expect(tr.do("HEAD", "/v2/dst2/blobs/"+string(desc.Digest), nil), 404, "")
	tr.expect(tr.do("POST", "/v2/dst/blobs/uploads/?mount=bad&from=src/repo", nil), 400, "DIGEST_INVALID")
}

func TestManifests(t *testing.T) {
	tr := newTestRegistry(t, Options{})
	cfg := tr.pushBlob("app", []byte(`{"os":"linux"}`), "application/vnd.docker.container.image.v1+json")
	layer := tr.pushBlob("app", randBytes(t, 300), "application/vnd.docker.image.rootfs.diff.tar.gzip")
	docker := map[string]any{
		"schemaVersion": 2, "mediaType": mediaTypeDockerManifest,
		"config": cfg, "layers": []ocispec.Descriptor{layer},
	}
	md, r := tr.putManifest("app", "v1", mediaTypeDockerManifest, docker)
	tr.expect(r, 201, "")
	if r.Header.Get("Docker-Content-Digest") != string(md.Digest) || r.Header.Get("Location") != "/v2/app/manifests/"+string(md.Digest) {
		t.Fatalf("put headers %v", r.Header)
	}
	for _, ref := range []string{"v1", string(md.Digest)} {
		r = tr.do("GET", "/v2/app/manifests/"+ref, nil)
		tr.expect(r, 200, "")
		if r.Header.Get("Content-Type") != mediaTypeDockerManifest || r.Header.Get("Docker-Content-Digest") != string(md.Digest) ||
			digest.FromBytes(r.body) != md.Digest {
			t.Fatalf("GET %s: %v", ref, r.Header)
		}
		r = tr.do("HEAD", "/v2/app/manifests/"+ref, nil)
		tr.expect(r, 200, "")
		if r.ContentLength != md.Size || r.Header.Get("Content-Type") != mediaTypeDockerManifest {
			t.Fatalf("HEAD %s: %v", ref, r.Header)
		}
	}
	tr.expect(tr.do("GET", "/v2/app/manifests/nope", nil), 404, "MANIFEST_UNKNOWN")
	tr.expect(tr.do("HEAD", "/v2/app/manifests/nope", nil), 404, "")
	tr.expect(tr.do("GET", "/v2/app/manifests/"+string(digest.FromString("x")), nil), 404, "MANIFEST_UNKNOWN")
	tr.expect(tr.do("GET", "/v2/other/manifests/v1", nil), 404, "MANIFEST_UNKNOWN")

	// Missing blobs.
	missing := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("missing"), Size: 7}
	_, r = tr.putManifest("app", "bad", ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: cfg, Layers: []ocispec.Descriptor{layer, missing},
	})
	tr.expect(r, 400, "MANIFEST_BLOB_UNKNOWN")
	// A blob of another repository does not count.
	other := tr.pushBlob("elsewhere", randBytes(t, 10), ocispec.MediaTypeImageLayerGzip)
	_, r = tr.putManifest("app", "bad", ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, Config: cfg, Layers: []ocispec.Descriptor{other},
	})
	tr.expect(r, 400, "MANIFEST_BLOB_UNKNOWN")
	// Wrong size.
	bad := layer
	bad.Size++
	_, r = tr.putManifest("app", "bad", ocispec.MediaTypeImageManifest, ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2}, Config: cfg, Layers: []ocispec.Descriptor{bad},
	})
	tr.expect(r, 400, "MANIFEST_INVALID")
	tr.expect(tr.do("GET", "/v2/app/manifests/bad", nil), 404, "MANIFEST_UNKNOWN")
	// Digest reference that does not match the body.
	body, _ := json.Marshal(docker)
	tr.expect(tr.do("PUT", "/v2/app/manifests/"+string(digest.FromString("x")), body, "Content-Type", mediaTypeDockerManifest), 400, "DIGEST_INVALID")
	tr.expect(tr.do("PUT", "/v2/app/manifests/"+string(md.Digest), body, "Content-Type", mediaTypeDockerManifest), 201, "")
	// Content-Type that contradicts mediaType, bad JSON, bad tag, schema 1.
	tr.expect(tr.do("PUT", "/v2/app/manifests/x", body, "Content-Type", ocispec.MediaTypeImageManifest), 400, "MANIFEST_INVALID")
	tr.expect(tr.do("PUT", "/v2/app/manifests/x", []byte("{"), "Content-Type", ocispec.MediaTypeImageManifest), 400, "MANIFEST_INVALID")
	tr.expect(tr.do("PUT", "/v2/app/manifests/-x", body, "Content-Type", mediaTypeDockerManifest), 400, "TAG_INVALID")
	tr.expect(tr.do("PUT", "/v2/app/manifests/x", []byte(`{"schemaVersion":1,"name":"app","tag":"x","fsLayers":[]}`),
		"Content-Type", "application/vnd.docker.distribution.manifest.v1+prettyjws"), 400, "MANIFEST_INVALID")
	tr.expect(tr.do("PUT", "/v2/app/manifests/x", bytes.Repeat([]byte(" "), maxManifestSize+1), "Content-Type", mediaTypeDockerManifest), 400, "MANIFEST_INVALID")

	// An OCI index (and a Docker list) over manifests of the repository.
	img := tr.pushImage("app", "img")
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{md, img}}
	id, r := tr.putManifest("app", "multi", ocispec.MediaTypeImageIndex, idx)
	tr.expect(r, 201, "")
	r = tr.do("GET", "/v2/app/manifests/multi", nil)
	tr.expect(r, 200, "")
	if r.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex || digest.FromBytes(r.body) != id.Digest {
		t.Fatalf("index GET: %v", r.Header)
	}
	list := map[string]any{"schemaVersion": 2, "mediaType": mediaTypeDockerList, "manifests": []ocispec.Descriptor{md}}
	_, r = tr.putManifest("app", "list", mediaTypeDockerList, list)
	tr.expect(r, 201, "")
	idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("child"), Size: 5})
	_, r = tr.putManifest("app", "broken", ocispec.MediaTypeImageIndex, idx)
	tr.expect(r, 400, "MANIFEST_BLOB_UNKNOWN")

	// Delete a tag, then a manifest with every tag naming it.
	tr.expect(tr.do("DELETE", "/v2/app/manifests/multi", nil), 202, "")
	tr.expect(tr.do("GET", "/v2/app/manifests/multi", nil), 404, "MANIFEST_UNKNOWN")
	tr.expect(tr.do("GET", "/v2/app/manifests/"+string(id.Digest), nil), 200, "")
	tr.expect(tr.do("DELETE", "/v2/app/manifests/multi", nil), 404, "MANIFEST_UNKNOWN")
	_, r = tr.putManifest("app", "v1-again", mediaTypeDockerManifest, docker)
	tr.expect(r, 201, "")
	tr.expect(tr.do("DELETE", "/v2/app/manifests/"+string(md.Digest), nil), 202, "")
	tr.expect(tr.do("GET", "/v2/app/manifests/"+string(md.Digest), nil), 404, "MANIFEST_UNKNOWN")
	r = tr.do("GET", "/v2/app/tags/list", nil)
	var tl struct{ Tags []string }
	json.Unmarshal(r.body, &tl)
	if strings.Join(tl.Tags, ",") != "img,list" {
		t.Fatalf("tags after delete: %v", tl.Tags)
	}
}

func TestTagsPagination(t *testing.T) {
	tr := newTestRegistry(t, Options{})
	img := tr.pushImage("pag", "t00")
	body := tr.do("GET", "/v2/pag/manifests/t00", nil).body
	var want []string
	for i := 0; i < 10; i++ {
		tag := fmt.Sprintf("t%02d", i)
		want = append(want, tag)
		tr.expect(tr.do("PUT", "/v2/pag/manifests/"+tag, body, "Content-Type", img.MediaType), 201, "")
	}
	list := func(path string) ([]string, string) {
		r := tr.do("GET", path, nil)
		tr.expect(r, 200, "")
		var tl struct {
			Name string
			Tags []string
		}
		if err := json.Unmarshal(r.body, &tl); err != nil || tl.Name != "pag" || tl.Tags == nil {
			t.Fatalf("tags list %s: %s", path, r.body)
		}
		return tl.Tags, r.Header.Get("Link")
	}
	all, link := list("/v2/pag/tags/list")
	if strings.Join(all, ",") != strings.Join(want, ",") || link != "" {
		t.Fatalf("all tags %v link %q", all, link)
	}
	var got []string
	path := "/v2/pag/tags/list?n=3"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		page, link := list(path)
		if len(page) > 3 {
			t.Fatalf("page of %d", len(page))
		}
		got = append(got, page...)
		path = ""
		if link != "" {
			if !strings.HasSuffix(link, `>; rel="next"`) {
				t.Fatalf("Link %q", link)
			}
			path = strings.TrimSuffix(strings.TrimPrefix(link, "<"), `>; rel="next"`)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("paginated %v", got)
	}
	if page, _ := list("/v2/pag/tags/list?last=t07"); strings.Join(page, ",") != "t08,t09" {
		t.Fatalf("last=t07: %v", page)
	}
	if page, link := list("/v2/pag/tags/list?n=0"); len(page) != 0 || link != "" {
		t.Fatalf("n=0: %v %q", page, link)
	}
	if page, link := list("/v2/pag/tags/list?n=10"); len(page) != 10 || link != "" {
		t.Fatalf("n=10: %v %q", page, link)
	}
	tr.expect(tr.do("GET", "/v2/pag/tags/list?n=-1", nil), 400, "PAGINATION_NUMBER_INVALID")
	tr.expect(tr.do("GET", "/v2/pag/tags/list?n=x", nil), 400, "PAGINATION_NUMBER_INVALID")
	tr.expect(tr.do("GET", "/v2/unknown/tags/list", nil), 404, "NAME_UNKNOWN")

	// Catalog.
	tr.pushImage("a/one", "x")
	tr.pushImage("z", "x")
	r := tr.do("GET", "/v2/_catalog", nil)
	tr.expect(r, 200, "")
	if string(r.body) != `{"repositories":["a/one","pag","z"]}` {
		t.Fatalf("catalog %s", r.body)
	}
	r = tr.do("GET", "/v2/_catalog?n=2", nil)
	if string(r.body) != `{"repositories":["a/one","pag"]}` || r.Header.Get("Link") != `</v2/_catalog?last=pag&n=2>; rel="next"` {
		t.Fatalf("catalog page %s %q", r.body, r.Header.Get("Link"))
	}
}

func TestReferrers(t *testing.T) {
	tr := newTestRegistry(t, Options{})
	subject := tr.pushImage("ref", "v1")
	empty := tr.pushBlob("ref", []byte("{}"), ocispec.MediaTypeEmptyJSON)
	sigLayer := tr.pushBlob("ref", []byte("signature"), "application/x-sig-blob")
	sig := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		ArtifactType: "application/x-sig", Config: empty, Layers: []ocispec.Descriptor{sigLayer},
		Subject: &subject, Annotations: map[string]string{"org.example": "yes"}}
	sigDesc, r := tr.putManifest("ref", string(digest.FromBytes(mustJSON(t, sig))), ocispec.MediaTypeImageManifest, sig)
	tr.expect(r, 201, "")
	if r.Header.Get("OCI-Subject") != string(subject.Digest) {
		t.Fatalf("OCI-Subject %q", r.Header.Get("OCI-Subject"))
	}
	sbomCfg := tr.pushBlob("ref", []byte(`{"sbom":true}`), "application/x-sbom")
	sbom := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: sbomCfg, Layers: []ocispec.Descriptor{empty}, Subject: &subject}
	sbomDesc, r := tr.putManifest("ref", "sbom", ocispec.MediaTypeImageManifest, sbom)
	tr.expect(r, 201, "")
	// A referrer whose subject does not exist (yet) is accepted.
	ghost := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("ghost"), Size: 1}
	orphan := sig
	orphan.Subject = &ghost
	_, r = tr.putManifest("ref", "orphan", ocispec.MediaTypeImageManifest, orphan)
	tr.expect(r, 201, "")

	get := func(query string) (ocispec.Index, resp) {
		r := tr.do("GET", "/v2/ref/referrers/"+string(subject.Digest)+query, nil)
		tr.expect(r, 200, "")
		if r.Header.Get("Content-Type") != ocispec.MediaTypeImageIndex {
			t.Fatalf("referrers Content-Type %q", r.Header.Get("Content-Type"))
		}
		var idx ocispec.Index
		if err := json.Unmarshal(r.body, &idx); err != nil || idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex || idx.Manifests == nil {
			t.Fatalf("referrers body %s", r.body)
		}
		return idx, r
	}
	idx, r := get("")
	if len(idx.Manifests) != 2 || r.Header.Get("OCI-Filters-Applied") != "" {
		t.Fatalf("referrers %+v", idx.Manifests)
	}
	byDigest := map[digest.Digest]ocispec.Descriptor{}
	for _, m := range idx.Manifests {
		byDigest[m.Digest] = m
	}
	if d := byDigest[sigDesc.Digest]; d.ArtifactType != "application/x-sig" || d.Size != sigDesc.Size || d.Annotations["org.example"] != "yes" || d.MediaType != ocispec.MediaTypeImageManifest {
		t.Fatalf("signature descriptor %+v", d)
	}
	if d := byDigest[sbomDesc.Digest]; d.ArtifactType != "application/x-sbom" {
		t.Fatalf("sbom descriptor %+v", d)
	}
	idx, r = get("?artifactType=application/x-sbom")
	if len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sbomDesc.Digest || r.Header.Get("OCI-Filters-Applied") != "artifactType" {
		t.Fatalf("filtered referrers %+v", idx.Manifests)
	}
	tr.expect(tr.do("DELETE", "/v2/ref/manifests/"+string(sbomDesc.Digest), nil), 202, "")
	if idx, _ = get(""); len(idx.Manifests) != 1 || idx.Manifests[0].Digest != sigDesc.Digest {
		t.Fatalf("after delete %+v", idx.Manifests)
	}
	r = tr.do("GET", "/v2/ref/referrers/"+string(digest.FromString("nothing")), nil)
	tr.expect(r, 200, "")
	if !strings.Contains(string(r.body), `"manifests":[]`) {
		t.Fatalf("empty referrers %s", r.body)
	}
	tr.expect(tr.do("GET", "/v2/ref/referrers/sha256:bad", nil), 400, "DIGEST_INVALID")
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRestart(t *testing.T) {
	root := t.TempDir()
	tr := openTestRegistry(t, root, Options{})
	img := tr.pushImage("lib/app", "v1")
	b := randBytes(t, 20000)
	r := tr.do("POST", "/v2/lib/app/blobs/uploads/", nil)
	loc := r.Header.Get("Location")
	tr.expect(tr.do("PATCH", loc, b[:8000], "Content-Range", "0-7999"), 202, "")
	tr.http.Close()

	tr2 := openTestRegistry(t, root, Options{})
	r = tr2.do("GET", "/v2/lib/app/manifests/v1", nil)
	tr2.expect(r, 200, "")
	if digest.FromBytes(r.body) != img.Digest {
		t.Fatal("manifest differs after restart")
	}
	r = tr2.do("GET", "/v2/lib/app/tags/list", nil)
	if string(r.body) != `{"name":"lib/app","tags":["v1"]}` {
		t.Fatalf("tags after restart %s", r.body)
	}
	r = tr2.do("GET", loc, nil)
	tr2.expect(r, 204, "")
	if r.Header.Get("Range") != "0-7999" {
		t.Fatalf("upload range after restart %q", r.Header.Get("Range"))
	}
	tr2.expect(tr2.do("PATCH", loc, b[8000:], "Content-Range", "8000-19999"), 202, "")
	tr2.expect(tr2.do("PUT", loc+"?digest="+string(digest.FromBytes(b)), nil), 201, "")
	r = tr2.do("GET", "/v2/lib/app/blobs/"+string(digest.FromBytes(b)), nil)
	if !bytes.Equal(r.body, b) {
		t.Fatal("resumed upload differs")
	}
}

func TestReadOnly(t *testing.T) {
	root := t.TempDir()
	rw := openTestRegistry(t, root, Options{})
	rw.pushImage("ro", "v1")
	ro := openTestRegistry(t, root, Options{ReadOnly: true})
	ro.expect(ro.do("GET", "/v2/ro/manifests/v1", nil), 200, "")
	ro.expect(ro.do("GET", "/v2/ro/tags/list", nil), 200, "")
	r := ro.do("POST", "/v2/ro/blobs/uploads/", nil)
	ro.expect(r, 405, "UNSUPPORTED")
	if r.Header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("Allow %q", r.Header.Get("Allow"))
	}
	ro.expect(ro.do("DELETE", "/v2/ro/manifests/v1", nil), 405, "UNSUPPORTED")
	ro.expect(ro.do("PUT", "/v2/ro/manifests/v2", []byte("{}")), 405, "UNSUPPORTED")
}

func TestBasicAuth(t *testing.T) {
	h, err := HashPassword("pw")
	if err != nil {
		t.Fatal(err)
	}
	tr := newTestRegistry(t, Options{Htpasswd: map[string]string{"alice": h}})
	r := tr.do("GET", "/v2/", nil)
	tr.expect(r, 401, "UNAUTHORIZED")
	if r.Header.Get("WWW-Authenticate") != `Basic realm="berth-registry"` {
		t.Fatalf("challenge %q", r.Header.Get("WWW-Authenticate"))
	}
	tr.user, tr.pass = "alice", "wrong"
	tr.expect(tr.do("GET", "/v2/", nil), 401, "UNAUTHORIZED")
	tr.user = "mallory"
	tr.expect(tr.do("GET", "/v2/", nil), 401, "UNAUTHORIZED")
	tr.user, tr.pass = "alice", "pw"
	tr.expect(tr.do("GET", "/v2/", nil), 200, "")
	tr.pushImage("private", "v1") // cached verification on repeated requests
	tr.user, tr.pass = "alice", "pw2"
	tr.expect(tr.do("GET", "/v2/private/tags/list", nil), 401, "UNAUTHORIZED")

	if _, err := New(tr.store, t.TempDir(), Options{Htpasswd: map[string]string{"bob": "$2y$05$abc"}}); err == nil {
		t.Fatal("bcrypt hash accepted")
	}
}
