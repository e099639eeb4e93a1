package image_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/api/apitest"
	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	"github.com/berth-dev/berth/internal/distribution"
	imagesvc "github.com/berth-dev/berth/internal/image"
)

func layerTar(t *testing.T, files map[string]string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, c := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg})
		tw.Write([]byte(c))
	}
	tw.Close()
	return buf.Bytes()
}

// TestImagesAdapter drives the real image service through the router:
// the adapter's translations, the service's errors and the progress
// stream, against an in-process registry.
func TestImagesAdapter(t *testing.T) {
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")

	data := layerTar(t, map[string]string{"hello.txt": "hello"})
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host+"/app/one:v1", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}

	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	client := distribution.New(distribution.Options{})
	svc, err := imagesvc.New(imagesvc.Config{Root: root, DB: db, Registry: client, Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.NewServer(t, imagerouter.New(&imagerouter.Images{Service: svc}, nil, imagerouter.Registry{Client: client}))

	// Pull: the docker progress stream, ending with the status line.
	w := apitest.Do(t, srv, "POST", "/images/create?fromImage="+host+"/app/one&tag=v1", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"status":"Status: Downloaded newer image for `+host+`/app/one:v1"`) {
		t.Fatalf("pull: %d %s", w.Code, w.Body.String())
	}
	// A missing image is an HTTP 404, not a stream.
	w = apitest.Do(t, srv, "POST", "/images/create?fromImage="+host+"/app/none&tag=v1", nil)
	if w.Code != 404 {
		t.Fatalf("pull missing: %d %s", w.Code, w.Body.String())
	}

	w = apitest.Do(t, srv, "GET", "/images/"+host+"/app/one:v1/json", nil)
	var ins image.InspectResponse
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &ins) != nil || ins.Os != "linux" || len(ins.RootFS.Layers) != 1 {
		t.Fatalf("inspect: %d %s", w.Code, w.Body.String())
	}
	w = apitest.Do(t, srv, "GET", "/images/nope:1/json", nil)
	if w.Code != 404 || apitest.Message(t, w) != "No such image: nope:1" {
		t.Fatalf("inspect missing: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "POST", "/images/"+host+"/app/one:v1/tag?repo="+host+"/app/two&tag=v2", nil); w.Code != 201 {
		t.Fatalf("tag: %d %s", w.Code, w.Body.String())
	}
	w = apitest.Do(t, srv, "GET", `/images/json?filters={"reference":["`+host+`/app/two"]}`, nil)
	var list []image.Summary
	if json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list) != 1 || len(list[0].RepoTags) != 2 {
		t.Fatalf("list: %s", w.Body.String())
	}
	if w := apitest.Do(t, srv, "GET", "/images/"+host+"/app/two:v2/history", nil); w.Code != 200 {
		t.Fatalf("history: %d %s", w.Code, w.Body.String())
	}

	// Push the new tag: the aux digest is the manifest's, unchanged.
	w = apitest.Do(t, srv, "POST", "/images/"+host+"/app/two/push?tag=v2", nil)
	mdig, _ := img.Digest()
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"Digest":"`+mdig.String()+`"`) {
		t.Fatalf("push: %d %s", w.Code, w.Body.String())
	}
	w = apitest.Do(t, srv, "GET", "/distribution/"+host+"/app/two:v2/json", nil)
	var di registry.DistributionInspect
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &di) != nil || di.Descriptor.Digest.String() != mdig.String() || len(di.Platforms) != 1 || di.Platforms[0].Architecture != "amd64" {
		t.Fatalf("distribution: %d %s", w.Code, w.Body.String())
	}

	// Save, remove, load back.
	w = apitest.Do(t, srv, "GET", "/images/"+host+"/app/two:v2/get", nil)
	if w.Code != 200 {
		t.Fatalf("save: %d %s", w.Code, w.Body.String())
	}
	archive := w.Body.Bytes()
	for _, r := range []string{host + "/app/one:v1", host + "/app/two:v2"} {
		if w := apitest.Do(t, srv, "DELETE", "/images/"+r, nil); w.Code != 200 {
			t.Fatalf("delete %s: %d %s", r, w.Code, w.Body.String())
		}
	}
	w = apitest.Do(t, srv, "POST", "/images/load?quiet=1", bytes.NewReader(archive))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `Loaded image: `+host+`/app/two:v2`) {
		t.Fatalf("load: %d %s", w.Code, w.Body.String())
	}

	// Import a root filesystem with a change.
	w = apitest.Do(t, srv, "POST", "/images/create?fromSrc=-&repo=imported&tag=v1&changes=ENV+A%3Db", bytes.NewReader(layerTar(t, map[string]string{"etc/x": "1"})))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `{"status":"sha256:`) {
		t.Fatalf("import: %d %s", w.Code, w.Body.String())
	}
	w = apitest.Do(t, srv, "GET", "/images/imported:v1/json", nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"A=b"`) {
		t.Fatalf("imported: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "POST", `/images/prune?filters={"dangling":["false"]}`, nil); w.Code != 200 {
		t.Fatalf("prune: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "GET", `/images/json?filters={"until":["1h"]}`, nil); w.Code != 400 {
		t.Fatalf("until: %d", w.Code)
	}
}
