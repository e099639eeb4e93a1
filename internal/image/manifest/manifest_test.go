package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func dg(s string) digest.Digest { return digest.FromString(s) }

func TestParseKinds(t *testing.T) {
	manifestDoc := `{"schemaVersion":2,"config":{"mediaType":"` + ocispec.MediaTypeImageConfig + `","digest":"` + dg("c").String() + `","size":3},"layers":[]}`
	indexDoc := `{"schemaVersion":2,"manifests":[]}`
	tests := []struct {
		name, served, doc string
		kind              Kind
		mediaType         string
		class             errdefs.Class // when an error is expected
		errSub            string
	}{
		{"oci manifest served", ocispec.MediaTypeImageManifest, manifestDoc, KindManifest, ocispec.MediaTypeImageManifest, 0, ""},
		{"docker manifest served, no field", MediaTypeDockerManifest, manifestDoc, KindManifest, MediaTypeDockerManifest, 0, ""},
		{"charset parameter", MediaTypeDockerManifest + "; charset=utf-8", manifestDoc, KindManifest, MediaTypeDockerManifest, 0, ""},
		{"upper case header", strings.ToUpper(ocispec.MediaTypeImageIndex), indexDoc, KindIndex, ocispec.MediaTypeImageIndex, 0, ""},
		{"no header manifest", "", manifestDoc, KindManifest, ocispec.MediaTypeImageManifest, 0, ""},
		{"json header index", "application/json", indexDoc, KindIndex, ocispec.MediaTypeImageIndex, 0, ""},
		{"text/plain index", "text/plain", indexDoc, KindIndex, ocispec.MediaTypeImageIndex, 0, ""},
		{"content field wins", "", `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifestList + `","manifests":[]}`, KindIndex, MediaTypeDockerManifestList, 0, ""},
		{"docker flavour of same kind", ocispec.MediaTypeImageManifest, `{"schemaVersion":2,"mediaType":"` + MediaTypeDockerManifest + `","config":{},"layers":[]}`, KindManifest, MediaTypeDockerManifest, 0, ""},
		{"kind mismatch", MediaTypeDockerManifest, `{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageIndex + `","manifests":[]}`, 0, "", errdefs.InvalidArgument, "served as"},
		{"manifest header, index body", ocispec.MediaTypeImageManifest, indexDoc, 0, "", errdefs.InvalidArgument, `document has "manifests"`},
		{"index header, manifest body", ocispec.MediaTypeImageIndex, manifestDoc, 0, "", errdefs.InvalidArgument, `document has "config"`},
		{"not json", "", `{"schemaVersion":`, 0, "", errdefs.InvalidArgument, "invalid manifest"},
		{"json array", "", `[]`, 0, "", errdefs.InvalidArgument, "invalid manifest"},
		{"unknowable", "", `{"schemaVersion":2}`, 0, "", errdefs.InvalidArgument, "neither"},
		{"schema version 3", "", `{"schemaVersion":3,"manifests":[]}`, 0, "", errdefs.InvalidArgument, "schemaVersion is 3"},
		{"schema version missing", ocispec.MediaTypeImageIndex, `{"manifests":[]}`, 0, "", errdefs.InvalidArgument, "schemaVersion is missing"},
		{"schema1 by version", "", `{"schemaVersion":1,"name":"x"}`, 0, "", errdefs.NotImplemented, "schema 1"},
		{"schema1 by header", MediaTypeDockerSchema1Manifest, `{}`, 0, "", errdefs.NotImplemented, "schema 1"},
		{"unknown header", "application/vnd.example+json", manifestDoc, 0, "", errdefs.NotImplemented, "not an image manifest or index"},
		{"unknown content type", "", `{"schemaVersion":2,"mediaType":"application/x-foo","config":{}}`, 0, "", errdefs.NotImplemented, "not an image manifest"},
		{"wrong field type", "", `{"schemaVersion":2,"layers":{}}`, 0, "", errdefs.InvalidArgument, "invalid manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, m, idx, err := Parse(tt.served, []byte(tt.doc))
			if tt.errSub != "" {
				if err == nil {
					t.Fatalf("Parse succeeded with kind %v", kind)
				}
				if !strings.Contains(err.Error(), tt.errSub) || errdefs.ClassOf(err) != tt.class {
					t.Fatalf("err = %v (%v), want %q (%v)", err, errdefs.ClassOf(err), tt.errSub, tt.class)
				}
				if kind != KindUnknown || m != nil || idx != nil {
					t.Errorf("results on error: %v %v %v", kind, m, idx)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kind != tt.kind {
				t.Fatalf("kind = %v, want %v", kind, tt.kind)
			}
			switch kind {
			case KindManifest:
				if m == nil || idx != nil || m.MediaType != tt.mediaType {
					t.Errorf("manifest %+v idx %v", m, idx)
				}
			case KindIndex:
				if idx == nil || m != nil || idx.MediaType != tt.mediaType {
					t.Errorf("index %+v manifest %v", idx, m)
				}
			}
		})
	}
}

func TestKindString(t *testing.T) {
	if KindManifest.String() != "manifest" || KindIndex.String() != "index" || KindUnknown.String() != "unknown" {
		t.Error("Kind.String")
	}
}

func TestMediaTypeClassification(t *testing.T) {
	if !IsManifest(MediaTypeDockerManifest) || !IsManifest(ocispec.MediaTypeImageManifest) || IsManifest(ocispec.MediaTypeImageIndex) {
		t.Error("IsManifest")
	}
	if !IsIndex(MediaTypeDockerManifestList) || !IsIndex(ocispec.MediaTypeImageIndex+"; x=y") || IsIndex(MediaTypeDockerManifest) {
		t.Error("IsIndex")
	}
	if !IsConfig(MediaTypeDockerConfig) || !IsConfig(ocispec.MediaTypeImageConfig) || IsConfig(ocispec.MediaTypeEmptyJSON) {
		t.Error("IsConfig")
	}
	if !IsLayer(MediaTypeDockerForeignLayer) || !IsLayer(ocispec.MediaTypeImageLayerZstd) || IsLayer(ocispec.MediaTypeImageConfig) {
		t.Error("IsLayer")
	}
	if !IsDocker(MediaTypeDockerLayer) || IsDocker(ocispec.MediaTypeImageLayer) {
		t.Error("IsDocker")
	}
	if !strings.HasPrefix(ManifestAccept, ocispec.MediaTypeImageIndex+", ") {
		t.Errorf("ManifestAccept = %q", ManifestAccept)
	}
}

func TestLayerCompression(t *testing.T) {
	tests := []struct {
		mt      string
		want    Compression
		foreign bool
		unknown bool
	}{
		{MediaTypeDockerLayer, Gzip, false, false},
		{MediaTypeDockerLayerZstd, Zstd, false, false},
		{MediaTypeDockerLayerUncompressed, Uncompressed, false, false},
		{ocispec.MediaTypeImageLayer, Uncompressed, false, false},
		{ocispec.MediaTypeImageLayerGzip, Gzip, false, false},
		{ocispec.MediaTypeImageLayerZstd, Zstd, false, false},
		{ocispec.MediaTypeImageLayerGzip + "; foo=bar", Gzip, false, false},
		{MediaTypeDockerForeignLayer, 0, true, false},
		{MediaTypeDockerForeignLayerTar, 0, true, false},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar", 0, true, false},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", 0, true, false},
		{"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", 0, true, false},
		{"application/vnd.oci.image.layer.v1.tar+gzip+encrypted", 0, false, true},
		{"application/octet-stream", 0, false, true},
		{"", 0, false, true},
	}
	for _, tt := range tests {
		c, err := LayerCompression(tt.mt)
		switch {
		case tt.foreign:
			if !errors.Is(err, ErrForeignLayer) || !errdefs.Is(err, errdefs.NotImplemented) ||
				err.Error() != "foreign layers are not supported: "+tt.mt {
				t.Errorf("LayerCompression(%q) err = %v", tt.mt, err)
			}
		case tt.unknown:
			if !errors.Is(err, ErrUnsupportedMediaType) || !errdefs.Is(err, errdefs.NotImplemented) {
				t.Errorf("LayerCompression(%q) err = %v", tt.mt, err)
			}
		default:
			if err != nil || c != tt.want {
				t.Errorf("LayerCompression(%q) = %v, %v; want %v", tt.mt, c, err, tt.want)
			}
		}
	}
	d := ocispec.Descriptor{MediaType: MediaTypeDockerForeignLayer, Digest: dg("x"), Size: 1}
	_, err := CheckLayer(d)
	if want := "foreign layers are not supported: " + MediaTypeDockerForeignLayer + " " + dg("x").String(); err == nil || err.Error() != want {
		t.Errorf("CheckLayer err = %v, want %q", err, want)
	}
	for c, s := range map[Compression]string{Uncompressed: "uncompressed", Gzip: "gzip", Zstd: "zstd", 9: "compression(9)"} {
		if c.String() != s {
			t.Errorf("%d.String() = %q", int(c), c.String())
		}
	}
}

func validManifest() *ocispec.Manifest {
	m := &ocispec.Manifest{
		MediaType: MediaTypeDockerManifest,
		Config:    ocispec.Descriptor{MediaType: MediaTypeDockerConfig, Digest: dg("cfg"), Size: 100},
		Layers: []ocispec.Descriptor{
			{MediaType: MediaTypeDockerLayer, Digest: dg("l0"), Size: 10},
			{MediaType: ocispec.MediaTypeImageLayerZstd, Digest: dg("l1"), Size: 20},
		},
	}
	m.SchemaVersion = 2
	return m
}

func TestValidateManifest(t *testing.T) {
	tests := []struct {
		name   string
		change func(m *ocispec.Manifest)
		class  errdefs.Class
		errSub string
	}{
		{"valid", func(*ocispec.Manifest) {}, 0, ""},
		{"no layers", func(m *ocispec.Manifest) { m.Layers = nil }, 0, ""},
		{"no media type", func(m *ocispec.Manifest) { m.MediaType = "" }, 0, ""},
		{"schema version", func(m *ocispec.Manifest) { m.SchemaVersion = 1 }, errdefs.InvalidArgument, "schemaVersion is 1"},
		{"index media type", func(m *ocispec.Manifest) { m.MediaType = ocispec.MediaTypeImageIndex }, errdefs.InvalidArgument, "not an image manifest"},
		{"no config", func(m *ocispec.Manifest) { m.Config = ocispec.Descriptor{} }, errdefs.InvalidArgument, "no config descriptor"},
		{"artifact config", func(m *ocispec.Manifest) { m.Config.MediaType = ocispec.MediaTypeEmptyJSON }, errdefs.NotImplemented, "not a container image config"},
		{"config digest", func(m *ocispec.Manifest) { m.Config.Digest = "sha256:abc" }, errdefs.InvalidArgument, "config: digest"},
		{"config no digest", func(m *ocispec.Manifest) { m.Config.Digest = "" }, errdefs.InvalidArgument, "config: digest"},
		{"config size", func(m *ocispec.Manifest) { m.Config.Size = 0 }, errdefs.InvalidArgument, "size must be positive"},
		{"layer size", func(m *ocispec.Manifest) { m.Layers[1].Size = -1 }, errdefs.InvalidArgument, "layers[1]"},
		{"layer digest", func(m *ocispec.Manifest) { m.Layers[0].Digest = "md5:00" }, errdefs.InvalidArgument, "layers[0]: digest"},
		{"layer type", func(m *ocispec.Manifest) { m.Layers[1].MediaType = "application/x-tar" }, errdefs.NotImplemented, "layers[1]: unsupported media type"},
		{"foreign layer", func(m *ocispec.Manifest) { m.Layers[0].MediaType = MediaTypeDockerForeignLayer }, errdefs.NotImplemented, "layers[0]: foreign layers are not supported: " + MediaTypeDockerForeignLayer + " " + dg("l0").String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validManifest()
			tt.change(m)
			err := ValidateManifest(m)
			if tt.errSub == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.errSub) || errdefs.ClassOf(err) != tt.class {
				t.Fatalf("err = %v (%v), want %q (%v)", err, errdefs.ClassOf(err), tt.errSub, tt.class)
			}
		})
	}
	if err := ValidateManifest(nil); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("nil manifest: %v", err)
	}
}

func TestValidateIndex(t *testing.T) {
	valid := func() *ocispec.Index {
		idx := &ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageManifest, Digest: dg("a"), Size: 5},
			{MediaType: "application/vnd.example.signature", Digest: dg("b"), Size: 5},
		}}
		idx.SchemaVersion = 2
		return idx
	}
	if err := ValidateIndex(valid()); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*ocispec.Index){
		"schema":     func(i *ocispec.Index) { i.SchemaVersion = 0 },
		"media type": func(i *ocispec.Index) { i.MediaType = MediaTypeDockerManifest },
		"entry type": func(i *ocispec.Index) { i.Manifests[0].MediaType = "" },
		"digest":     func(i *ocispec.Index) { i.Manifests[1].Digest = "nope" },
		"size":       func(i *ocispec.Index) { i.Manifests[0].Size = 0 },
	} {
		idx := valid()
		change(idx)
		if err := ValidateIndex(idx); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if err := ValidateIndex(nil); err == nil {
		t.Error("nil index validated")
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"linux/amd64", "linux/amd64"},
		{"Linux/X86_64", "linux/amd64"},
		{"linux/x86-64/v1", "linux/amd64"},
		{"linux/amd64/v3", "linux/amd64/v3"},
		{"linux/i386", "linux/386"},
		{"linux/aarch64", "linux/arm64"},
		{"linux/arm64/v8", "linux/arm64"},
		{"linux/arm64/8", "linux/arm64"},
		{"linux/arm64/v8.0", "linux/arm64"},
		{"linux/arm64/v9", "linux/arm64/v9"},
		{"linux/arm", "linux/arm/v7"},
		{"linux/arm/6", "linux/arm/v6"},
		{"linux/armhf", "linux/arm/v7"},
		{"linux/armel", "linux/arm/v6"},
		{"macos/arm64", "darwin/arm64"},
		{"windows/amd64", "windows/amd64"},
		{"linux/riscv64", "linux/riscv64"},
	}
	for _, tt := range tests {
		parts := strings.Split(tt.in, "/")
		p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
		if got := FormatPlatform(Normalize(p)); got != tt.want {
			t.Errorf("Normalize(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
	p := Normalize(ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.1"})
	if p.OSVersion != "10.0.1" {
		t.Error("Normalize dropped os.version")
	}
}

func TestParsePlatform(t *testing.T) {
	def := Normalize(DefaultPlatform())
	tests := []struct{ in, want, errSub string }{
		{"linux/arm64/v8", "linux/arm64", ""},
		{"linux/amd64", "linux/amd64", ""},
		{"LINUX/AMD64", "linux/amd64", ""},
		{"linux/arm", "linux/arm/v7", ""},
		{"linux/arm/v6", "linux/arm/v6", ""},
		{"linux", FormatPlatform(def), ""},
		{"arm64", runtime.GOOS + "/arm64", ""},
		{"aarch64", runtime.GOOS + "/arm64", ""},
		{"windows", "windows/" + def.Architecture + variantSuffix(def), ""},
		{"", "", "empty component"},
		{"linux/", "", "empty component"},
		{"/amd64", "", "empty component"},
		{"linux/amd64/v2/x", "", "want os[/arch[/variant]]"},
		{"foo", "", "unknown operating system or architecture"},
		{"linux/am d64", "", "unexpected character"},
	}
	for _, tt := range tests {
		p, err := ParsePlatform(tt.in)
		if tt.errSub != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errSub) || !errdefs.Is(err, errdefs.InvalidArgument) {
				t.Errorf("ParsePlatform(%q) err = %v, want %q", tt.in, err, tt.errSub)
			}
			continue
		}
		if err != nil || FormatPlatform(p) != tt.want {
			t.Errorf("ParsePlatform(%q) = %s, %v; want %s", tt.in, FormatPlatform(p), err, tt.want)
		}
	}
}

func variantSuffix(p ocispec.Platform) string {
	if p.Variant == "" {
		return ""
	}
	return "/" + p.Variant
}

func TestDefaultPlatform(t *testing.T) {
	p := DefaultPlatform()
	if p.OS != runtime.GOOS || p.Architecture != runtime.GOARCH {
		t.Fatalf("DefaultPlatform = %+v", p)
	}
	want := map[string]string{"amd64": "", "arm64": "v8", "386": ""}
	if v, ok := want[runtime.GOARCH]; ok && p.Variant != v {
		t.Errorf("variant = %q, want %q", p.Variant, v)
	}
	if cpuVariant("arm64") != "v8" || cpuVariant("s390x") != "" {
		t.Error("cpuVariant")
	}
	if v := cpuVariant("arm"); v != "v5" && v != "v6" && v != "v7" {
		t.Errorf("cpuVariant(arm) = %q", v)
	}
}

func TestMatchPlatform(t *testing.T) {
	pl := func(s string) ocispec.Platform {
		parts := strings.Split(s, "/")
		p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
		return p
	}
	tests := []struct {
		want, have string
		ok         bool
	}{
		{"linux/amd64", "linux/amd64", true},
		{"linux/amd64", "linux/amd64/v1", true},
		{"linux/amd64", "linux/x86_64", true},
		{"linux/amd64", "linux/386", true},
		{"linux/amd64", "linux/amd64/v2", false},
		{"linux/amd64/v3", "linux/amd64/v2", true},
		{"linux/amd64/v3", "linux/amd64", true},
		{"linux/amd64/v2", "linux/amd64/v3", false},
		{"linux/amd64", "windows/amd64", false},
		{"linux/arm64", "linux/arm64/v8", true},
		{"linux/arm64/v8", "linux/arm64", true},
		{"linux/arm64", "linux/aarch64", true},
		{"linux/arm64", "linux/arm/v7", true},
		{"linux/arm64", "linux/arm", true},
		{"linux/arm64", "linux/arm/v5", true},
		{"linux/arm64/v9", "linux/arm64", true},
		{"linux/arm64", "linux/arm64/v9", false},
		{"linux/arm/v7", "linux/arm/v6", true},
		{"linux/arm/v7", "linux/arm", true},
		{"linux/arm/v6", "linux/arm", false},
		{"linux/arm/v6", "linux/arm/v7", false},
		{"linux/arm", "linux/arm64", false},
		{"linux/386", "linux/amd64", false},
		{"linux/s390x", "linux/s390x", true},
		{"linux/ppc64le", "linux/ppc64", false},
	}
	for _, tt := range tests {
		if got := MatchPlatform(pl(tt.want), pl(tt.have)); got != tt.ok {
			t.Errorf("MatchPlatform(want %s, have %s) = %v", tt.want, tt.have, got)
		}
	}
	// os.version is ignored.
	if !MatchPlatform(ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763"},
		ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348"}) {
		t.Error("os.version not ignored")
	}
}

func TestSelectPlatform(t *testing.T) {
	entry := func(name, mt string, p *ocispec.Platform) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: dg(name), Size: 1, Platform: p}
	}
	plat := func(os, arch, variant string) *ocispec.Platform {
		return &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}
	}
	idx := &ocispec.Index{Manifests: []ocispec.Descriptor{
		entry("sig", "application/vnd.example.signature", plat("linux", "amd64", "")), // not an image: skipped
		entry("armv6", ocispec.MediaTypeImageManifest, plat("linux", "arm", "v6")),
		entry("386", ocispec.MediaTypeImageManifest, plat("linux", "386", "")),
		entry("amd64-a", ocispec.MediaTypeImageManifest, plat("linux", "amd64", "")),
		entry("amd64-b", ocispec.MediaTypeImageManifest, plat("linux", "amd64", "")),
		entry("nested", ocispec.MediaTypeImageIndex, plat("linux", "s390x", "")),
		entry("armv7", MediaTypeDockerManifest, plat("linux", "arm", "")),
	}}
	tests := []struct{ want, got string }{
		{"linux/amd64", "amd64-a"}, // first of the best rank, in index order
		{"linux/amd64/v2", "amd64-a"},
		{"linux/386", "386"},
		{"linux/arm/v7", "armv7"}, // exact beats older arm/v6 listed first
		{"linux/arm/v6", "armv6"},
		{"linux/arm64", "armv7"},  // 32-bit arm fallback, best version first
		{"linux/s390x", "nested"}, // an index entry is returned for the caller to descend
		{"linux/riscv64", ""},
		{"windows/amd64", ""},
	}
	for _, tt := range tests {
		want, err := ParsePlatform(tt.want)
		if err != nil {
			t.Fatal(err)
		}
		d, err := SelectPlatform(idx, want)
		if tt.got == "" {
			if !errdefs.Is(err, errdefs.NotFound) || err.Error() != fmt.Sprintf("no matching manifest for %s in the manifest list entries", tt.want) {
				t.Errorf("SelectPlatform(%s) = %v, %v; want not found", tt.want, d.Digest, err)
			}
			continue
		}
		if err != nil || d.Digest != dg(tt.got) {
			t.Errorf("SelectPlatform(%s) = %v, %v; want %s", tt.want, d.Digest, err, tt.got)
		}
	}

	// Entries without a platform are a last resort.
	noPlat := &ocispec.Index{Manifests: []ocispec.Descriptor{
		entry("any", ocispec.MediaTypeImageManifest, nil),
		entry("arm64", ocispec.MediaTypeImageManifest, plat("linux", "arm64", "v8")),
	}}
	if d, err := SelectPlatform(noPlat, ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}); err != nil || d.Digest != dg("arm64") {
		t.Errorf("exact entry not preferred: %v %v", d.Digest, err)
	}
	if d, err := SelectPlatform(noPlat, ocispec.Platform{OS: "linux", Architecture: "amd64"}); err != nil || d.Digest != dg("any") {
		t.Errorf("platform-less entry not used: %v %v", d.Digest, err)
	}
	if _, err := SelectPlatform(nil, DefaultPlatform()); !errdefs.Is(err, errdefs.NotFound) {
		t.Errorf("nil index: %v", err)
	}
}

func TestChainIDs(t *testing.T) {
	a, b, c := dg("a"), dg("b"), dg("c")
	sum := func(s string) digest.Digest {
		h := sha256.Sum256([]byte(s))
		return digest.Digest("sha256:" + hex.EncodeToString(h[:]))
	}
	ab := sum(a.String() + " " + b.String())
	abc := sum(ab.String() + " " + c.String())
	got := ChainIDs([]digest.Digest{a, b, c})
	if len(got) != 3 || got[0] != a || got[1] != ab || got[2] != abc {
		t.Fatalf("ChainIDs = %v", got)
	}
	if ChainID([]digest.Digest{a, b, c}) != abc || ChainID(nil) != "" || ChainIDs(nil) != nil {
		t.Error("ChainID")
	}
	// A shared base gives a shared prefix of chain IDs.
	other := ChainIDs([]digest.Digest{a, b, dg("d")})
	if other[1] != ab || other[2] == abc {
		t.Errorf("prefix sharing: %v", other)
	}
}

func TestLayerHistory(t *testing.T) {
	cfg := &Config{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{dg("1"), dg("2")}}}
	cfg.History = []ocispec.History{
		{CreatedBy: "ENV", EmptyLayer: true},
		{CreatedBy: "ADD"},
		{CreatedBy: "RUN"},
		{CreatedBy: "RUN extra"}, // no layer left for it
	}
	got := LayerHistory(cfg)
	want := []int{-1, 0, 1, -1}
	for i, h := range got {
		if h.LayerIndex != want[i] || h.CreatedBy != cfg.History[i].CreatedBy {
			t.Errorf("entry %d = %+v, want layer %d", i, h, want[i])
		}
	}
	if err := ValidateConfig(cfg); err == nil || !strings.Contains(err.Error(), "history has 3 entries with layers but rootfs has 2 layers") {
		t.Errorf("ValidateConfig = %v", err)
	}
	cfg.History = cfg.History[:3]
	if err := ValidateConfig(cfg); err != nil {
		t.Error(err)
	}
	cfg.History = nil // old images may lack history
	if err := ValidateConfig(cfg); err != nil || len(LayerHistory(cfg)) != 0 {
		t.Error(err)
	}
	if LayerHistory(nil) != nil {
		t.Error("LayerHistory(nil)")
	}
}

func TestValidateConfig(t *testing.T) {
	for name, tt := range map[string]struct {
		cfg    *Config
		errSub string
	}{
		"nil":        {nil, "missing"},
		"rootfs":     {&Config{RootFS: ocispec.RootFS{Type: "layer"}}, `rootfs.type is "layer"`},
		"diff id":    {&Config{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{"sha256:0"}}}, "rootfs.diff_ids[0]"},
		"no layers":  {&Config{RootFS: ocispec.RootFS{Type: "layers"}}, ""},
		"one layer":  {&Config{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{dg("x")}}}, ""},
		"history ok": {&Config{RootFS: ocispec.RootFS{Type: "layers"}, History: []ocispec.History{{EmptyLayer: true}}}, ""},
	} {
		err := ValidateConfig(tt.cfg)
		if tt.errSub == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.errSub) || !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("%s: err = %v, want %q", name, err, tt.errSub)
		}
	}
}

func TestConfigExtra(t *testing.T) {
	in := `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},` +
		`"config":{"Cmd":["a"],"Zed":1,"cmd":["ignored duplicate"]},"zz":true,"aa":{"b":null}}`
	cfg, err := ParseConfig([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if string(cfg.Extra["zz"]) != "true" || string(cfg.Extra["aa"]) != `{"b":null}` || len(cfg.Extra) != 2 {
		t.Errorf("Extra = %v", cfg.Extra)
	}
	if string(cfg.Config.Extra["Zed"]) != "1" || len(cfg.Config.Extra) != 1 {
		t.Errorf("Config.Extra = %v (case-insensitive duplicates of known keys are not extra)", cfg.Config.Extra)
	}
	out, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Known members first in struct order, then extras sorted.
	wantSuffix := `"rootfs":{"type":"layers","diff_ids":[]},"aa":{"b":null},"zz":true}`
	if !strings.HasSuffix(string(out), wantSuffix) {
		t.Errorf("marshal = %s", out)
	}

	// Extras that collide with known members are not written twice, and
	// invalid raw JSON is refused.
	c := Config{Extra: map[string]json.RawMessage{"OS": json.RawMessage(`"plan9"`), "x": nil}}
	c.OS = "linux"
	out, err = json.Marshal(c)
	if err != nil || strings.Contains(string(out), "plan9") || !strings.Contains(string(out), `"x":null`) {
		t.Errorf("collision: %s %v", out, err)
	}
	c.Extra = map[string]json.RawMessage{"bad": json.RawMessage(`{`)}
	if _, err := json.Marshal(c); err == nil {
		t.Error("invalid extra marshalled")
	}
	// An empty ContainerConfig with extras only.
	cc := ContainerConfig{Extra: map[string]json.RawMessage{"k": json.RawMessage(`"v"`)}}
	if out, err := json.Marshal(cc); err != nil || string(out) != `{"k":"v"}` {
		t.Errorf("extras only: %s %v", out, err)
	}

	if _, err := ParseConfig([]byte(`[]`)); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("ParseConfig([]) = %v", err)
	}
	if _, err := ParseConfig([]byte(`{"config":{"Cmd":5}}`)); err == nil {
		t.Error("bad Cmd accepted")
	}
}

func TestStrSlice(t *testing.T) {
	for in, want := range map[string][]string{
		`"echo hi"`:    {"echo hi"},
		`["a","b"]`:    {"a", "b"},
		`null`:         nil,
		`[]`:           {},
		`{"Cmd":null}`: nil, // handled below
	} {
		if strings.HasPrefix(in, "{") {
			continue
		}
		var s StrSlice
		if err := json.Unmarshal([]byte(in), &s); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if fmt.Sprint([]string(s)) != fmt.Sprint(want) || (want == nil) != (s == nil) {
			t.Errorf("%s → %#v, want %#v", in, s, want)
		}
	}
	var s StrSlice
	if err := json.Unmarshal([]byte(`1`), &s); err == nil {
		t.Error("number accepted")
	}
}

func TestOCIConversion(t *testing.T) {
	stop := 10
	cfg := &Config{
		Author:   "me",
		Platform: ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"},
		Config: ContainerConfig{
			User: "u", Env: []string{"A=1"}, Cmd: StrSlice{"c"}, Entrypoint: StrSlice{"e"},
			WorkingDir: "/w", Labels: map[string]string{"l": "v"}, StopSignal: "SIGINT", ArgsEscaped: true,
			ExposedPorts: map[string]struct{}{"80/tcp": {}}, Volumes: map[string]struct{}{"/v": {}},
			Healthcheck: &HealthConfig{Test: []string{"NONE"}}, OnBuild: []string{"RUN x"}, Shell: StrSlice{"sh"}, StopTimeout: &stop,
		},
		RootFS:  ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{dg("x")}},
		History: []ocispec.History{{CreatedBy: "x"}},
	}
	oci := cfg.OCI()
	if oci.Config.User != "u" || oci.Config.Cmd[0] != "c" || oci.Config.Entrypoint[0] != "e" || oci.Variant != "v8" ||
		oci.Config.StopSignal != "SIGINT" || !oci.Config.ArgsEscaped || len(oci.Config.ExposedPorts) != 1 || oci.Author != "me" {
		t.Errorf("OCI() = %+v", oci)
	}
	back := FromOCI(oci)
	if back.Config.Healthcheck != nil || back.Config.User != "u" || back.RootFS.DiffIDs[0] != dg("x") || back.OS != "linux" {
		t.Errorf("FromOCI = %+v", back)
	}
}

func TestParseManifestAndIndex(t *testing.T) {
	m, err := ParseManifest(readTestdata(t, "docker-manifest.json"))
	if err != nil || m.MediaType != MediaTypeDockerManifest || len(m.Layers) != 2 {
		t.Fatalf("ParseManifest = %+v, %v", m, err)
	}
	if _, err := ParseManifest(readTestdata(t, "oci-index.json")); !errdefs.Is(err, errdefs.InvalidArgument) || !strings.Contains(err.Error(), "is an index") {
		t.Errorf("ParseManifest(index) = %v", err)
	}
	if _, err := ParseManifest(readTestdata(t, "foreign-layer-manifest.json")); !errors.Is(err, ErrForeignLayer) {
		t.Errorf("ParseManifest(foreign) = %v", err)
	}
	if _, err := ParseManifest([]byte("nope")); err == nil {
		t.Error("ParseManifest(garbage) succeeded")
	}
	idx, err := ParseIndex(readTestdata(t, "docker-manifest-list.json"))
	if err != nil || idx.MediaType != MediaTypeDockerManifestList || len(idx.Manifests) != 8 {
		t.Fatalf("ParseIndex = %+v, %v", idx, err)
	}
	if _, err := ParseIndex(readTestdata(t, "docker-manifest.json")); !errdefs.Is(err, errdefs.InvalidArgument) || !strings.Contains(err.Error(), "is a manifest") {
		t.Errorf("ParseIndex(manifest) = %v", err)
	}
	if _, err := ParseIndex([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"bad","size":1}]}`)); err == nil {
		t.Error("ParseIndex validated nothing")
	}
	if _, err := ParseIndex([]byte("nope")); err == nil {
		t.Error("ParseIndex(garbage) succeeded")
	}
}
