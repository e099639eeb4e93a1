package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
)

// pullTestImage pushes a three-layer image to the env's registry and
// pulls it; it returns the full reference.
func pullTestImage(t *testing.T, e *env, repo string) string {
	t.Helper()
	img := testImage(t, "amd64",
		map[string]string{"etc/": "", "etc/hello": "one", "bin/": "", "bin/tool": "x"},
		map[string]string{"etc/hello": "two", ".wh.bin": ""},
		map[string]string{"data/": "", "data/file": "payload"})
	e.push(t, repo, img)
	ref := e.host + "/" + repo
	if _, err := e.svc.Pull(context.Background(), ref, PullOptions{}); err != nil {
		t.Fatalf("pull: %v", err)
	}
	return ref
}

// removeAll deletes every image and collects garbage.
func (e *env) removeAll(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var ids []digest.Digest
	e.svc.db.View(func(tx *bolt.Tx) error {
		recs, _ := allRecords(tx)
		for _, r := range recs {
			ids = append(ids, r.ID)
		}
		return nil
	})
	for _, id := range ids {
		if _, err := e.svc.Remove(ctx, id.String(), RemoveOptions{Force: true, NoPrune: true}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.GC(ctx); err != nil {
		t.Fatal(err)
	}
	e.storesEmpty(t)
}

func tarEntries(t *testing.T, data []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = b
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		format SaveFormat
	}{{"docker", DockerArchive}, {"oci", OCILayout}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, nil)
			ref := pullTestImage(t, e, "save/app:v1")
			before, err := e.svc.Inspect(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := e.svc.Save(ctx, []string{ref}, &buf, tc.format); err != nil {
				t.Fatalf("save: %v", err)
			}
			files := tarEntries(t, buf.Bytes())
			if _, ok := files["index.json"]; !ok {
				t.Fatal("no index.json")
			}
			_, hasManifest := files["manifest.json"]
			if hasManifest != (tc.format == DockerArchive) {
				t.Fatalf("manifest.json present: %v", hasManifest)
			}
			if tc.format == DockerArchive {
				var m []dockerManifestEntry
				if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
					t.Fatal(err)
				}
				if len(m) != 1 || len(m[0].Layers) != 3 || m[0].RepoTags[0] != ref || !strings.HasPrefix(m[0].Config, "blobs/sha256/") {
					t.Fatalf("manifest.json: %+v", m)
				}
				for _, l := range m[0].Layers {
					if _, ok := files[l]; !ok {
						t.Fatalf("layer %s not in the archive", l)
					}
				}
			}
			// OCI tools read it: go-containerregistry's layout package.
			dir := t.TempDir()
			extractForTest(t, buf.Bytes(), dir)
			lp, err := layout.FromPath(dir)
			if err != nil {
				t.Fatal(err)
			}
			idx, err := lp.ImageIndex()
			if err != nil {
				t.Fatal(err)
			}
			im, _ := idx.IndexManifest()
			if len(im.Manifests) != 1 || im.Manifests[0].Annotations[annotationImageName] != ref {
				t.Fatalf("index.json: %+v", im)
			}
			limg, err := lp.Image(im.Manifests[0].Digest)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(limg); err != nil {
				t.Fatalf("layout image invalid: %v", err)
			}
			if ld, _ := limg.Digest(); ld.String() != before.Descriptor.Digest.String() && before.Descriptor.MediaType != "application/vnd.oci.image.index.v1+json" {
				t.Fatalf("layout manifest %s, stored %s", ld, before.Descriptor.Digest)
			}
			if tc.format == DockerArchive {
				// docker-load style readers (ggcr's tarball) read manifest.json.
				data := buf.Bytes()
				timg, err := tarball.Image(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := validate.Image(timg); err != nil {
					t.Fatalf("docker archive image invalid: %v", err)
				}
				if cn, _ := timg.ConfigName(); cn.String() != before.ID {
					t.Fatalf("tarball reader sees config %s", cn)
				}
			}

			e.removeAll(t)
			loaded, err := e.svc.Load(ctx, bytes.NewReader(buf.Bytes()), nil)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if len(loaded) != 1 || loaded[0] != ref {
				t.Fatalf("loaded %v", loaded)
			}
			after, err := e.svc.Inspect(ctx, ref)
			if err != nil {
				t.Fatal(err)
			}
			if after.ID != before.ID || strings.Join(after.RepoTags, ",") != strings.Join(before.RepoTags, ",") ||
				strings.Join(after.RootFS.Layers, ",") != strings.Join(before.RootFS.Layers, ",") {
				t.Fatalf("after load %+v, before %+v", after, before)
			}
			// Same manifest, so the same descriptor.
			if after.Descriptor.Digest != before.Descriptor.Digest && tc.format == OCILayout {
				t.Fatalf("manifest digest changed: %s → %s", before.Descriptor.Digest, after.Descriptor.Digest)
			}
			rep, err := e.svc.Check(ctx, false)
			if err != nil || !rep.OK() {
				t.Fatalf("check after load: %+v %v", rep, err)
			}
			// Loading again is idempotent.
			if _, err := e.svc.Load(ctx, bytes.NewReader(buf.Bytes()), nil); err != nil {
				t.Fatalf("second load: %v", err)
			}
			e.removeAll(t)
		})
	}
}

func TestSaveUnknownImage(t *testing.T) {
	e := newEnv(t, nil)
	err := e.svc.Save(context.Background(), []string{"nope:1"}, io.Discard, DockerArchive)
	if !errdefs.Is(err, errdefs.NotFound) {
		t.Fatalf("save of a missing image: %v", err)
	}
}

// A repository name saves all its tags; an ID saves the image untagged;
// several names give one archive with each image once.
func TestSaveNames(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	ref := pullTestImage(t, e, "names/app:v1")
	for _, tag := range []string{"names/app:v2", "other:1"} {
		if err := e.svc.Tag(ctx, ref, tag); err != nil {
			t.Fatal(err)
		}
	}
	ins, _ := e.svc.Inspect(ctx, ref)
	repoTags := func(names ...string) []string {
		t.Helper()
		var buf bytes.Buffer
		if err := e.svc.Save(ctx, names, &buf, DockerArchive); err != nil {
			t.Fatalf("save %v: %v", names, err)
		}
		var m []dockerManifestEntry
		json.Unmarshal(tarEntries(t, buf.Bytes())["manifest.json"], &m)
		if len(m) != 1 {
			t.Fatalf("save %v: %d images", names, len(m))
		}
		return m[0].RepoTags
	}
	if got := repoTags("names/app"); strings.Join(got, ",") != "names/app:v2" {
		t.Fatalf("repository without tag: %v", got)
	}
	if got := repoTags(e.host + "/names/app"); strings.Join(got, ",") != ref {
		t.Fatalf("repository: %v", got)
	}
	if got := repoTags(ins.ID); len(got) != 0 {
		t.Fatalf("by id: %v", got)
	}
	if got := repoTags("other:1", ref, ins.ID[7:19]); strings.Join(got, ",") != "other:1,"+ref {
		t.Fatalf("several names: %v", got)
	}
}
