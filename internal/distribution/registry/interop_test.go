package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth/internal/distribution/registry"
	"github.com/berth-dev/berth/internal/fixture"
)

// ociConformanceVersion is the OCI distribution-spec conformance suite
// (github.com/opencontainers/distribution-spec/conformance) that is run
// against berth's registry.
const ociConformanceVersion = "v0.0.0-20260831232431-97274622c111"

// TestOCIConformanceSuite runs the distribution-spec's own conformance
// suite against berth (with basic auth on). sha512 content is left out:
// berth's content store is sha256-only.
func TestOCIConformanceSuite(t *testing.T) {
	bin := fixture.GoInstall(t, "github.com/opencontainers/distribution-spec/conformance", ociConformanceVersion, "berth-oci-conformance")
	h, err := registry.HashPassword("conformance")
	if err != nil {
		t.Fatal(err)
	}
	host := serveBerth(t, registry.Options{Htpasswd: map[string]string{"oci": h}})
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+host, "OCI_TLS=disabled", "OCI_VERSION=1.1",
		"OCI_USERNAME=oci", "OCI_PASSWORD=conformance",
		"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2",
		"OCI_RESULTS_DIR="+filepath.Join(dir, "results"), "OCI_LOG=warn",
		"OCI_API_BLOBS_UPLOAD_CANCEL=true", "OCI_DATA_SHA512=false",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("conformance suite failed: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("OCI Conformance Test: Pass")) {
		t.Fatalf("conformance suite did not report a pass:\n%s", out)
	}
}

func rawManifest(t *testing.T, s string) (types.MediaType, []byte) {
	t.Helper()
	d, err := remote.Get(ref(t, s))
	if err != nil {
		t.Fatalf("get %s: %v", s, err)
	}
	return d.MediaType, d.Manifest
}

// copyRef does what `crane copy` does for one image or index: pull from
// src (validated) and push to dst.
func copyRef(t *testing.T, src, dst string) {
	t.Helper()
	d, err := remote.Get(ref(t, src))
	if err != nil {
		t.Fatalf("get %s: %v", src, err)
	}
	if d.MediaType.IsIndex() {
		idx := pullIndex(t, ref(t, src))
		if err := remote.WriteIndex(ref(t, dst), idx); err != nil {
			t.Fatalf("copy %s -> %s: %v", src, dst, err)
		}
	} else {
		img := pullImage(t, ref(t, src))
		if err := remote.Write(ref(t, dst), img); err != nil {
			t.Fatalf("copy %s -> %s: %v", src, dst, err)
		}
	}
	// The destination serves the same bytes, and they validate.
	smt, sb := rawManifest(t, src)
	dmt, db := rawManifest(t, dst)
	if smt != dmt || !bytes.Equal(sb, db) {
		t.Fatalf("copy %s -> %s changed the manifest (%s vs %s)", src, dst, smt, dmt)
	}
	if d.MediaType.IsIndex() {
		pullIndex(t, ref(t, dst))
	} else {
		pullImage(t, ref(t, dst))
	}
}

func TestInteropWithDistribution(t *testing.T) {
	dist := fixture.StartDistribution(t, "")
	berth := serveBerth(t, registry.Options{})

	img, err := random.Image(8192, 3)
	if err != nil {
		t.Fatal(err)
	}
	ociImg := mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	idx, err := random.Index(2048, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	list := mutate.IndexMediaType(idx, types.DockerManifestList)

	push := func(host, repo string, v any) {
		t.Helper()
		var err error
		switch x := v.(type) {
		case v1.Image:
			err = remote.Write(ref(t, host+"/"+repo), x)
		case v1.ImageIndex:
			err = remote.WriteIndex(ref(t, host+"/"+repo), x)
		}
		if err != nil {
			t.Fatalf("push %s/%s: %v", host, repo, err)
		}
	}
	for _, c := range []struct {
		name string
		v    any
	}{
		{"docker-image", img},
		{"oci-image", ociImg},
		{"oci-index", idx},
		{"docker-list", list},
	} {
		t.Run(c.name, func(t *testing.T) {
			// Distribution -> berth.
			push(dist, "from/dist:"+c.name, c.v)
			copyRef(t, dist+"/from/dist:"+c.name, berth+"/library/copied:"+c.name)
			// Berth -> distribution.
			push(berth, "from/berth:"+c.name, c.v)
			copyRef(t, berth+"/from/berth:"+c.name, dist+"/copied/back:"+c.name)
		})
	}
}

// TestInteropHtpasswdFile serves one htpasswd file (bcrypt, as
// `htpasswd -B` writes) from both registries: the same credentials work.
func TestInteropHtpasswdFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "htpasswd")
	// "interop", hashed by libxcrypt's bcrypt at cost 4.
	line := "ci:$2y$04$berthinteropsaltsaltsOeLAD7TW9gR.TZxxyYTw6TLQs9R.kOvO\n"
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	dist := fixture.StartDistribution(t, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	users, err := registry.ParseHtpasswd(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	berth := serveBerth(t, registry.Options{Htpasswd: users})
	img, _ := random.Image(256, 1)
	good := remote.WithAuth(&authn.Basic{Username: "ci", Password: "interop"})
	bad := remote.WithAuth(&authn.Basic{Username: "ci", Password: "wrong"})
	for _, host := range []string{dist, berth} {
		r := ref(t, host+"/auth/img:v1")
		if err := remote.Write(r, img, bad); err == nil {
			t.Fatalf("%s accepted a wrong password", host)
		}
		if err := remote.Write(r, img, good); err != nil {
			t.Fatalf("%s refused the right password: %v", host, err)
		}
		pullImage(t, r, good)
	}
}

// TestCompareErrorsWithDistribution sends the same requests to both
// registries and compares statuses and error codes.
func TestCompareErrorsWithDistribution(t *testing.T) {
	dist := fixture.StartDistribution(t, "")
	berth := serveBerth(t, registry.Options{})
	img, _ := random.Image(512, 1)
	for _, host := range []string{dist, berth} {
		if err := remote.Write(ref(t, host+"/cmp/repo:v1"), img); err != nil {
			t.Fatal(err)
		}
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	unknown := "sha256:" + fmt.Sprintf("%064x", 42)
	missingManifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":2},"layers":[]}`, unknown)
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
	}{
		{"base", "GET", "/v2/", "", nil},
		{"unknown manifest tag", "GET", "/v2/cmp/repo/manifests/nope", "", nil},
		{"unknown manifest digest", "GET", "/v2/cmp/repo/manifests/" + unknown, "", nil},
		{"unknown blob", "GET", "/v2/cmp/repo/blobs/" + unknown, "", nil},
		{"known blob", "HEAD", "/v2/cmp/repo/blobs/" + ld.String(), "", nil},
		{"blob range", "GET", "/v2/cmp/repo/blobs/" + ld.String(), "", map[string]string{"Range": "bytes=0-9"}},
		{"bad digest", "GET", "/v2/cmp/repo/blobs/sha256:abc", "", nil},
		{"tags", "GET", "/v2/cmp/repo/tags/list", "", nil},
		{"tags of unknown repo", "GET", "/v2/cmp/none/tags/list", "", nil},
		{"bad name", "GET", "/v2/CMP/repo/tags/list", "", nil},
		{"monolithic bad digest", "POST", "/v2/cmp/repo/blobs/uploads/?digest=" + unknown, "hello", nil},
		{"manifest missing blob", "PUT", "/v2/cmp/repo/manifests/broken", missingManifest, map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}},
		{"manifest bad json", "PUT", "/v2/cmp/repo/manifests/broken", "{", map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}},
		{"unknown upload", "GET", "/v2/cmp/repo/blobs/uploads/6f1c4a0e-1111-4222-8333-944455556666", "", nil},
		{"delete unknown tag", "DELETE", "/v2/cmp/repo/manifests/" + unknown, "", nil},
	}
	type result struct {
		status int
		code   string
	}
	do := func(host string, c struct {
		name, method, path, body string
		hdr                      map[string]string
	}) result {
		req, _ := http.NewRequest(c.method, "http://"+host+c.path, bytes.NewBufferString(c.body))
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(res.Body)
		r := result{status: res.StatusCode}
		var eb struct{ Errors []struct{ Code string } }
		if json.Unmarshal(b.Bytes(), &eb) == nil && len(eb.Errors) > 0 {
			r.code = eb.Errors[0].Code
		}
		return r
	}
	// Where berth follows the spec and the reference registry does not.
	differs := map[string]result{
		// Distribution's router does not match the name and answers 404
		// NAME_UNKNOWN; the spec's code for a malformed name is NAME_INVALID.
		"bad name": {400, "NAME_INVALID"},
		// Distribution ignores ?digest on POST (no single-request monolithic
		// upload) and opens a session; berth verifies and refuses the body.
		"monolithic bad digest": {400, "DIGEST_INVALID"},
	}
	for _, c := range cases {
		ref, got := do(dist, c), do(berth, c)
		want, known := differs[c.name]
		if !known {
			want = ref
		}
		if want != got {
			t.Errorf("%s: berth %+v, want %+v (distribution: %+v)", c.name, got, want, ref)
		}
	}
	// Chunked upload out of order: both answer 416.
	for _, host := range []string{dist, berth} {
		res, err := http.Post("http://"+host+"/v2/cmp/repo/blobs/uploads/", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		loc := res.Header.Get("Location")
		if loc == "" || loc[0] == '/' {
			loc = "http://" + host + loc
		}
		req, _ := http.NewRequest("PATCH", loc, bytes.NewBufferString("abc"))
		req.Header.Set("Content-Range", "5-7")
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("%s: out-of-order PATCH status %d", host, res.StatusCode)
		}
	}
}
