package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The output oracle: each case runs a command line against a fake engine
// with canned answers, once with the real docker CLI and once with berth,
// and compares stdout, stderr and the exit code (with "docker" replaced by
// "berth" in docker's messages). The docker results are kept in
// testdata/output/<case>.json (regenerate with -update) so the test runs
// without docker.

type outputCase struct {
	name  string
	args  []string
	setup func(f *fakeEngine)
}

type capturedOutput struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Code   int    `json:"code"`
}

// Fixed timestamps far in the past keep "N years ago" stable between the
// docker run that produced the golden file and later berth runs.
var created2015 = time.Date(2015, 3, 1, 12, 0, 0, 0, time.UTC).Unix()

func psFixture(f *fakeEngine) {
	f.reply("GET /containers/json", 200, []map[string]any{
		{
			"Id": "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111", "Names": []string{"/web", "/other/alias"},
			"Image": "nginx:latest", "ImageID": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
			"Command": "/docker-entrypoint.sh nginx -g 'daemon off;'", "Created": created2015,
			"Ports": []map[string]any{
				{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
				{"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
				{"PrivatePort": 443, "Type": "tcp"},
				{"PrivatePort": 9000, "PublicPort": 9000, "IP": "127.0.0.1", "Type": "tcp"},
				{"PrivatePort": 9001, "PublicPort": 9001, "IP": "127.0.0.1", "Type": "tcp"},
			},
			"Labels": map[string]string{"com.example.tier": "front", "b": "2"},
			"State":  "running", "Status": "Up 3 hours", "SizeRw": 1024, "SizeRootFs": 187654321,
			"HostConfig":      map[string]any{"NetworkMode": "bridge"},
			"NetworkSettings": map[string]any{"Networks": map[string]any{"bridge": map[string]any{}, "front": map[string]any{}}},
			"Mounts": []map[string]any{
				{"Type": "volume", "Name": "0123456789abcdef0123456789", "Source": "/var/lib/x", "Destination": "/data", "Driver": "local"},
				{"Type": "bind", "Source": "/etc/hosts", "Destination": "/h"},
			},
		},
		{
			"Id": "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222", "Names": []string{"/job"},
			"Image": "sha256:2222222222222222222222222222222222222222222222222222222222222222", "ImageID": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
			"Command": "sh", "Created": created2015 - 86400*30,
			"Ports": []map[string]any{}, "Labels": map[string]string{},
			"State": "exited", "Status": "Exited (3) 2 days ago",
			"HostConfig": map[string]any{"NetworkMode": "none"}, "NetworkSettings": map[string]any{"Networks": map[string]any{}},
			"Mounts": []map[string]any{},
		},
	})
}

func imagesFixture(f *fakeEngine) {
	f.reply("GET /images/json", 200, []map[string]any{
		{
			"Id": "sha256:3333333333333333333333333333333333333333333333333333333333333333", "ParentId": "",
			"RepoTags":    []string{"nginx:latest", "nginx:1.25"},
			"RepoDigests": []string{"nginx@sha256:4444444444444444444444444444444444444444444444444444444444444444"},
			"Created":     created2015, "Size": 187654321, "SharedSize": -1, "Labels": nil, "Containers": 2,
		},
		{
			"Id": "sha256:5555555555555555555555555555555555555555555555555555555555555555", "ParentId": "",
			"RepoTags": []string{}, "RepoDigests": []string{},
			"Created": created2015 - 86400*400, "Size": 1234, "SharedSize": -1, "Labels": map[string]string{}, "Containers": -1,
		},
	})
}

func historyFixture(f *fakeEngine) {
	f.reply("GET /images/*/history", 200, []map[string]any{
		{"Id": "sha256:3333333333333333333333333333333333333333333333333333333333333333", "Created": created2015,
			"CreatedBy": "/bin/sh -c #(nop)  CMD [\"nginx\" \"-g\" \"daemon off;\"]", "Tags": []string{"nginx:latest"}, "Size": 0, "Comment": ""},
		{"Id": "<missing>", "Created": created2015 - 3600, "CreatedBy": "/bin/sh -c\tapt-get update && apt-get install -y nginx", "Tags": nil, "Size": 58123456, "Comment": "buildkit.dockerfile.v0"},
	})
}

func notFound(pattern, msg string) func(f *fakeEngine) {
	return func(f *fakeEngine) { f.reply(pattern, 404, map[string]string{"message": msg}) }
}

var outputCases = []outputCase{
	{"ps-default", []string{"ps"}, psFixture},
	{"ps-all-notrunc", []string{"ps", "-a", "--no-trunc"}, psFixture},
	{"ps-quiet", []string{"ps", "-q"}, psFixture},
	{"ps-size", []string{"ps", "-s"}, psFixture},
	{"ps-format-table", []string{"ps", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Label \"com.example.tier\"}}\\t{{.Networks}}\\t{{.Mounts}}\\t{{.LocalVolumes}}\\t{{.State}}"}, psFixture},
	{"ps-format-funcs", []string{"ps", "--format", "{{upper .Names}} {{lower .Status}} {{title .State}} {{truncate .ID 4}}|{{pad .State 1 2}}|{{join (split .Labels \",\") \";\"}}|{{json .Names}}"}, psFixture},
	{"ps-format-json", []string{"ps", "--format", "json"}, psFixture},
	{"ps-format-labels", []string{"ps", "--format", "{{.Labels}} {{.Command}} {{.Image}} {{.CreatedAt}}"}, psFixture},
	{"container-ls", []string{"container", "ls", "-q", "--no-trunc"}, psFixture},
	{"images-default", []string{"images"}, imagesFixture},
	{"images-digests", []string{"images", "--digests"}, imagesFixture},
	{"images-quiet", []string{"images", "-q"}, imagesFixture},
	{"images-notrunc-format", []string{"image", "ls", "--no-trunc", "--format", "table {{.Repository}}:{{.Tag}}\\t{{.ID}}\\t{{.Size}}\\t{{.Containers}}\\t{{.CreatedAt}}"}, imagesFixture},
	{"history-default", []string{"history", "nginx"}, historyFixture},
	{"history-notrunc", []string{"history", "--no-trunc", "-H=false", "nginx"}, historyFixture},
	{"history-quiet", []string{"image", "history", "-q", "nginx"}, historyFixture},
	{"history-format", []string{"history", "--format", "{{.ID}}: {{.CreatedBy}} ({{.Comment}})", "nginx"}, historyFixture},
	{"rm-missing", []string{"rm", "nope", "nope2"}, notFound("DELETE /containers/*", "No such container: nope")},
	{"stop-missing", []string{"stop", "nope"}, notFound("POST /containers/*/stop", "No such container: nope")},
	{"kill-ok", []string{"kill", "-s", "HUP", "a", "b"}, func(f *fakeEngine) { f.reply("POST /containers/*/kill", 204, nil) }},
	{"start-ok", []string{"start", "a"}, func(f *fakeEngine) { f.reply("POST /containers/*/start", 204, nil) }},
	{"restart-ok", []string{"restart", "-t", "3", "a"}, func(f *fakeEngine) { f.reply("POST /containers/*/restart", 204, nil) }},
	{"wait-ok", []string{"wait", "a"}, func(f *fakeEngine) { f.reply("POST /containers/*/wait", 200, map[string]any{"StatusCode": 7}) }},
	{"rename-missing", []string{"rename", "a", "b"}, notFound("POST /containers/*/rename", "No such container: a")},
	{"tag-ok", []string{"tag", "nginx", "example.com/nginx:v1"}, func(f *fakeEngine) { f.reply("POST /images/*/tag", 201, nil) }},
	{"rmi-ok", []string{"rmi", "nginx"}, func(f *fakeEngine) {
		f.reply("DELETE /images/*", 200, []map[string]string{{"Untagged": "nginx:latest"}, {"Deleted": "sha256:3333333333333333333333333333333333333333333333333333333333333333"}})
	}},
	{"rmi-missing", []string{"rmi", "nope"}, notFound("DELETE /images/*", "No such image: nope:latest")},
	{"inspect-missing", []string{"inspect", "nope"}, func(f *fakeEngine) {
		notFound("GET /containers/*/json", "No such container: nope")(f)
		notFound("GET /images/*/json", "No such image: nope")(f)
		notFound("GET /networks/*", "network nope not found")(f)
		notFound("GET /volumes/*", "get nope: no such volume")(f)
		notFound("GET /plugins/*/json", "plugin \"nope\" not found")(f)
		f.reply("GET /info", 200, map[string]any{"Swarm": map[string]any{"LocalNodeState": "inactive"}})
	}},
	{"container-inspect-missing", []string{"container", "inspect", "nope"}, notFound("GET /containers/*/json", "No such container: nope")},
	{"create-bad-flag", []string{"create", "--memory-swappiness", "200", "busybox"}, nil},
	{"create-restart-rm", []string{"create", "--rm", "--restart", "always", "busybox"}, nil},
	{"create-bad-restart", []string{"create", "--restart", ":3", "busybox"}, nil},
	{"push-image", []string{"images", "--filter", "dangling=true", "--format", "{{.ID}}"}, imagesFixture},
	{"run-bad-pull", []string{"run", "--pull", "sometimes", "busybox"}, nil},
	{"create-daemon-error", []string{"create", "busybox"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 409, map[string]string{"message": `Conflict. The container name "/x" is already in use`})
	}},
	{"run-start-notfound", []string{"run", "-d", "busybox", "nope"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{}})
		f.reply("POST /containers/*/wait", 200, map[string]any{"StatusCode": 0})
		f.reply("POST /containers/*/start", 400, map[string]string{"message": `failed to create task for container: exec: "nope": executable file not found in $PATH`})
	}},
	{"run-start-denied", []string{"run", "-d", "busybox", "/etc"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{}})
		f.reply("POST /containers/*/wait", 200, map[string]any{"StatusCode": 0})
		f.reply("POST /containers/*/start", 400, map[string]string{"message": `exec: "/etc": permission denied`})
	}},
	{"run-detach", []string{"run", "-d", "busybox"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{"a warning"}})
		f.reply("POST /containers/*/wait", 200, map[string]any{"StatusCode": 0})
		f.reply("POST /containers/*/start", 204, nil)
	}},
	{"run-pull-never", []string{"run", "--pull", "never", "busybox"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 404, map[string]string{"message": "No such image: busybox:latest"})
	}},
	{"update-noflags", []string{"update", "a"}, nil},
	{"unknown-flag", []string{"ps", "--bogus"}, nil},
	{"exact-args", []string{"rename", "a"}, nil},
	{"bad-template", []string{"ps", "--format", "{{.Nope}}"}, psFixture},
	{"bad-template-parse", []string{"ps", "--format", "{{.ID"}, psFixture},
}

func captureDockerOutput(t *testing.T, docker string, tc outputCase) capturedOutput {
	t.Helper()
	f := newFakeEngine(t)
	if tc.setup != nil {
		tc.setup(f)
	}
	cmd := exec.Command(docker, tc.args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+f.host, "DOCKER_CONFIG="+t.TempDir(), "DOCKER_CONTEXT=", "TZ=UTC")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return capturedOutput{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// dockerToBerth rewrites docker's self-references in its messages.
func dockerToBerth(s string) string {
	s = strings.ReplaceAll(s, "'docker ", "'berth ")
	s = strings.ReplaceAll(s, "docker: ", "berth: ")
	s = strings.ReplaceAll(s, "Usage:  docker ", "Usage:  berth ")
	// Template errors name the Go type behind the fields.
	s = strings.ReplaceAll(s, "*formatter.ContainerContext", "cli.psRow")
	return s
}

func TestOutputMatchesDocker(t *testing.T) {
	t.Setenv("TZ", "UTC")
	time.Local = time.UTC
	docker := dockerBinary()
	for _, tc := range outputCases {
		t.Run(tc.name, func(t *testing.T) {
			golden := filepath.Join("testdata", "output", tc.name+".json")
			var want capturedOutput
			if *updateGolden {
				if docker == "" {
					t.Skip("no docker CLI to regenerate golden files")
				}
				want = captureDockerOutput(t, docker, tc)
				b, _ := json.MarshalIndent(want, "", "  ")
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				b, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("golden file missing (run with -update): %v", err)
				}
				if err := json.Unmarshal(b, &want); err != nil {
					t.Fatal(err)
				}
			}
			f := newFakeEngine(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			stdout, stderr, code := runBerth(t, f, "", tc.args...)
			if code != want.Code {
				t.Errorf("exit code = %d, docker exits %d", code, want.Code)
			}
			if stdout != dockerToBerth(want.Stdout) {
				t.Errorf("stdout differs\ndocker:\n%s\nberth:\n%s", want.Stdout, stdout)
			}
			if stderr != dockerToBerth(want.Stderr) {
				t.Errorf("stderr differs\ndocker:\n%s\nberth:\n%s", want.Stderr, stderr)
			}
		})
	}
}
