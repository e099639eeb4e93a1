package registry_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/stream"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/berth-dev/berth/internal/distribution/registry"
	"github.com/berth-dev/berth/internal/image/content"
)

// requestLog records "METHOD path?query status" for each request.
type requestLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *requestLog) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

// matching counts the lines containing substr, and how many of those end
// with suffix.
func (l *requestLog) matching(substr, suffix string) (n, ok int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.lines {
		if strings.Contains(s, substr) {
			n++
			if strings.HasSuffix(s, suffix) {
				ok++
			}
		}
	}
	return n, ok
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// serveBerth starts a registry on loopback and returns its host:port.
func serveBerth(t *testing.T, opts registry.Options) string {
	host, _ := serveBerthLogged(t, opts)
	return host
}

func serveBerthLogged(t *testing.T, opts registry.Options) (string, *requestLog) {
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
	log := &requestLog{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		srv.ServeHTTP(rec, r)
		log.mu.Lock()
		log.lines = append(log.lines, fmt.Sprintf("%s %s %d", r.Method, r.URL.RequestURI(), rec.status))
		log.mu.Unlock()
	}))
	t.Cleanup(hs.Close)
	return strings.TrimPrefix(hs.URL, "http://"), log
}

func ref(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func imageDigest(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pullImage fetches and fully validates an image (every layer is read
// and checked against its digest and diff ID).
func pullImage(t *testing.T, r name.Reference, opts ...remote.Option) v1.Image {
	t.Helper()
	img, err := remote.Image(r, opts...)
	if err != nil {
		t.Fatalf("pull %s: %v", r, err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("validate %s: %v", r, err)
	}
	return img
}

func pullIndex(t *testing.T, r name.Reference, opts ...remote.Option) v1.ImageIndex {
	t.Helper()
	idx, err := remote.Index(r, opts...)
	if err != nil {
		t.Fatalf("pull index %s: %v", r, err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate index %s: %v", r, err)
	}
	return idx
}

func TestGGCRPushPull(t *testing.T) {
	host, log := serveBerthLogged(t, registry.Options{})

	// Docker-typed random image, by tag and by digest.
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	tag := ref(t, host+"/library/random:v1")
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push: %v", err)
	}
	want := imageDigest(t, img)
	if got := imageDigest(t, pullImage(t, tag)); got != want {
		t.Fatalf("pulled %s, pushed %s", got, want)
	}
	pullImage(t, ref(t, host+"/library/random@"+want.String()))

	// The same image with OCI media types.
	oci := mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	if err := remote.Write(ref(t, host+"/a/b/c:oci"), oci); err != nil {
		t.Fatalf("push oci: %v", err)
	}
	if got := imageDigest(t, pullImage(t, ref(t, host+"/a/b/c:oci"))); got != imageDigest(t, oci) {
		t.Fatal("oci image digest differs")
	}

	// Multi-arch index.
	idx, err := random.Index(2048, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	itag := ref(t, host+"/multi/arch:latest")
	if err := remote.WriteIndex(itag, idx); err != nil {
		t.Fatalf("push index: %v", err)
	}
	pulled := pullIndex(t, itag)
	wd, _ := idx.Digest()
	if gd, _ := pulled.Digest(); gd != wd {
		t.Fatalf("index digest %s, want %s", gd, wd)
	}
	im, _ := pulled.IndexManifest()
	if len(im.Manifests) != 3 {
		t.Fatalf("index has %d manifests", len(im.Manifests))
	}
	// A Docker manifest list of the same images.
	list := mutate.IndexMediaType(idx, types.DockerManifestList)
	if err := remote.WriteIndex(ref(t, host+"/multi/arch:list"), list); err != nil {
		t.Fatalf("push list: %v", err)
	}
	pullIndex(t, ref(t, host+"/multi/arch:list"))

	// A streamed layer (unknown size and digest: chunked PATCH upload).
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	payload := strings.Repeat("streamed layer bytes ", 5000)
	tw.WriteHeader(&tar.Header{Name: "file.txt", Mode: 0o644, Size: int64(len(payload)), Typeflag: tar.TypeReg})
	io.WriteString(tw, payload)
	tw.Close()
	sl := stream.NewLayer(io.NopCloser(&tarball))
	simg, err := mutate.AppendLayers(empty.Image, sl)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref(t, host+"/streamed:v1"), simg); err != nil {
		t.Fatalf("push streamed: %v", err)
	}
	pullImage(t, ref(t, host+"/streamed:v1"))

	// Copy between repositories of one registry: layers are mounted.
	src := pullImage(t, tag)
	if err := remote.Write(ref(t, host+"/copy/dest:v1"), src); err != nil {
		t.Fatalf("copy: %v", err)
	}
	if got := imageDigest(t, pullImage(t, ref(t, host+"/copy/dest:v1"))); got != want {
		t.Fatal("copied image differs")
	}
	if mounts, ok := log.matching("mount=", " 201"); mounts == 0 || ok != mounts {
		t.Fatalf("copy did not mount its layers: %d mounts, %d succeeded", mounts, ok)
	}
	if log.count("PATCH") == 0 {
		t.Fatal("no chunked upload was exercised")
	}

	// Tags, with pagination through the Link header.
	repo := tag.Context()
	for i := 0; i < 7; i++ {
		if err := remote.Tag(repo.Tag(fmt.Sprintf("t%d", i)), img); err != nil {
			t.Fatal(err)
		}
	}
	tags, err := remote.List(repo, remote.WithPageSize(3))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tags, ",") != "t0,t1,t2,t3,t4,t5,t6,v1" {
		t.Fatalf("tags %v", tags)
	}

	// Referrers: an artifact whose subject is the image.
	mf, _ := img.Manifest()
	desc := v1.Descriptor{MediaType: mf.MediaType, Digest: want}
	desc.Size, _ = img.Size()
	art := mutate.Subject(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), "application/x-example"), desc).(v1.Image)
	ad := imageDigest(t, art)
	if err := remote.Write(repo.Digest(ad.String()), art); err != nil {
		t.Fatalf("push referrer: %v", err)
	}
	refs, err := remote.Referrers(repo.Digest(want.String()))
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := refs.IndexManifest()
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != ad || rm.Manifests[0].ArtifactType != "application/x-example" {
		t.Fatalf("referrers %+v", rm.Manifests)
	}

	// Delete by digest.
	if err := remote.Delete(repo.Digest(ad.String())); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(repo.Digest(ad.String())); err == nil {
		t.Fatal("deleted manifest still served")
	}
}

func TestGGCRBasicAuth(t *testing.T) {
	h, err := registry.HashPassword("secret")
	if err != nil {
		t.Fatal(err)
	}
	host := serveBerth(t, registry.Options{Htpasswd: map[string]string{"ci": h}})
	img, _ := random.Image(512, 1)
	r := ref(t, host+"/private/img:v1")
	if err := remote.Write(r, img); err == nil {
		t.Fatal("anonymous push accepted")
	}
	auth := remote.WithAuth(&authn.Basic{Username: "ci", Password: "secret"})
	if err := remote.Write(r, img, auth); err != nil {
		t.Fatalf("authenticated push: %v", err)
	}
	pullImage(t, r, auth)
	if _, err := remote.Image(r, remote.WithAuth(&authn.Basic{Username: "ci", Password: "nope"})); err == nil {
		t.Fatal("wrong password accepted")
	}
}
