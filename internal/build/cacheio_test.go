package build

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestParseCacheSpec(t *testing.T) {
	for _, c := range []struct {
		in     string
		export bool
		want   cacheSpec
		err    string
	}{
		{in: "type=registry,ref=127.0.0.1:5000/app/cache:ci,mode=max", export: true,
			want: cacheSpec{Type: "registry", Ref: "127.0.0.1:5000/app/cache:ci", Mode: "max", Tag: "latest"}},
		{in: "type=registry,ref=127.0.0.1:5000/app/cache", want: cacheSpec{Type: "registry", Ref: "127.0.0.1:5000/app/cache:latest", Mode: "min", Tag: "latest"}},
		{in: "type=local,dest=/var/cache/b,tag=v1,ignore-error=true,compression=zstd", export: true,
			want: cacheSpec{Type: "local", Dir: "/var/cache/b", Tag: "v1", Mode: "min", IgnoreError: true}},
		{in: "type=local,src=/var/cache/b", want: cacheSpec{Type: "local", Dir: "/var/cache/b", Tag: "latest", Mode: "min"}},
		{in: "type=local,src=/x", export: true, err: "src is for --cache-from"},
		{in: "type=local,dest=/x", err: "dest is for --cache-to"},
		{in: "type=local,src=relative", err: "absolute path"},
		{in: "type=registry", err: "needs ref="},
		{in: "type=registry,ref=UPPER/case", err: "invalid cache spec"},
		{in: "type=gha", err: `cache type "gha" is not supported`},
		{in: "type=registry,ref=r/x,mode=all", err: "mode must be min or max"},
		{in: "type=registry,ref=r/x,colour=blue", err: `unknown attribute "colour"`},
		{in: "ref=r/x", err: "type= is required"},
		{in: "type=registry,novalue", err: "is not key=value"},
	} {
		got, err := parseCacheSpec(c.in, c.export)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !errdefs.Is(err, errdefs.InvalidArgument) {
				t.Errorf("%q: %v, want an InvalidArgument error with %q", c.in, err, c.err)
			}
			continue
		}
		got.raw = ""
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %+v %v, want %+v", c.in, got, err, c.want)
		}
	}
}

func TestJoinSplitSpecs(t *testing.T) {
	// What the docker CLI sends for --cache-from type=registry,ref=r/c
	// --cache-from img:1 (its flag splits at commas).
	got := joinSplitSpecs([]string{"type=registry", "ref=r/c:1", "mode=max", "img:1", "type=local", "src=/d", "other"})
	want := []string{"type=registry,ref=r/c:1,mode=max", "img:1", "type=local,src=/d", "other"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
	from, to, images, err := parseCacheOptions(Options{CacheFrom: []string{"app:1", "type=registry", "ref=r/c:1"}, CacheTo: []string{"type=local,dest=/d"}})
	if err != nil || len(from) != 1 || from[0].Ref != "docker.io/r/c:1" || len(to) != 1 || !reflect.DeepEqual(images, []string{"app:1"}) {
		t.Fatalf("%+v %+v %q %v", from, to, images, err)
	}
}

// testCache is a well-formed cache manifest and config with one step of
// one layer and one cache mount.
func testCache(t testing.TB) (mb, cb []byte, m ocispec.Manifest, c cacheConfig) {
	t.Helper()
	layer := digest.FromString("layer")
	mountBlob := digest.FromString("mount")
	key := digest.FromString("step").Encoded()
	c = cacheConfig{
		SchemaVersion: cacheSchemaVersion, Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Layers: map[digest.Digest]digest.Digest{layer: digest.FromString("diff"), mountBlob: digest.FromString("mountdiff")},
		Steps:  []cacheStep{{Key: key, Layers: []digest.Digest{layer}}},
		Mounts: []cacheMountRecord{{ID: "go-build", Blob: mountBlob}},
	}
	return encodeTestCache(t, c, []ocispec.Descriptor{
		{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: layer, Size: 10},
		{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: mountBlob, Size: 5},
	})
}

func encodeTestCache(t testing.TB, c cacheConfig, layers []ocispec.Descriptor) ([]byte, []byte, ocispec.Manifest, cacheConfig) {
	cb, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: cacheArtifactType,
		Config: ocispec.Descriptor{MediaType: cacheConfigMediaType, Digest: digest.FromBytes(cb), Size: int64(len(cb))}, Layers: layers}
	m.SchemaVersion = 2
	mb, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return mb, cb, m, c
}

func TestParseCacheManifest(t *testing.T) {
	amd64 := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	mb, cb, m, c := testCache(t)
	ic, err := parseCacheManifest(mb, cb, amd64)
	if err != nil {
		t.Fatal(err)
	}
	if len(ic.steps) != 1 || len(ic.mounts) != 1 || len(ic.blobs) != 2 {
		t.Fatalf("%+v", ic)
	}
	bad := func(name, want string, mb, cb []byte, p ocispec.Platform) {
		t.Helper()
		if _, err := parseCacheManifest(mb, cb, p); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	bad("other platform", "cache is for linux/amd64", mb, cb, ocispec.Platform{OS: "linux", Architecture: "arm64"})
	bad("config tampered", "does not match its digest", mb, append([]byte(nil), append(cb[:len(cb)-1], ' ', '}')...), amd64)
	bad("not JSON", "manifest", []byte("{"), cb, amd64)
	bad("an index", "not a build cache", []byte(`{"schemaVersion":2,"mediaType":"`+ocispec.MediaTypeImageIndex+`"}`), cb, amd64)
	img := m
	img.Config.MediaType = ocispec.MediaTypeImageConfig
	ib, _ := json.Marshal(img)
	bad("an image", "not a berth build cache", ib, cb, amd64)

	c2 := c
	c2.SchemaVersion = 2
	mb2, cb2, _, _ := encodeTestCache(t, c2, m.Layers)
	bad("future version", "unsupported build cache schema version 2", mb2, cb2, amd64)

	c3 := c
	c3.Steps = []cacheStep{{Key: "../../etc", Layers: c.Steps[0].Layers}}
	mb3, cb3, _, _ := encodeTestCache(t, c3, m.Layers)
	bad("bad key", "malformed cache key", mb3, cb3, amd64)

	c4 := c
	c4.Steps = []cacheStep{{Key: c.Steps[0].Key, Layers: []digest.Digest{digest.FromString("elsewhere")}}}
	mb4, cb4, _, _ := encodeTestCache(t, c4, m.Layers)
	bad("unknown layer", "is not in the cache", mb4, cb4, amd64)

	mb5, cb5, _, _ := encodeTestCache(t, c, m.Layers[:1])
	bad("blob not listed", "the manifest does not list", mb5, cb5, amd64)

	c6 := c
	c6.Mounts = []cacheMountRecord{{ID: "", Blob: m.Layers[1].Digest}}
	mb6, cb6, _, _ := encodeTestCache(t, c6, m.Layers)
	bad("mount without id", "cache mount without an id", mb6, cb6, amd64)

	layers := append([]ocispec.Descriptor(nil), m.Layers...)
	layers[0].Digest = "sha256:nothex"
	mb7, cb7, _, _ := encodeTestCache(t, c, layers)
	bad("bad digest", "layer", mb7, cb7, amd64)
}

// TestLayoutStoreRoundTrip writes a cache into an OCI layout next to
// another tag, reads it back, and refuses a tampered blob.
func TestLayoutStoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	blob := []byte("layer bytes")
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	c := cacheConfig{SchemaVersion: cacheSchemaVersion, Layers: map[digest.Digest]digest.Digest{desc.Digest: digest.FromString("d")}}
	mb, cb, _, _ := encodeTestCache(t, c, []ocispec.Descriptor{desc})
	open := func(context.Context, ocispec.Descriptor) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(string(blob))), nil
	}
	for _, tag := range []string{"other", "latest", "latest"} {
		if err := (&layoutStore{dir: dir, tag: tag}).write(ctx, mb, cb, []ocispec.Descriptor{desc}, open); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := (&layoutStore{dir: dir}).index()
	if err != nil || len(idx.Manifests) != 2 {
		t.Fatalf("index: %+v %v (one manifest per tag)", idx, err)
	}
	ls := &layoutStore{dir: dir, tag: "latest"}
	gotM, gotC, err := ls.read(ctx)
	if err != nil || string(gotM) != string(mb) || string(gotC) != string(cb) {
		t.Fatalf("read: %v", err)
	}
	rc, err := ls.open(ctx, desc)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != string(blob) {
		t.Fatalf("blob %q", b)
	}
	if _, _, err := (&layoutStore{dir: dir, tag: "nope"}).read(ctx); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("unknown tag: %v", err)
	}
	if _, _, err := (&layoutStore{dir: t.TempDir(), tag: "latest"}).read(ctx); !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("empty directory: %v", err)
	}
	cfgPath := ls.blobPath(digest.FromBytes(cb))
	if err := os.WriteFile(cfgPath, append(cb, ' '), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ls.read(ctx); err == nil || !strings.Contains(err.Error(), "does not match its digest") {
		t.Fatalf("tampered config: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseCacheManifest: whatever a registry or directory serves as a
// cache manifest and config, reading it returns a cache or an error,
// never panics, and a cache it returns only refers to blobs it lists.
func FuzzParseCacheManifest(f *testing.F) {
	mb, cb, _, _ := testCache(f)
	f.Add(mb, cb)
	f.Add([]byte(`{"mediaType":"application/vnd.oci.image.index.v1+json"}`), cb)
	f.Add(mb, []byte(`{"schemaVersion":1,"steps":[{"key":"x"}]}`))
	f.Add([]byte(`{}`), []byte(`null`))
	f.Fuzz(func(t *testing.T, mb, cb []byte) {
		// A config that matches whatever digest the manifest names would
		// be found too rarely: let the fuzzer's config stand for it.
		var m ocispec.Manifest
		if json.Unmarshal(mb, &m) == nil && m.Config.MediaType == cacheConfigMediaType {
			m.Config.Digest = digest.FromBytes(cb)
			mb, _ = json.Marshal(m)
		}
		ic, err := parseCacheManifest(mb, cb, ocispec.Platform{OS: "linux", Architecture: "amd64"})
		if err != nil {
			return
		}
		for _, st := range ic.steps {
			for _, l := range st.Layers {
				if _, ok := ic.blobs[l]; !ok {
					t.Fatalf("step %s names unlisted blob %s", st.Key, l)
				}
			}
		}
		for _, mr := range ic.mounts {
			if _, ok := ic.blobs[mr.Blob]; !ok || mr.ID == "" {
				t.Fatalf("mount %+v", mr)
			}
		}
	})
}

// TestCacheMountNameStaysInside: no id, from a Dockerfile or an imported
// cache, names a directory outside cache-mounts or cache-mounts itself.
func TestCacheMountNameStaysInside(t *testing.T) {
	root := "/data/build/cache-mounts"
	for _, id := range []string{"", ".", "..", "../..", "/", "a/../..", "go-build", "/root/.cache", ".cache"} {
		name := cacheMountName(id)
		p := filepath.Join(root, name)
		if filepath.Dir(p) != root || name == "" {
			t.Errorf("id %q: %q is not a directory of its own in %s", id, p, root)
		}
	}
	if cacheMountName("go-build") != "go-build" || cacheMountName("/root/.cache") != "_2froot_2f.cache" {
		t.Errorf("names of ordinary ids changed: %q %q", cacheMountName("go-build"), cacheMountName("/root/.cache"))
	}
}
