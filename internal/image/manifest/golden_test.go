package manifest

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// checkGolden compares got with testdata/<name>.golden, or rewrites the
// file when -update is given.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file; run go test -update and review the diff.\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// goldenWants are the platforms every index fixture is resolved for.
var goldenWants = []string{
	"linux/amd64", "linux/amd64/v3", "linux/386", "linux/arm64", "linux/arm64/v8",
	"linux/arm/v7", "linux/arm/v6", "linux/arm/v5", "linux/ppc64le", "linux/s390x", "windows/amd64",
}

// TestGoldenManifests parses every manifest and index fixture, with the
// served media type given and with a generic one, and prints what berth
// makes of it: kind, media type, descriptors, layer compression,
// validation result and platform selection.
func TestGoldenManifests(t *testing.T) {
	fixtures := []struct{ file, served string }{
		{"docker-manifest.json", MediaTypeDockerManifest},
		{"oci-manifest-no-mediatype.json", ocispec.MediaTypeImageManifest},
		{"foreign-layer-manifest.json", MediaTypeDockerManifest},
		{"artifact-manifest.json", ocispec.MediaTypeImageManifest},
		{"docker-manifest-list.json", MediaTypeDockerManifestList},
		{"oci-index.json", ocispec.MediaTypeImageIndex},
		{"index-no-mediatype.json", ocispec.MediaTypeImageIndex},
		{"ambiguous.json", ocispec.MediaTypeImageIndex},
		{"schema1.json", MediaTypeDockerSchema1SignedManifest},
	}
	for _, f := range fixtures {
		name := strings.TrimSuffix(f.file, ".json")
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, f.file)
			var b strings.Builder
			for _, served := range []string{f.served, "application/octet-stream"} {
				fmt.Fprintf(&b, "== served as %s\n", served)
				describe(&b, served, data)
			}
			checkGolden(t, name, b.String())
		})
	}
}

func describe(b *strings.Builder, served string, data []byte) {
	kind, m, idx, err := Parse(served, data)
	if err != nil {
		fmt.Fprintf(b, "parse error: %v\n", err)
		return
	}
	fmt.Fprintf(b, "kind: %s\n", kind)
	switch kind {
	case KindManifest:
		fmt.Fprintf(b, "mediaType: %s\n", m.MediaType)
		fmt.Fprintf(b, "config: %s %s %d\n", m.Config.MediaType, m.Config.Digest, m.Config.Size)
		for i, l := range m.Layers {
			c, err := CheckLayer(l)
			state := c.String()
			if err != nil {
				state = "error: " + err.Error()
			}
			fmt.Fprintf(b, "layer %d: %s %s %d %s\n", i, l.MediaType, l.Digest, l.Size, state)
		}
		fmt.Fprintf(b, "validate: %s\n", errString(ValidateManifest(m)))
	case KindIndex:
		fmt.Fprintf(b, "mediaType: %s\n", idx.MediaType)
		for i, d := range idx.Manifests {
			p := "(none)"
			if d.Platform != nil {
				p = FormatPlatform(*d.Platform)
				if d.Platform.OSVersion != "" {
					p += " os.version=" + d.Platform.OSVersion
				}
			}
			fmt.Fprintf(b, "entry %d: %s %s %s\n", i, d.Digest, d.MediaType, p)
		}
		fmt.Fprintf(b, "validate: %s\n", errString(ValidateIndex(idx)))
		for _, w := range goldenWants {
			want, err := ParsePlatform(w)
			if err != nil {
				panic(err)
			}
			d, err := SelectPlatform(idx, want)
			if err != nil {
				fmt.Fprintf(b, "select %s: %v\n", w, err)
				continue
			}
			fmt.Fprintf(b, "select %s: %s\n", w, d.Digest)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}

// TestGoldenConfigs decodes each config fixture, writes it back and prints
// the result with its chain IDs, layer history and OCI view.
func TestGoldenConfigs(t *testing.T) {
	fixtures := []struct {
		file string
		// exact: writing back reproduces every member. oci-config.json
		// has a legacy string Cmd, which is written back as an array.
		exact bool
	}{
		{"docker-config.json", true},
		{"oci-config.json", false},
	}
	for _, f := range fixtures {
		file := f.file
		name := strings.TrimSuffix(file, ".json")
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, file)
			cfg, err := ParseConfig(data)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "validate: %s\n", errString(ValidateConfig(cfg)))
			fmt.Fprintf(&b, "platform: %s\n", FormatPlatform(cfg.Platform))
			out, err := json.MarshalIndent(cfg, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "re-encoded:\n%s\n", out)
			for i, c := range ChainIDs(cfg.RootFS.DiffIDs) {
				fmt.Fprintf(&b, "chain %d: %s\n", i, c)
			}
			for i, h := range LayerHistory(cfg) {
				fmt.Fprintf(&b, "history %d: layer %d empty=%v %s\n", i, h.LayerIndex, h.EmptyLayer, h.CreatedBy)
			}
			oci, err := json.MarshalIndent(cfg.OCI(), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "oci:\n%s\n", oci)
			checkGolden(t, name, b.String())

			// Writing back loses nothing: every member of the input
			// survives with an equal value.
			if f.exact {
				assertSameJSON(t, data, out)
			}
		})
	}
}

// assertSameJSON compares two JSON documents as values, ignoring members
// that encode Go zero values in the input (berth omits those).
func assertSameJSON(t *testing.T, in, out []byte) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatal(err)
	}
	dropZero(a)
	dropZero(b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("round trip changed the document:\n in: %s\nout: %s", ja, jb)
	}
}

func dropZero(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			switch x := x.(type) {
			case string:
				if x == "" {
					delete(v, k)
				}
			case bool:
				if !x {
					delete(v, k)
				}
			case nil:
				delete(v, k)
			default:
				dropZero(x)
			}
		}
	case []any:
		for _, x := range v {
			dropZero(x)
		}
	}
}
