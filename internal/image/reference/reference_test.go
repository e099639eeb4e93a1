package reference

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

const (
	hexA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	dgA  = "sha256:" + hexA
)

func TestParse(t *testing.T) {
	tests := []struct {
		in                        string
		domain, path, tag, digest string
		full, familiar            string
	}{
		{"busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io", "library/busybox", "1.36", "", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/library/busybox:v1", "docker.io", "library/busybox", "v1", "", "docker.io/library/busybox:v1", "busybox:v1"},
		{"index.docker.io/busybox", "docker.io", "library/busybox", "latest", "", "docker.io/library/busybox:latest", "busybox:latest"},
		{"user/app", "docker.io", "user/app", "latest", "", "docker.io/user/app:latest", "user/app:latest"},
		{"user/app:v1", "docker.io", "user/app", "v1", "", "docker.io/user/app:v1", "user/app:v1"},
		{"library/a/b", "docker.io", "library/a/b", "latest", "", "docker.io/library/a/b:latest", "library/a/b:latest"},
		{"a/b/c/d", "docker.io", "a/b/c/d", "latest", "", "docker.io/a/b/c/d:latest", "a/b/c/d:latest"},
		{"localhost/app", "localhost", "app", "latest", "", "localhost/app:latest", "localhost/app:latest"},
		{"localhost:5000/app:v1", "localhost:5000", "app", "v1", "", "localhost:5000/app:v1", "localhost:5000/app:v1"},
		{"127.0.0.1:5000/a/b@" + dgA, "127.0.0.1:5000", "a/b", "", dgA, "127.0.0.1:5000/a/b@" + dgA, "127.0.0.1:5000/a/b@" + dgA},
		{"registry.example.com/x", "registry.example.com", "x", "latest", "", "registry.example.com/x:latest", "registry.example.com/x:latest"},
		{"Registry.Example.com/x", "Registry.Example.com", "x", "latest", "", "Registry.Example.com/x:latest", "Registry.Example.com/x:latest"},
		{"my-reg.io:443/team/app:1.0-rc_1", "my-reg.io:443", "team/app", "1.0-rc_1", "", "my-reg.io:443/team/app:1.0-rc_1", "my-reg.io:443/team/app:1.0-rc_1"},
		{"[::1]:5000/app", "[::1]:5000", "app", "latest", "", "[::1]:5000/app:latest", "[::1]:5000/app:latest"},
		{"[fe80::1]/app:v2", "[fe80::1]", "app", "v2", "", "[fe80::1]/app:v2", "[fe80::1]/app:v2"},
		{"busybox@" + dgA, "docker.io", "library/busybox", "", dgA, "docker.io/library/busybox@" + dgA, "busybox@" + dgA},
		{"busybox:1.36@" + dgA, "docker.io", "library/busybox", "1.36", dgA, "docker.io/library/busybox:1.36@" + dgA, "busybox:1.36@" + dgA},
		{"localhost:5000", "docker.io", "library/localhost", "5000", "", "docker.io/library/localhost:5000", "localhost:5000"},
		{"a.b-c--d/f_g.h:Tag_", "a.b-c--d", "f_g.h", "Tag_", "", "a.b-c--d/f_g.h:Tag_", "a.b-c--d/f_g.h:Tag_"},
		{"a.b/c__d---e.f", "a.b", "c__d---e.f", "latest", "", "a.b/c__d---e.f:latest", "a.b/c__d---e.f:latest"},
		{"app:_x", "docker.io", "library/app", "_x", "", "docker.io/library/app:_x", "app:_x"},
		{"foo-bar/a--b__c.d", "docker.io", "foo-bar/a--b__c.d", "latest", "", "docker.io/foo-bar/a--b__c.d:latest", "foo-bar/a--b__c.d:latest"},
		{"app:" + strings.Repeat("t", 128), "docker.io", "library/app", strings.Repeat("t", 128), "", "docker.io/library/app:" + strings.Repeat("t", 128), "app:" + strings.Repeat("t", 128)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if r.Domain() != tt.domain || r.Path() != tt.path || r.Tag() != tt.tag || string(r.Digest()) != tt.digest {
				t.Errorf("got domain=%q path=%q tag=%q digest=%q", r.Domain(), r.Path(), r.Tag(), r.Digest())
			}
			if r.String() != tt.full {
				t.Errorf("String() = %q, want %q", r.String(), tt.full)
			}
			if r.Familiar() != tt.familiar {
				t.Errorf("Familiar() = %q, want %q", r.Familiar(), tt.familiar)
			}
			if r.Name() != tt.domain+"/"+tt.path {
				t.Errorf("Name() = %q", r.Name())
			}
			if r.IsDigested() != (tt.digest != "") {
				t.Errorf("IsDigested() = %v", r.IsDigested())
			}
			// The canonical and the familiar forms parse back to r.
			for _, s := range []string{r.String(), r.Familiar()} {
				back, err := Parse(s)
				if err != nil || back != r {
					t.Errorf("Parse(%q) = %v, %v; want %v", s, back, err, r)
				}
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		in      string
		wantMsg string // substring of the error
	}{
		{"", "invalid reference format: empty reference"},
		{"Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"},
		{"user/App:v1", "repository name (user/App) must be lowercase"},
		{"example.com/Foo/bar", "repository name (Foo/bar) must be lowercase"},
		{"Foo/bar", "repository name (Foo/bar) must be lowercase"},
		{hexA, "invalid repository name (" + hexA + "), cannot specify 64-byte hexadecimal strings"},
		{"busybox:", `invalid tag ""`},
		{"busybox:-x", `invalid tag "-x"`},
		{"busybox:.x", `invalid tag ".x"`},
		{"busybox:a+b", `invalid tag "a+b"`},
		{"busybox:" + strings.Repeat("t", 129), "invalid tag"},
		{"busybox@", `invalid digest ""`},
		{"busybox@sha256:abc", `invalid digest "sha256:abc"`},
		{"busybox@sha256:" + strings.ToUpper(hexA), "invalid digest"},
		{"busybox@md5:d41d8cd98f00b204e9800998ecf8427e", "invalid digest"},
		{"busybox@" + hexA, "invalid digest"},
		{"busybox@" + dgA + "@" + dgA, "invalid digest"},
		{":latest", "repository name must have at least one component"},
		{"example.com/", "repository name must have at least one component"},
		{"a//b", `empty path component in repository name "a//b"`},
		{"/a", "empty path component"},
		{"a/", "empty path component"},
		{"a..b", `invalid path component "a..b"`},
		{"a___b", `invalid path component "a___b"`},
		{"-a", `invalid path component "-a"`},
		{"a-", `invalid path component "a-"`},
		{"a_.b", `invalid path component "a_.b"`},
		{"a b", `invalid path component "a b"`},
		{"a/b!c", `invalid path component "b!c"`},
		{"a.b-c__d/app", `invalid registry domain "a.b-c__d"`},
		{"ex_ample.com/app", `invalid registry domain "ex_ample.com"`},
		{"-example.com/app", `invalid registry domain "-example.com"`},
		{"example..com/app", `invalid registry domain "example..com"`},
		{"example.com:/app", `invalid registry domain "example.com:"`},
		{"example.com:port/app", `invalid registry domain "example.com:port"`},
		{"[::1/app", `invalid registry domain "[::1"`},
		{"[]:5000/app", `invalid registry domain "[]:5000"`},
		{"[::1]x/app", `invalid registry domain "[::1]x"`},
		{"example.com/" + strings.Repeat("a", 250), "must not be more than 255 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, want error", tt.in, r)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if !errors.Is(err, ErrInvalidFormat) {
				t.Errorf("error %q does not wrap ErrInvalidFormat", err)
			}
			if !errdefs.Is(err, errdefs.InvalidArgument) {
				t.Errorf("error %q is class %v, want invalid argument", err, errdefs.ClassOf(err))
			}
		})
	}
}

func TestParseRepository(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":               "docker.io/library/busybox",
		"user/app":              "docker.io/user/app",
		"localhost:5000/a/b":    "localhost:5000/a/b",
		"docker.io/library/foo": "docker.io/library/foo",
	} {
		r, err := ParseRepository(in)
		if err != nil {
			t.Fatalf("ParseRepository(%q): %v", in, err)
		}
		if r.String() != want || r.Tag() != "" || r.Digest() != "" {
			t.Errorf("ParseRepository(%q) = %q (tag %q)", in, r, r.Tag())
		}
	}
	for _, in := range []string{"busybox:latest", "busybox@" + dgA, "Busybox", ""} {
		if _, err := ParseRepository(in); err == nil || !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("ParseRepository(%q) err = %v, want invalid argument", in, err)
		}
	}
}

func TestParseNormalizedKeepsNoTag(t *testing.T) {
	r, err := ParseNormalized("busybox")
	if err != nil || r.Tag() != "" || r.String() != "docker.io/library/busybox" {
		t.Fatalf("ParseNormalized = %v, %v", r, err)
	}
}

func TestWithTagAndDigest(t *testing.T) {
	r, _ := Parse("busybox:1.36")
	r2, err := r.WithTag("1.37")
	if err != nil || r2.String() != "docker.io/library/busybox:1.37" || r.Tag() != "1.36" {
		t.Fatalf("WithTag: %v %v (original %v)", r2, err, r)
	}
	if _, err := r.WithTag("bad tag"); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("WithTag(bad) err = %v", err)
	}
	r3, err := r2.WithDigest(dgA)
	if err != nil || r3.Familiar() != "busybox:1.37@"+dgA || !r3.IsDigested() {
		t.Fatalf("WithDigest: %v %v", r3, err)
	}
	if _, err := r.WithDigest("sha256:1234"); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("WithDigest(bad) err = %v", err)
	}
	if got := r3.Repository(); got.String() != "docker.io/library/busybox" || got.Tag() != "" || got.Digest() != "" {
		t.Errorf("Repository() = %v", got)
	}
	var zero Reference
	if _, err := zero.WithTag("x"); err == nil {
		t.Error("zero.WithTag succeeded")
	}
	if _, err := zero.WithDigest(dgA); err == nil {
		t.Error("zero.WithDigest succeeded")
	}
	if !zero.IsZero() || zero.String() != "" || zero.Familiar() != "" {
		t.Errorf("zero reference prints %q / %q", zero.String(), zero.Familiar())
	}
}

func TestFamiliarName(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":             "busybox",
		"library/a/b":         "library/a/b",
		"user/app":            "user/app",
		"localhost/app":       "localhost/app",
		"quay.io/library/foo": "quay.io/library/foo",
	} {
		r, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.FamiliarName(); got != want {
			t.Errorf("FamiliarName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFamiliarMatch(t *testing.T) {
	tests := []struct {
		pattern, ref string
		want         bool
	}{
		{"busybox", "busybox:latest", true},
		{"busybox:latest", "busybox", true},
		{"busybox:*", "busybox:1.36", true},
		{"busy*", "busybox:1.36", true},
		{"busybox:1.*", "busybox:latest", false},
		{"*", "busybox", true},
		{"*", "user/app", false}, // '*' does not cross '/', as in Docker
		{"*/*", "user/app", true},
		{"user/*", "user/app:v1", true},
		{"docker.io/library/*", "busybox", true},
		{"docker.io/library/busybox:latest", "busybox", true},
		{"library/busybox", "busybox", false}, // neither the familiar nor the full name
		{"localhost:5000/*", "localhost:5000/app:v1", true},
		{"app", "localhost:5000/app:v1", false},
		{"busybox@sha256:*", "busybox@" + dgA, true},
		{"[", "busybox", false},
	}
	for _, tt := range tests {
		r, err := Parse(tt.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := FamiliarMatch(tt.pattern, r); got != tt.want {
			t.Errorf("FamiliarMatch(%q, %q) = %v, want %v", tt.pattern, tt.ref, got, tt.want)
		}
	}
	if FamiliarMatch("*", Reference{}) {
		t.Error("zero reference matched")
	}
	if err := ValidPattern("["); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("ValidPattern([) = %v", err)
	}
	if err := ValidPattern("busy*:1.?"); err != nil {
		t.Errorf("ValidPattern: %v", err)
	}
}

func TestRegistryHost(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io":       "registry-1.docker.io",
		"index.docker.io": "registry-1.docker.io",
		"localhost:5000":  "localhost:5000",
		"quay.io":         "quay.io",
	} {
		if got := RegistryHost(in); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidTag(t *testing.T) {
	for tag, want := range map[string]bool{
		"latest": true, "1.0": true, "_": true, "A-b.C_d": true, strings.Repeat("x", 128): true,
		"": false, "-a": false, ".a": false, "a/b": false, "a:b": false, strings.Repeat("x", 129): false,
	} {
		if got := ValidTag(tag); got != want {
			t.Errorf("ValidTag(%q) = %v", tag, got)
		}
	}
}

func TestJSON(t *testing.T) {
	type rec struct {
		Ref  Reference `json:"ref"`
		Repo Reference `json:"repo"`
		None Reference `json:"none"`
	}
	tagged, _ := Parse("user/app:v1@" + dgA)
	repo, _ := ParseRepository("busybox")
	b, err := json.Marshal(rec{Ref: tagged, Repo: repo})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ref":"docker.io/user/app:v1@` + dgA + `","repo":"docker.io/library/busybox","none":""}`
	if string(b) != want {
		t.Fatalf("json = %s\nwant  %s", b, want)
	}
	var back rec
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Ref != tagged || back.Repo != repo || !back.None.IsZero() {
		t.Errorf("round trip: %+v", back)
	}
	if err := json.Unmarshal([]byte(`{"ref":"Bad"}`), &back); err == nil {
		t.Error("bad reference unmarshalled")
	}
}

func TestDigestAlgorithms(t *testing.T) {
	d := digest.SHA512.FromString("x")
	r, err := Parse("busybox@" + d.String())
	if err != nil || r.Digest() != d {
		t.Fatalf("sha512 digest: %v %v", r, err)
	}
}
