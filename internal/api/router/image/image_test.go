package image_test

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"

	"github.com/berth-dev/berth/internal/api/apitest"
	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
)

func newRouter(t *testing.T) (*apitest.Images, *apitest.Containers, *imagerouter.Router) {
	f, c := apitest.NewImages(), apitest.NewContainers()
	return f, c, imagerouter.New(f, c, f)
}

func TestNamesWithSlashes(t *testing.T) {
	_, _, r := newRouter(t)
	srv := apitest.NewServer(t, r)
	if w := apitest.Do(t, srv, "POST", "/images/busybox/tag?repo=localhost:5000/foo/bar&tag=v1", nil); w.Code != 201 {
		t.Fatalf("tag: %d %s", w.Code, w.Body.String())
	}
	for _, target := range []string{"/images/localhost:5000/foo/bar:v1/json", "/v1.44/images/localhost:5000/foo/bar:v1/json", "/images/localhost:5000/foo/bar:v1/history"} {
		if w := apitest.Do(t, srv, "GET", target, nil); w.Code != 200 {
			t.Errorf("%s: %d %s", target, w.Code, w.Body.String())
		}
	}
	w := apitest.Do(t, srv, "GET", "/images/localhost:5000/foo/bar:v2/json", nil)
	if w.Code != 404 || apitest.Message(t, w) != "No such image: localhost:5000/foo/bar:v2" {
		t.Fatalf("missing: %d %s", w.Code, w.Body.String())
	}
	w = apitest.Do(t, srv, "DELETE", "/images/localhost:5000/foo/bar:v1", nil)
	var del []image.DeleteResponse
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &del) != nil || len(del) != 1 || del[0].Untagged != "localhost:5000/foo/bar:v1" {
		t.Fatalf("delete: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "GET", "/images/busybox/unknownaction", nil); w.Code != 404 || apitest.Message(t, w) != "page not found" {
		t.Fatalf("unknown action: %d %s", w.Code, w.Body.String())
	}
}

func TestPullStream(t *testing.T) {
	f, _, r := newRouter(t)
	srv := apitest.NewServer(t, r)
	auth := base64.RawURLEncoding.EncodeToString([]byte(`{"username":"bob","password":"pw","serveraddress":"docker.io"}`))
	w := apitest.Do(t, srv, "POST", "/images/create?fromImage=alpine&tag=3.20", nil, registry.AuthHeader, auth)
	lines := strings.Split(strings.TrimSpace(w.Body.String()), "\r\n")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || len(lines) != 7 {
		t.Fatalf("pull: %d %q", w.Code, w.Body.String())
	}
	if !strings.Contains(lines[0], `"status":"Pulling from alpine"`) || !strings.Contains(lines[0], `"id":"3.20"`) || !strings.Contains(lines[2], `"progressDetail":{"current":500,"total":1000}`) {
		t.Fatalf("pull lines: %q", lines)
	}
	if len(f.Auths) != 1 || f.Auths[0].Username != "bob" {
		t.Fatalf("auth not passed: %+v", f.Auths)
	}
	// Failure before any layer: an HTTP error, not a stream.
	w = apitest.Do(t, srv, "POST", "/images/create?fromImage=nosuch&tag=latest", nil)
	if w.Code != 404 || apitest.Message(t, w) != "manifest for nosuch:latest not found: manifest unknown" {
		t.Fatalf("nosuch: %d %s", w.Code, w.Body.String())
	}
	// Failure mid-stream: in the stream.
	w = apitest.Do(t, srv, "POST", "/images/create?fromImage=broken", nil)
	if w.Code != 200 || !strings.HasSuffix(strings.TrimSpace(w.Body.String()), `{"errorDetail":{"message":"unexpected EOF"},"error":"unexpected EOF"}`) {
		t.Fatalf("broken: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "POST", "/images/create?fromImage=busybox&platform=linux/", nil); w.Code != 400 {
		t.Fatalf("bad platform: %d", w.Code)
	}
	if w := apitest.Do(t, srv, "POST", "/images/create?fromImage=busybox", nil, registry.AuthHeader, "!!!"); w.Code != 400 || !strings.Contains(w.Body.String(), "invalid X-Registry-Auth header") {
		t.Fatalf("bad auth: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "POST", "/images/create", nil); w.Code != 400 {
		t.Fatalf("no source: %d", w.Code)
	}
}

func TestPushImportLoadSave(t *testing.T) {
	f, _, r := newRouter(t)
	srv := apitest.NewServer(t, r)
	w := apitest.Do(t, srv, "POST", "/images/busybox/push?tag=latest", nil, registry.AuthHeader, base64.URLEncoding.EncodeToString([]byte(`{"username":"p"}`)))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"aux":{"Digest":"sha256:dddd`) || len(f.Auths) != 1 {
		t.Fatalf("push: %d %s", w.Code, w.Body.String())
	}
	w = apitest.Do(t, srv, "POST", "/images/localhost:5000/none/push?tag=v9", nil)
	if w.Code != 404 || !strings.Contains(w.Body.String(), "An image does not exist locally with the tag") {
		t.Fatalf("push missing: %d %s", w.Code, w.Body.String())
	}

	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: 2})
	tw.Write([]byte("hi"))
	tw.Close()
	w = apitest.Do(t, srv, "POST", "/images/create?fromSrc=-&repo=imported&tag=v1&changes=CMD+%5B%22sh%22%5D&message=m", bytes.NewReader(tb.Bytes()))
	if w.Code != 200 || !strings.Contains(w.Body.String(), `{"status":"sha256:`) {
		t.Fatalf("import: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "GET", "/images/imported:v1/json", nil); w.Code != 200 {
		t.Fatalf("imported image: %d", w.Code)
	}
	if w := apitest.Do(t, srv, "POST", "/images/create?fromSrc=https://example.com/rootfs.tar", nil); w.Code != 501 {
		t.Fatalf("import from URL: %d", w.Code)
	}

	w = apitest.Do(t, srv, "GET", "/images/get?names=busybox&names=imported:v1", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-tar" {
		t.Fatalf("save: %d %s", w.Code, w.Body.String())
	}
	archive := w.Body.Bytes()
	if w := apitest.Do(t, srv, "GET", "/images/nosuch/get", nil); w.Code != 404 {
		t.Fatalf("save missing: %d", w.Code)
	}
	w = apitest.Do(t, srv, "POST", "/images/load?quiet=1", bytes.NewReader(archive), "Content-Type", "application/x-tar")
	if w.Code != 200 || strings.TrimSpace(w.Body.String()) != `{"status":"Loaded image: loaded:latest"}` {
		t.Fatalf("quiet load: %d %q", w.Code, w.Body.String())
	}
	w = apitest.Do(t, srv, "POST", "/images/load", bytes.NewReader(archive))
	if strings.Count(w.Body.String(), "\n") != 2 {
		t.Fatalf("load: %q", w.Body.String())
	}
}

func TestListPruneCommitDistribution(t *testing.T) {
	_, c, r := newRouter(t)
	srv := apitest.NewServer(t, r)
	w := apitest.Do(t, srv, "GET", `/images/json?filters={"reference":["busybox"]}`, nil)
	var list []image.Summary
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &list) != nil || len(list) != 1 {
		t.Fatalf("list: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "GET", `/images/json?filters={"colour":["x"]}`, nil); w.Code != 400 {
		t.Fatalf("bad filter: %d", w.Code)
	}
	if w := apitest.Do(t, srv, "POST", `/images/prune?filters={"dangling":["false"]}`, nil); w.Code != 200 || !strings.Contains(w.Body.String(), `"ImagesDeleted":[]`) {
		t.Fatalf("prune: %d %s", w.Code, w.Body.String())
	}

	// Commit needs the container service.
	if w := apitest.Do(t, srv, "POST", "/commit?container=ghost", nil); w.Code != 404 {
		t.Fatalf("commit ghost: %d", w.Code)
	}
	hc := apitest.NewServer(t, imagerouter.New(apitest.NewImages(), c, nil))
	if w := apitest.Do(t, hc, "GET", "/distribution/busybox/json", nil); w.Code != 501 {
		t.Fatalf("no distribution backend: %d", w.Code)
	}

	w = apitest.Do(t, srv, "GET", "/distribution/busybox:latest/json", nil)
	var di registry.DistributionInspect
	if w.Code != 200 || json.Unmarshal(w.Body.Bytes(), &di) != nil || len(di.Platforms) != 2 || di.Descriptor.Size != 1234 {
		t.Fatalf("distribution: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, srv, "GET", "/distribution/ghcr.io/a/b/json", nil); w.Code != 404 {
		t.Fatalf("distribution missing: %d", w.Code)
	}
}
