package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/archive"
)

func extractForTest(t *testing.T, data []byte, dir string) {
	t.Helper()
	for n, b := range tarEntries(t, data) {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type tarEntry struct {
	name     string
	typeflag byte
	body     []byte
	link     string
}

func buildTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typeflag, Mode: 0o644, Size: int64(len(e.body)), Linkname: e.link}
		if e.typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typeflag == tar.TypeReg {
			tw.Write(e.body)
		}
	}
	tw.Close()
	return buf.Bytes()
}

func rawTar(t *testing.T, files map[string]string) []byte {
	var es []tarEntry
	for n, c := range files {
		es = append(es, tarEntry{name: n, typeflag: tar.TypeReg, body: []byte(c)})
	}
	return buildTar(t, es)
}

// A pre-25 docker save archive: <id>/layer.tar (uncompressed), <hex>.json
// config, manifest.json, repositories; gzip-compressed as a whole.
func TestLoadLegacyDockerArchive(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	l1 := rawTar(t, map[string]string{"a": "one"})
	l2 := rawTar(t, map[string]string{"b": "two"})
	cfg := map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"/bin/sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{
			digest.FromBytes(l1).String(), digest.FromBytes(l2).String()}},
	}
	cb, _ := json.Marshal(cfg)
	cd := digest.FromBytes(cb)
	man, _ := json.Marshal([]map[string]any{{
		"Config": cd.Encoded() + ".json", "RepoTags": []string{"legacy/app:1"},
		"Layers": []string{"aaa/layer.tar", "bbb/layer.tar"}}})
	repos, _ := json.Marshal(map[string]map[string]string{"legacy/app": {"1": "aaa"}})
	data := buildTar(t, []tarEntry{
		{name: "aaa/", typeflag: tar.TypeDir},
		{name: "aaa/layer.tar", typeflag: tar.TypeReg, body: l1},
		{name: "aaa/VERSION", typeflag: tar.TypeReg, body: []byte("1.0")},
		{name: "bbb/layer.tar", typeflag: tar.TypeReg, body: l2},
		{name: cd.Encoded() + ".json", typeflag: tar.TypeReg, body: cb},
		{name: "manifest.json", typeflag: tar.TypeReg, body: man},
		{name: "repositories", typeflag: tar.TypeReg, body: repos},
	})
	var gz bytes.Buffer
	w := archive.Compress(&gz, archive.Gzip, 0)
	w.Write(data)
	w.Close()
	loaded, err := e.svc.Load(ctx, &gz, nil)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if len(loaded) != 1 || loaded[0] != "legacy/app:1" {
		t.Fatalf("loaded %v", loaded)
	}
	ins, err := e.svc.Inspect(ctx, "legacy/app:1")
	if err != nil || ins.ID != cd.String() || len(ins.RootFS.Layers) != 2 {
		t.Fatalf("inspect: %+v %v", ins, err)
	}
	// Layers stored as uncompressed blobs.
	var r *record
	e.svc.db.View(func(tx *bolt.Tx) error { r, _ = getRecord(tx, cd); return nil })
	if r.Layers[0].Blob.MediaType != "application/vnd.docker.image.rootfs.diff.tar" || r.Layers[0].Blob.Digest != digest.FromBytes(l1) {
		t.Fatalf("layer blob: %+v", r.Layers[0].Blob)
	}
	if rep, err := e.svc.Check(ctx, false); err != nil || !rep.OK() {
		t.Fatalf("check: %+v %v", rep, err)
	}
	// Saved again and loaded into a fresh service, it is the same image.
	var buf bytes.Buffer
	if err := e.svc.Save(ctx, []string{"legacy/app:1"}, &buf, DockerArchive); err != nil {
		t.Fatal(err)
	}
	e.removeAll(t)
	if _, err := e.svc.Load(ctx, &buf, nil); err != nil {
		t.Fatal(err)
	}
	if ins2, err := e.svc.Inspect(ctx, "legacy/app:1"); err != nil || ins2.ID != ins.ID {
		t.Fatalf("reloaded: %v", err)
	}
	e.removeAll(t)
}

// go-containerregistry's tarball.Write: manifest.json naming
// sha256:<hex> config and <hex>.tar.gz layers.
func TestLoadGGCRTarball(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	img := testImage(t, "amd64", map[string]string{"x": "1"}, map[string]string{"y": "2"})
	tag, _ := nameTag("ggcr/app:2")
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	loaded, err := e.svc.Load(ctx, &buf, nil)
	if err != nil || len(loaded) != 1 || loaded[0] != "ggcr/app:2" {
		t.Fatalf("load: %v %v", loaded, err)
	}
	id, _ := img.ConfigName()
	if ins, err := e.svc.Inspect(ctx, "ggcr/app:2"); err != nil || ins.ID != id.String() {
		t.Fatalf("inspect: %v", err)
	}
	e.removeAll(t)
}

func TestLoadRefusesBadArchives(t *testing.T) {
	layerTar := rawTar(t, map[string]string{"f": "data"})
	good := func(mutateEntries func([]tarEntry) []tarEntry) []byte {
		cb, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
			"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest.FromBytes(layerTar).String()}}})
		cd := digest.FromBytes(cb)
		ld := digest.FromBytes(layerTar)
		man, _ := json.Marshal([]map[string]any{{"Config": "blobs/sha256/" + cd.Encoded(), "RepoTags": []string{"bad/app:1"},
			"Layers": []string{"blobs/sha256/" + ld.Encoded()}}})
		es := []tarEntry{
			{name: "blobs/sha256/" + cd.Encoded(), typeflag: tar.TypeReg, body: cb},
			{name: "blobs/sha256/" + ld.Encoded(), typeflag: tar.TypeReg, body: layerTar},
			{name: "manifest.json", typeflag: tar.TypeReg, body: man},
		}
		return buildTar(t, mutateEntries(es))
	}
	cases := map[string][]byte{
		"dotdot": good(func(es []tarEntry) []tarEntry {
			return append(es, tarEntry{name: "../evil", typeflag: tar.TypeReg, body: []byte("x")})
		}),
		"absolute": good(func(es []tarEntry) []tarEntry {
			return append(es, tarEntry{name: "/tmp/evil", typeflag: tar.TypeReg, body: []byte("x")})
		}),
		"symlink": good(func(es []tarEntry) []tarEntry {
			return append([]tarEntry{{name: "blobs", typeflag: tar.TypeSymlink, link: "/tmp"}}, es...)
		}),
		"hardlink": good(func(es []tarEntry) []tarEntry {
			return append(es, tarEntry{name: "passwd", typeflag: tar.TypeLink, link: "/etc/passwd"})
		}),
		"missing blob": good(func(es []tarEntry) []tarEntry { return append(es[:1:1], es[2]) }),
		"wrong digest": good(func(es []tarEntry) []tarEntry {
			es[1].body = rawTar(t, map[string]string{"f": "DATA"})
			return es
		}),
		"not an archive": []byte("hello, world"),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, nil)
			_, err := e.svc.Load(ctx, bytes.NewReader(data), nil)
			if !errdefs.Is(err, errdefs.InvalidArgument) {
				t.Fatalf("load: %v", err)
			}
			t.Logf("refused: %v", err)
			n := 0
			e.svc.db.View(func(tx *bolt.Tx) error {
				n = tx.Bucket(bucketImages).Stats().KeyN + tx.Bucket(bucketRefs).Stats().KeyN
				return nil
			})
			if n != 0 {
				t.Fatalf("%d records after a refused load", n)
			}
			if _, err := e.svc.GC(ctx); err != nil {
				t.Fatal(err)
			}
			e.storesEmpty(t)
			if left, _ := filepath.Glob(filepath.Join(e.root, "load-*")); len(left) > 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
	// The same archive, unmodified, loads.
	e := newEnv(t, nil)
	if _, err := e.svc.Load(context.Background(), bytes.NewReader(good(func(es []tarEntry) []tarEntry { return es })), nil); err != nil {
		t.Fatalf("good archive: %v", err)
	}
}

// A multi-image OCI layout written by go-containerregistry, zstd-compressed.
func TestLoadOCILayoutZstd(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	img := testImage(t, "amd64", map[string]string{"z": "1"})
	dir := t.TempDir()
	lp, err := layoutWrite(dir, img, "docker.io/library/zz:1")
	if err != nil {
		t.Fatal(err)
	}
	_ = lp
	var plain bytes.Buffer
	tw := tar.NewWriter(&plain)
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, _ := os.ReadFile(p)
		tw.WriteHeader(&tar.Header{Name: rel, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
		return nil
	})
	tw.Close()
	var z bytes.Buffer
	w := archive.Compress(&z, archive.Zstd, 0)
	w.Write(plain.Bytes())
	w.Close()
	loaded, err := e.svc.Load(ctx, &z, nil)
	if err != nil || len(loaded) != 1 || loaded[0] != "zz:1" {
		t.Fatalf("load: %v %v", loaded, err)
	}
	e.removeAll(t)
}

func nameTag(s string) (name.Tag, error) { return name.NewTag(s) }

func layoutWrite(dir string, img v1.Image, ref string) (layout.Path, error) {
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return "", err
	}
	return lp, lp.AppendImage(img, layout.WithAnnotations(map[string]string{annotationImageName: ref, annotationRefName: "1"}))
}

// Two images in one archive, the second with a config whose diff ID does
// not match its layer: nothing is recorded, not even the first image.
func TestLoadIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	var es []tarEntry
	var man []map[string]any
	for i, diffOK := range []bool{true, false} {
		l := rawTar(t, map[string]string{"f": fmt.Sprint(i)})
		diff := digest.FromBytes(l)
		if !diffOK {
			diff = digest.FromString("something else")
		}
		cb, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
			"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diff.String()}}})
		cd, ld := digest.FromBytes(cb), digest.FromBytes(l)
		es = append(es,
			tarEntry{name: "blobs/sha256/" + cd.Encoded(), typeflag: tar.TypeReg, body: cb},
			tarEntry{name: "blobs/sha256/" + ld.Encoded(), typeflag: tar.TypeReg, body: l})
		man = append(man, map[string]any{"Config": "blobs/sha256/" + cd.Encoded(), "RepoTags": []string{fmt.Sprintf("two/app:%d", i)},
			"Layers": []string{"blobs/sha256/" + ld.Encoded()}})
	}
	mb, _ := json.Marshal(man)
	es = append(es, tarEntry{name: "manifest.json", typeflag: tar.TypeReg, body: mb})
	_, err := e.svc.Load(ctx, bytes.NewReader(buildTar(t, es)), nil)
	if !errdefs.Is(err, errdefs.InvalidArgument) || !strings.Contains(err.Error(), "the image config says") {
		t.Fatalf("load: %v", err)
	}
	if list, err := e.svc.List(ctx, ListFilters{All: true}); err != nil || len(list) != 0 {
		t.Fatalf("images after a failed load: %v %v", list, err)
	}
	if _, err := e.svc.GC(ctx); err != nil {
		t.Fatal(err)
	}
	e.storesEmpty(t)
}
