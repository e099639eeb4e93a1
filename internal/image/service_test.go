package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/snapshot"
)

// tarLayer builds a gzip layer from name → content ("" content with a
// trailing "/" in the name makes a directory; a name starting with ".wh."
// is a whiteout).
func tarLayer(t testing.TB, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, c := range files {
		h := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(n, "/") {
			h = &tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeDir}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(c))
		}
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func testImage(t testing.TB, arch string, layers ...map[string]string) v1.Image {
	t.Helper()
	img := empty.Image
	for _, files := range layers {
		var err error
		img, err = mutate.AppendLayers(img, tarLayer(t, files))
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Labels = map[string]string{"org.test": "yes"}
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type env struct {
	svc  *Service
	host string // registry host:port on 127.0.0.1
	root string
}

func newEnv(t *testing.T, handler func(http.Handler) http.Handler) *env {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if handler != nil {
		h = handler(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := New(Config{Root: root, DB: db, Registry: distribution.New(distribution.Options{}), Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, host: strings.TrimPrefix(srv.URL, "http://"), root: root}
}

func (e *env) push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(e.host+"/"+ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

// storesEmpty asserts that no blob and no snapshot is left.
func (e *env) storesEmpty(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	n := 0
	e.svc.content.Walk(ctx, func(i contentInfo) error { n++; t.Logf("blob left: %s", i.Digest); return nil })
	e.svc.snaps.Walk(ctx, func(i snapshotInfo) error { n++; t.Logf("snapshot left: %s", i.Key); return nil })
	if n > 0 {
		t.Fatalf("%d objects left in the stores", n)
	}
}

func TestPullInspectTagRemoveGC(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	img := testImage(t, "amd64",
		map[string]string{"etc/": "", "etc/hello": "one", "bin/": "", "bin/tool": "x"},
		map[string]string{"etc/hello": "two", ".wh.bin": ""},
		map[string]string{"data/": "", "data/file": "payload"})
	e.push(t, "test/app:v1", img)
	ref := e.host + "/test/app:v1"
	res, err := e.svc.Pull(ctx, ref, PullOptions{})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	cfgName, _ := img.ConfigName()
	if res.ID.String() != cfgName.String() || res.UpToDate {
		t.Fatalf("pull result %+v, want id %s", res, cfgName)
	}
	ins, err := e.svc.Inspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	mdig, _ := img.Digest()
	if len(ins.RepoTags) != 1 || ins.RepoTags[0] != ref || len(ins.RepoDigests) != 1 || ins.RepoDigests[0] != e.host+"/test/app@"+mdig.String() {
		t.Fatalf("inspect refs: %v %v", ins.RepoTags, ins.RepoDigests)
	}
	if len(ins.RootFS.Layers) != 3 || ins.Os != "linux" || ins.Architecture != "amd64" || ins.Config.Labels["org.test"] != "yes" {
		t.Fatalf("inspect: %+v", ins)
	}
	// The unpacked chain shows the layers merged, whiteouts applied.
	var top string
	e.svc.db.View(func(tx *bolt.Tx) error { r, _ := getRecord(tx, res.ID); top = r.TopChainID(); return nil })
	mnt := t.TempDir()
	mounts, err := e.svc.snaps.View(ctx, "view-test", top)
	if err != nil {
		t.Fatal(err)
	}
	if err := snapshot.MountAll(mounts, mnt); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(mnt, "etc/hello"))
	_, binErr := os.Stat(filepath.Join(mnt, "bin/tool"))
	data, _ := os.ReadFile(filepath.Join(mnt, "data/file"))
	snapshot.Unmount(mnt)
	e.svc.snaps.Remove(ctx, "view-test")
	if string(got) != "two" || binErr == nil || string(data) != "payload" {
		t.Fatalf("merged view: hello=%q bin err=%v data=%q", got, binErr, data)
	}
	// Pulling again fetches nothing.
	res2, err := e.svc.Pull(ctx, ref, PullOptions{})
	if err != nil || !res2.UpToDate {
		t.Fatalf("second pull: %+v %v", res2, err)
	}
	if err := e.svc.Tag(ctx, ref, "mine:latest"); err != nil {
		t.Fatal(err)
	}
	list, err := e.svc.List(ctx, ListFilters{Reference: []string{"mine"}})
	if err != nil || len(list) != 1 || len(list[0].RepoTags) != 2 {
		t.Fatalf("list: %+v %v", list, err)
	}
	hist, err := e.svc.History(ctx, "mine")
	if err != nil || len(hist) != 3 || hist[0].ID != res.ID.String() {
		t.Fatalf("history: %+v %v", hist, err)
	}
	if _, err := e.svc.Remove(ctx, res.ID.Encoded()[:12], RemoveOptions{}); !errdefs.Is(err, errdefs.Conflict) {
		t.Fatalf("rmi by id of an image in two repositories: %v", err)
	}
	del, err := e.svc.Remove(ctx, "mine", RemoveOptions{})
	if err != nil || len(del) != 1 || del[0].Untagged != "mine:latest" {
		t.Fatalf("untag: %+v %v", del, err)
	}
	del, err = e.svc.Remove(ctx, ref, RemoveOptions{})
	if err != nil || del[len(del)-1].Deleted != res.ID.String() {
		t.Fatalf("remove: %+v %v", del, err)
	}
	e.storesEmpty(t)
}

func TestPullIndexSelectsPlatformAndPushRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	amd := testImage(t, "amd64", map[string]string{"arch": "amd64"})
	arm := testImage(t, "arm64", map[string]string{"arch": "arm64"})
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}})
	r, _ := name.ParseReference(e.host+"/multi/app:1", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Pull(ctx, e.host+"/multi/app:1", PullOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	armID, _ := arm.ConfigName()
	idxDigest, _ := idx.Digest()
	if res.ID.String() != armID.String() || res.Digest.String() != idxDigest.String() {
		t.Fatalf("platform selection: got %s (%s)", res.ID, res.Digest)
	}
	// Push the pulled image elsewhere: same manifest, same digest.
	if err := e.svc.Tag(ctx, e.host+"/multi/app:1", e.host+"/copy/app:1"); err != nil {
		t.Fatal(err)
	}
	d, err := e.svc.Push(ctx, e.host+"/copy/app:1", PushOptions{})
	if err != nil {
		t.Fatal(err)
	}
	armDigest, _ := arm.Digest()
	if d.String() != armDigest.String() {
		t.Fatalf("pushed digest %s, want %s", d, armDigest)
	}
	got, err := remote.Image(mustRef(t, e.host+"/copy/app:1"))
	if err != nil {
		t.Fatal(err)
	}
	if gd, _ := got.Digest(); gd.String() != armDigest.String() {
		t.Fatalf("registry has %s", gd)
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A registry that corrupts layer blobs: the pull fails and stores nothing.
func TestPullCorruptBlobStoresNothing(t *testing.T) {
	ctx := context.Background()
	var layerDigest string
	e := newEnv(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if layerDigest != "" && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+layerDigest) {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				if len(body) > 10 {
					body[len(body)/2] ^= 0xff
				}
				for k, v := range rec.Header() {
					w.Header()[k] = v
				}
				w.WriteHeader(rec.Code)
				w.Write(body)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	img := testImage(t, "amd64", map[string]string{"f": strings.Repeat("x", 4096)})
	e.push(t, "bad/app:1", img)
	ls, _ := img.Layers()
	d, _ := ls[0].Digest()
	layerDigest = d.String()
	_, err := e.svc.Pull(ctx, e.host+"/bad/app:1", PullOptions{})
	if err == nil {
		t.Fatal("pull of a corrupted layer succeeded")
	}
	if _, err := e.svc.Inspect(ctx, e.host+"/bad/app:1"); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("image recorded after a failed pull: %v", err)
	}
	if _, err := e.svc.GC(ctx); err != nil {
		t.Fatal(err)
	}
	e.storesEmpty(t)
}

func TestPullMissingImage(t *testing.T) {
	e := newEnv(t, nil)
	_, err := e.svc.Pull(context.Background(), e.host+"/nope/app:1", PullOptions{})
	if !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("pull of a missing image: %v", err)
	}
}

var _ = fmt.Sprint
