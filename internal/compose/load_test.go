package compose

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// writeFiles creates files (path → content) under a fresh directory named
// dirName and returns the directory.
func writeFiles(t *testing.T, dirName string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), dirName)
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func load(t *testing.T, dir string, o LoadOptions) (*LoadResult, error) {
	t.Helper()
	o.WorkingDir = dir
	if o.Environ == nil {
		o.Environ = []string{}
	}
	for i, f := range o.ConfigPaths {
		if !filepath.IsAbs(f) {
			o.ConfigPaths[i] = filepath.Join(dir, f)
		}
	}
	p, err := Load(context.Background(), o)
	if err != nil {
		return nil, err
	}
	return &LoadResult{p}, nil
}

func mustLoad(t *testing.T, dir string, o LoadOptions) *LoadResult {
	t.Helper()
	r, err := load(t, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLoadProjectNameRules(t *testing.T) {
	const plain = "services:\n  web:\n    image: busybox\n"
	cases := []struct {
		name    string
		dirName string
		file    string
		o       LoadOptions
		want    string
	}{
		// The directory name, normalised as Compose does: lower case, only
		// [a-z0-9_-], no leading '-' or '_'.
		{"directory", "My.App_Dir", plain, LoadOptions{}, "myapp_dir"},
		{"directory leading dash", "-_Stack", plain, LoadOptions{}, "stack"},
		{"name field", "dir", "name: fromfile\n" + plain, LoadOptions{}, "fromfile"},
		{"env over name field", "dir", "name: fromfile\n" + plain, LoadOptions{Environ: []string{"COMPOSE_PROJECT_NAME=fromenv"}}, "fromenv"},
		{"flag over env", "dir", "name: fromfile\n" + plain, LoadOptions{ProjectName: "flag", Environ: []string{"COMPOSE_PROJECT_NAME=fromenv"}}, "flag"},
		{"name field interpolated", "dir", "name: ${APP:-dflt}\n" + plain, LoadOptions{}, "dflt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.dirName, map[string]string{"compose.yaml": tc.file})
			r := mustLoad(t, dir, tc.o)
			if r.p.Name != tc.want {
				t.Fatalf("project name %q, want %q", r.p.Name, tc.want)
			}
			if got := r.p.Services["web"].CustomLabels[LabelProject]; got != tc.want {
				t.Fatalf("project label %q", got)
			}
		})
	}
	dir := writeFiles(t, "dir", map[string]string{"compose.yaml": plain})
	if _, err := load(t, dir, LoadOptions{ProjectName: "Bad Name"}); err == nil || !strings.Contains(err.Error(), "invalid project name") {
		t.Fatalf("invalid -p accepted: %v", err)
	}
}

func TestLoadOverridesAndInterpolation(t *testing.T) {
	dir := writeFiles(t, "app", map[string]string{
		"compose.yaml": `services:
  web:
    image: busybox:${TAG:-1.36}
    command: ["sh", "-c", "echo ${GREETING}"]
    environment:
      A: "1"
      FROM_DOTENV: ${DOTENV_VAR}
    ports: ["8080:80"]
`,
		"override.yaml": `services:
  web:
    environment:
      B: "2"
    ports: !override ["9090:90"]
`,
		".env":    "DOTENV_VAR=from-dotenv\nGREETING=hi-dotenv\n",
		"alt.env": "GREETING=hi-alt\nTAG=9\n",
	})
	r := mustLoad(t, dir, LoadOptions{ConfigPaths: []string{"compose.yaml", "override.yaml"}})
	web := r.p.Services["web"]
	if web.Image != "busybox:1.36" {
		t.Errorf("default interpolation: image %q", web.Image)
	}
	if got := strings.Join(web.Command, " "); got != "sh -c echo hi-dotenv" {
		t.Errorf(".env interpolation: command %q", got)
	}
	if *web.Environment["A"] != "1" || *web.Environment["B"] != "2" || *web.Environment["FROM_DOTENV"] != "from-dotenv" {
		t.Errorf("merged environment: %v", envList(web.Environment))
	}
	if len(web.Ports) != 1 || web.Ports[0].Target != 90 || web.Ports[0].Published != "9090" {
		t.Errorf("!override ports: %+v", web.Ports)
	}
	if got := web.CustomLabels[LabelConfigFiles]; got != filepath.Join(dir, "compose.yaml")+","+filepath.Join(dir, "override.yaml") {
		t.Errorf("config_files label %q", got)
	}
	if got := web.CustomLabels[LabelWorkingDir]; got != dir {
		t.Errorf("working_dir label %q", got)
	}

	// --env-file replaces .env; the OS environment wins over both.
	r = mustLoad(t, dir, LoadOptions{ConfigPaths: []string{"compose.yaml"}, EnvFiles: []string{filepath.Join(dir, "alt.env")}, Environ: []string{"TAG=os"}})
	web = r.p.Services["web"]
	if web.Image != "busybox:os" || strings.Join(web.Command, " ") != "sh -c echo hi-alt" {
		t.Errorf("--env-file: image %q command %q", web.Image, web.Command)
	}
	if web.CustomLabels[LabelEnvironmentFile] != filepath.Join(dir, "alt.env") {
		t.Errorf("environment_file label %q", web.CustomLabels[LabelEnvironmentFile])
	}
}

func TestLoadRequiredVariable(t *testing.T) {
	dir := writeFiles(t, "app", map[string]string{
		"compose.yaml": "services:\n  web:\n    image: ${IMAGE:?set IMAGE to the image to run}\n",
	})
	_, err := load(t, dir, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "set IMAGE to the image to run") {
		t.Fatalf("${VAR:?err} not enforced: %v", err)
	}
	r := mustLoad(t, dir, LoadOptions{Environ: []string{"IMAGE=busybox"}})
	if r.p.Services["web"].Image != "busybox" {
		t.Fatalf("image %q", r.p.Services["web"].Image)
	}
}

func TestLoadProfiles(t *testing.T) {
	dir := writeFiles(t, "app", map[string]string{"compose.yaml": `services:
  web:
    image: busybox
  debug:
    image: busybox
    profiles: [debug]
  tools:
    image: busybox
    profiles: [tools]
`})
	names := func(r *LoadResult) string {
		n := r.p.ServiceNames()
		sort.Strings(n)
		return strings.Join(n, ",")
	}
	if got := names(mustLoad(t, dir, LoadOptions{})); got != "web" {
		t.Errorf("no profile: %s", got)
	}
	if got := names(mustLoad(t, dir, LoadOptions{Profiles: []string{"debug"}})); got != "debug,web" {
		t.Errorf("--profile debug: %s", got)
	}
	if got := names(mustLoad(t, dir, LoadOptions{Environ: []string{"COMPOSE_PROFILES=debug,tools"}})); got != "debug,tools,web" {
		t.Errorf("COMPOSE_PROFILES: %s", got)
	}
	// Naming a service enables it whatever its profile.
	if got := names(mustLoad(t, dir, LoadOptions{Services: []string{"tools"}})); got != "tools" {
		t.Errorf("explicit service: %s", got)
	}
}

func TestLoadExtendsAndInclude(t *testing.T) {
	dir := writeFiles(t, "app", map[string]string{
		"compose.yaml": `include:
  - sub/db.yaml
services:
  web:
    extends:
      file: base.yaml
      service: base
    environment:
      ROLE: web
`,
		"base.yaml": `services:
  base:
    image: busybox
    user: "1000"
    environment:
      COMMON: "yes"
`,
		"sub/db.yaml": `services:
  db:
    image: busybox
    volumes:
      - ./data:/data
`,
	})
	r := mustLoad(t, dir, LoadOptions{})
	web := r.p.Services["web"]
	if web.Image != "busybox" || web.User != "1000" || *web.Environment["COMMON"] != "yes" || *web.Environment["ROLE"] != "web" {
		t.Errorf("extends: %+v env %v", web.ContainerSpec.Image, envList(web.Environment))
	}
	db, ok := r.p.Services["db"]
	if !ok {
		t.Fatal("included service db missing")
	}
	// Relative paths of an included file resolve against its own directory.
	if got := db.Volumes[0].Source; got != filepath.Join(dir, "sub", "data") {
		t.Errorf("included bind source %q", got)
	}
}

func TestLoadErrorsNameFileAndField(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string
	}{
		{"unknown field", "services:\n  web:\n    image: busybox\n    imagee: x\n", []string{"compose.yaml", "services.web", "imagee"}},
		{"wrong type", "services:\n  web:\n    image: busybox\n    ports: 8080\n", []string{"compose.yaml", "services.web.ports"}},
		{"yaml syntax", "services:\n  web:\n   image: busybox\n  bad\n", []string{"compose.yaml"}},
		{"undefined network", "services:\n  web:\n    image: busybox\n    networks: [nope]\n", []string{"web", "nope"}},
		{"dependency cycle", "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n", []string{"dependency cycle detected", "a -> b -> a"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, "app", map[string]string{"compose.yaml": tc.file})
			_, err := load(t, dir, LoadOptions{})
			if err == nil {
				t.Fatal("invalid file accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadNoDefaultNetworkWithoutUsers(t *testing.T) {
	// Services that all use network_mode need no <project>_default
	// network; a service on the default network does.
	dir := writeFiles(t, "app", map[string]string{"compose.yaml": "services:\n  a:\n    image: busybox\n    network_mode: none\n  b:\n    image: busybox\n    network_mode: host\n"})
	if r := mustLoad(t, dir, LoadOptions{}); len(r.p.Networks) != 0 {
		t.Fatalf("networks %v", r.p.NetworkNames())
	}
	dir = writeFiles(t, "app", map[string]string{"compose.yaml": "services:\n  a:\n    image: busybox\n"})
	r := mustLoad(t, dir, LoadOptions{})
	if n, ok := r.p.Networks["default"]; !ok || n.Name != "app_default" {
		t.Fatalf("default network %+v", r.p.Networks)
	}
}

// LoadResult wraps a loaded project for the tests.
type LoadResult struct{ p *types.Project }

// TestLoadEnvFileFoldedIntoEnvironment: like Docker Compose, env_file is
// resolved into environment and dropped, so the config hash of a service
// using env_file equals that of the same service with the variables
// written out.
func TestLoadEnvFileFoldedIntoEnvironment(t *testing.T) {
	dir := writeFiles(t, "app", map[string]string{
		"compose.yaml": "services:\n  a:\n    image: busybox\n    env_file: [a.env]\n    environment: {B: from-file-overridden}\n  b:\n    image: busybox\n    environment: {A: \"1\", B: from-file-overridden}\n",
		"a.env":        "A=1\nB=2\n",
	})
	r := mustLoad(t, dir, LoadOptions{})
	a, b := r.p.Services["a"], r.p.Services["b"]
	if len(a.EnvFiles) != 0 {
		t.Errorf("env_file kept: %v", a.EnvFiles)
	}
	if got := envList(a.Environment); strings.Join(got, " ") != "A=1 B=from-file-overridden" {
		t.Errorf("environment %v", got)
	}
	ha, _ := ServiceHash(a)
	hb, _ := ServiceHash(b)
	if ha != hb {
		t.Errorf("env_file changes the hash: %s vs %s", ha, hb)
	}
}

func TestLoadNoInterpolate(t *testing.T) {
	dir := writeFiles(t, "app", map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox:${TAG:-1}\n"})
	r := mustLoad(t, dir, LoadOptions{NoInterpolate: true})
	if got := r.p.Services["web"].Image; got != "busybox:${TAG:-1}" {
		t.Fatalf("image %q", got)
	}
}
