package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
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
	// requests: also compare the API calls with docker's.
	requests bool
}

type capturedOutput struct {
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Code   int    `json:"code"`
	// Requests are the API calls made (pings left out), when the case
	// compares them.
	Requests []apiCall `json:"requests,omitempty"`
}

// apiCall is a recorded request in a comparable form.
type apiCall struct {
	Method string              `json:"method"`
	Path   string              `json:"path"`
	Query  map[string][]string `json:"query,omitempty"`
	Body   json.RawMessage     `json:"body,omitempty"`
}

func apiCalls(f *fakeEngine) []apiCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var calls []apiCall
	for _, r := range f.reqs {
		if r.Path == "/_ping" {
			continue
		}
		c := apiCall{Method: r.Method, Path: r.Path}
		if len(r.Query) > 0 {
			c.Query = r.Query
		}
		if len(bytes.TrimSpace(r.Body)) > 0 {
			var v any
			if json.Unmarshal(r.Body, &v) == nil {
				c.Body, _ = json.Marshal(v)
			}
		}
		calls = append(calls, c)
	}
	return calls
}

// orderConcurrentCalls puts run's attach and wait, which berth sends
// together (either may reach the daemon first), in the docker CLI's order:
// attach, then wait.
func orderConcurrentCalls(calls []apiCall) []apiCall {
	for i := 0; i+1 < len(calls); i++ {
		a, b := calls[i], calls[i+1]
		if a.Method == http.MethodPost && b.Method == http.MethodPost &&
			strings.HasSuffix(a.Path, "/wait") && strings.HasSuffix(b.Path, "/attach") &&
			strings.TrimSuffix(a.Path, "/wait") == strings.TrimSuffix(b.Path, "/attach") {
			calls[i], calls[i+1] = b, a
		}
	}
	return calls
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
			"NetworkSettings": map[string]any{"Networks": map[string]any{"front": map[string]any{}}}, // one network: docker lists them in map order
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
		{
			"Id": "dddddddddddd4444444444444444444444444444444444444444444444444444", "Names": []string{"/digested"},
			"Image": "docker.io/library/redis:7@sha256:4444444444444444444444444444444444444444444444444444444444444444", "ImageID": "sha256:7777777777777777777777777777777777777777777777777777777777777777",
			"Command": "redis-server", "Created": created2015, "Ports": []map[string]any{}, "Labels": map[string]string{},
			"State": "created", "Status": "Created", "Mounts": []map[string]any{},
		},
		{
			"Id": "eeeeeeeeeeee5555555555555555555555555555555555555555555555555555", "Names": []string{"/plain"},
			"Image": "ghcr.io/org/app@sha256:4444444444444444444444444444444444444444444444444444444444444444", "ImageID": "sha256:8888888888888888888888888888888888888888888888888888888888888888",
			"Command": "", "Created": created2015, "Ports": []map[string]any{}, "Labels": map[string]string{},
			"State": "created", "Status": "Created", "Mounts": []map[string]any{},
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
	{"ps-default", []string{"ps"}, psFixture, false},
	{"ps-all-notrunc", []string{"ps", "-a", "--no-trunc"}, psFixture, false},
	{"ps-quiet", []string{"ps", "-q"}, psFixture, false},
	{"ps-size", []string{"ps", "-s"}, psFixture, false},
	{"ps-format-table", []string{"ps", "--format", "table {{.ID}}\\t{{.Names}}\\t{{.Label \"com.example.tier\"}}\\t{{.Mounts}}\\t{{.LocalVolumes}}\\t{{.State}}"}, psFixture, false},
	{"ps-format-funcs", []string{"ps", "--format", "{{upper .Names}} {{lower .Status}} {{title .State}} {{truncate .ID 4}}|{{pad .State 1 2}}|{{join (split .Labels \",\") \";\"}}|{{json .Names}}"}, psFixture, false},
	{"ps-format-json", []string{"ps", "--format", "json"}, psFixture, false},
	{"ps-format-labels", []string{"ps", "--format", "{{.Labels}} {{.Command}} {{.Image}} {{.CreatedAt}}"}, psFixture, false},
	{"container-ls", []string{"container", "ls", "-q", "--no-trunc"}, psFixture, false},
	{"images-default", []string{"images"}, imagesFixture, false},
	{"images-digests", []string{"images", "--digests"}, imagesFixture, false},
	{"images-quiet", []string{"images", "-q"}, imagesFixture, false},
	{"images-notrunc-format", []string{"image", "ls", "--no-trunc", "--format", "table {{.Repository}}:{{.Tag}}\\t{{.ID}}\\t{{.Size}}\\t{{.Containers}}\\t{{.CreatedAt}}"}, imagesFixture, false},
	{"history-default", []string{"history", "nginx"}, historyFixture, false},
	{"history-notrunc", []string{"history", "--no-trunc", "-H=false", "nginx"}, historyFixture, false},
	{"history-quiet", []string{"image", "history", "-q", "nginx"}, historyFixture, false},
	{"history-format", []string{"history", "--format", "{{.ID}}: {{.CreatedBy}} ({{.Comment}})", "nginx"}, historyFixture, false},
	{"rm-missing", []string{"rm", "nope", "nope2"}, notFound("DELETE /containers/*", "No such container: nope"), false},
	{"stop-missing", []string{"stop", "nope"}, notFound("POST /containers/*/stop", "No such container: nope"), false},
	{"kill-ok", []string{"kill", "-s", "HUP", "a", "b"}, func(f *fakeEngine) { f.reply("POST /containers/*/kill", 204, nil) }, false},
	{"start-ok", []string{"start", "a"}, func(f *fakeEngine) { f.reply("POST /containers/*/start", 204, nil) }, false},
	{"restart-ok", []string{"restart", "-t", "3", "a"}, func(f *fakeEngine) { f.reply("POST /containers/*/restart", 204, nil) }, false},
	{"wait-ok", []string{"wait", "a"}, func(f *fakeEngine) { f.reply("POST /containers/*/wait", 200, map[string]any{"StatusCode": 7}) }, false},
	{"rename-missing", []string{"rename", "a", "b"}, notFound("POST /containers/*/rename", "No such container: a"), false},
	{"tag-ok", []string{"tag", "nginx", "example.com/nginx:v1"}, func(f *fakeEngine) { f.reply("POST /images/*/tag", 201, nil) }, false},
	{"rmi-ok", []string{"rmi", "nginx"}, func(f *fakeEngine) {
		f.reply("DELETE /images/*", 200, []map[string]string{{"Untagged": "nginx:latest"}, {"Deleted": "sha256:3333333333333333333333333333333333333333333333333333333333333333"}})
	}, false},
	{"rmi-missing", []string{"rmi", "nope"}, notFound("DELETE /images/*", "No such image: nope:latest"), false},
	{"inspect-missing", []string{"inspect", "nope"}, func(f *fakeEngine) {
		notFound("GET /containers/*/json", "No such container: nope")(f)
		notFound("GET /images/*/json", "No such image: nope")(f)
		notFound("GET /networks/*", "network nope not found")(f)
		notFound("GET /volumes/*", "get nope: no such volume")(f)
		notFound("GET /plugins/*/json", "plugin \"nope\" not found")(f)
		f.reply("GET /info", 200, map[string]any{"Swarm": map[string]any{"LocalNodeState": "inactive"}})
	}, false},
	{"container-inspect-missing", []string{"container", "inspect", "nope"}, notFound("GET /containers/*/json", "No such container: nope"), false},
	{"create-bad-flag", []string{"create", "--memory-swappiness", "200", "busybox"}, nil, false},
	{"create-restart-rm", []string{"create", "--rm", "--restart", "always", "busybox"}, nil, false},
	{"create-bad-restart", []string{"create", "--restart", ":3", "busybox"}, nil, false},
	{"push-image", []string{"images", "--filter", "dangling=true", "--format", "{{.ID}}"}, imagesFixture, false},
	{"run-bad-pull", []string{"run", "--pull", "sometimes", "busybox"}, nil, false},
	{"create-daemon-error", []string{"create", "busybox"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 409, map[string]string{"message": `Conflict. The container name "/x" is already in use`})
	}, false},
	{"run-start-notfound", []string{"run", "-d", "busybox", "nope"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{}})
		f.reply("POST /containers/*/wait", 200, map[string]any{"StatusCode": 0})
		f.reply("POST /containers/*/start", 400, map[string]string{"message": `failed to create task for container: exec: "nope": executable file not found in $PATH`})
	}, false},
	{"run-start-denied", []string{"run", "-d", "busybox", "/etc"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{}})
		f.reply("POST /containers/*/wait", 200, map[string]any{"StatusCode": 0})
		f.reply("POST /containers/*/start", 400, map[string]string{"message": `exec: "/etc": permission denied`})
	}, false},
	{"run-detach", []string{"run", "-d", "busybox"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{"a warning"}})
		f.reply("POST /containers/*/wait", 200, map[string]any{"StatusCode": 0})
		f.reply("POST /containers/*/start", 204, nil)
	}, false},
	{"run-pull-never", []string{"run", "--pull", "never", "busybox"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 404, map[string]string{"message": "No such image: busybox:latest"})
	}, false},
	{"update-noflags", []string{"update", "a"}, nil, false},
	{"unknown-flag", []string{"ps", "--bogus"}, nil, false},
	{"exact-args", []string{"rename", "a"}, nil, false},
	{"bad-template", []string{"ps", "--format", "{{.Nope}}"}, psFixture, false},
	{"logs", []string{"logs", "web"}, logsFixture(false), true},
	{"logs-options", []string{"logs", "-f", "-t", "--tail", "5", "--since", "2015-03-01T00:00:00Z", "--until", "2016-01-01T00:00:00Z", "--details", "web"}, logsFixture(false), true},
	{"logs-tty", []string{"container", "logs", "-n", "all", "web"}, logsFixture(true), true},
	{"exec", []string{"exec", "-e", "A=1", "-u", "root", "-w", "/tmp", "--privileged", "web", "sh", "-c", "exit 5"}, execFixture, true},
	{"exec-detach", []string{"exec", "-d", "web", "sleep", "9"}, execFixture, true},
	{"inspect-json", []string{"container", "inspect", "web"}, inspectFixture, true},
	{"inspect-format", []string{"inspect", "--format", "{{.Name}} {{.State.Status}} {{json .Config.Env}} {{index .Config.Labels \"a\"}}", "web"}, inspectFixture, true},
	{"image-inspect-format", []string{"image", "inspect", "-f", "{{.Size}} {{.Id}} {{.Os}} {{.Config.Env}} {{json .RepoTags}} {{.Config.ExposedPorts}}", "nginx"}, imageInspectFixture, true},
	{"image-inspect-json", []string{"image", "inspect", "nginx"}, imageInspectFixture, false},
	{"inspect-image-fallback", []string{"inspect", "-f", "{{.Architecture}}", "nginx"}, func(f *fakeEngine) {
		notFound("GET /containers/*/json", "No such container: nginx")(f)
		imageInspectFixture(f)
	}, true},
	{"inspect-size", []string{"inspect", "--type", "container", "-s", "-f", "{{.Id}}", "web"}, inspectFixture, true},
	{"update", []string{"update", "--cpus", "1.5", "-m", "1g", "--memory-swap", "-1", "--pids-limit", "50", "--restart", "on-failure:2", "--cpu-shares", "10", "web"}, func(f *fakeEngine) {
		f.reply("POST /containers/*/update", 200, map[string]any{"Warnings": []string{}})
	}, true},
	{"stop-timeout-signal", []string{"stop", "-t", "3", "-s", "SIGINT", "web"}, func(f *fakeEngine) { f.reply("POST /containers/*/stop", 204, nil) }, true},
	{"rm-force-volumes", []string{"rm", "-f", "-v", "web"}, func(f *fakeEngine) { f.reply("DELETE /containers/*", 204, nil) }, true},
	{"ps-filters", []string{"ps", "-a", "-n", "3", "-s", "--filter", "status=exited", "--filter", "label=a=b", "-q"}, psFixture, true},
	{"images-filter", []string{"images", "-a", "--filter", "dangling=true", "nginx"}, imagesFixture, true},
	{"container-prune", []string{"container", "prune", "-f", "--filter", "until=24h"}, func(f *fakeEngine) {
		f.reply("POST /containers/prune", 200, map[string]any{"ContainersDeleted": []string{"aaa", "bbb"}, "SpaceReclaimed": 123456})
	}, true},
	{"image-prune", []string{"image", "prune", "-a", "-f"}, func(f *fakeEngine) {
		f.reply("POST /images/prune", 200, map[string]any{"ImagesDeleted": []map[string]string{{"Untagged": "nginx:latest"}, {"Deleted": "sha256:3333"}}, "SpaceReclaimed": 187654321})
	}, true},
	{"system-df", []string{"system", "df"}, dfFixture, false},
	// The moby client v0.6 adds type/verbose query parameters docker 28's
	// client does not send: calls not compared.
	{"system-df-verbose", []string{"system", "df", "-v"}, dfFixture, false},
	{"run-attached", []string{"run", "--name", "t1", "busybox", "sh", "-c", "x"}, runOracleFixture(3, false, "running"), true},
	{"run-rm-zero", []string{"run", "--rm", "-e", "A=1", "busybox"}, runOracleFixture(0, false, "running"), true},
	{"run-interactive", []string{"run", "-i", "busybox", "cat"}, runOracleFixture(0, true, "running"), true},
	{"start-attach", []string{"start", "-a", "web"}, runOracleFixture(4, false, "exited"), true},
	{"attach", []string{"attach", "--no-stdin", "web"}, runOracleFixture(2, false, "running"), true},
	{"attach-stopped", []string{"attach", "web"}, runOracleFixture(0, false, "exited"), true},
	{"pull", []string{"pull", "busybox"}, pullFixture, true},
	{"pull-quiet-digest", []string{"pull", "-q", "ghcr.io/org/app@sha256:4444444444444444444444444444444444444444444444444444444444444444"}, pullFixture, true},
	{"pull-all-tags", []string{"pull", "-a", "--platform", "linux/arm64", "busybox"}, pullFixture, true},
	{"push", []string{"push", "localhost:5000/app"}, pushFixture, true},
	{"push-quiet", []string{"image", "push", "-q", "localhost:5000/app:v2"}, pushFixture, true},
	{"load", []string{"load", "-i", "testdata/empty.tar"}, func(f *fakeEngine) {
		f.handle("POST /images/load", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"stream":"Loaded image: busybox:latest\n"}`+"\n")
		})
	}, true},
	{"import", []string{"import", "-c", "ENV A=1", "-c", "CMD [\"sh\"]", "-m", "msg", "testdata/empty.tar", "myimg:v1"}, func(f *fakeEngine) {
		f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `{"status":"sha256:6666666666666666666666666666666666666666666666666666666666666666"}`+"\n")
		})
	}, true},
	{"save", []string{"save", "busybox", "nginx:latest"}, func(f *fakeEngine) {
		f.handle("GET /images/get", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "TARBYTES") })
	}, true},
	{"history-json", []string{"history", "--format", "json", "nginx"}, historyFixture, false},
	{"images-json", []string{"images", "--format", "json"}, imagesFixture, false},
	{"version-format", []string{"version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}"}, versionFixture, false},
	{"run-name-conflict", []string{"run", "-d", "--name", "x", "busybox"}, func(f *fakeEngine) {
		f.reply("POST /containers/create", 409, map[string]string{"message": `Conflict. The container name "/x" is already in use by container "abc". You have to remove (or rename) that container to be able to reuse that name.`})
	}, true},
	{"ps-latest", []string{"ps", "-l", "--format", "{{.Names}}"}, psFixture, true},
	{"ps-last", []string{"ps", "-n", "1", "-q"}, psFixture, true},
	{"images-all-digests-notrunc", []string{"images", "-a", "--digests", "--no-trunc", "--filter", "before=nginx:latest"}, imagesFixture, true},
	{"logs-tail-zero", []string{"logs", "--tail", "0", "-t", "web"}, logsFixture(false), true},
	{"history-raw-tabs", []string{"history", "--format", "{{.ID}}\\t{{.Size}}", "nginx"}, historyFixture, false},
	{"inspect-json-format", []string{"inspect", "-f", "{{json .State}}", "web"}, inspectFixture, true},
	{"exec-interactive", []string{"exec", "-i", "web", "cat"}, execFixture, true},
	{"bad-env-file", []string{"create", "--env-file", "testdata/nope.env", "busybox"}, nil, false},
	{"bad-label-file", []string{"create", "--label-file", "testdata/nope.labels", "busybox"}, nil, false},
	{"bad-publish", []string{"create", "-p", "80:abc", "busybox"}, nil, false},
	{"bad-publish-proto", []string{"create", "-p", "80/xyz", "busybox"}, nil, false},
	{"bad-expose", []string{"create", "--expose", "abc", "busybox"}, nil, false},
	{"bad-cpus", []string{"create", "--cpus", "abc", "busybox"}, nil, false},
	{"bad-ulimit", []string{"create", "--ulimit", "nofile", "busybox"}, nil, false},
	{"bad-mount", []string{"create", "--mount", "type=bind,source=/a", "busybox"}, nil, false},
	{"bad-mount-key", []string{"create", "--mount", "type=bind,src=/a,dst=/b,foo=bar", "busybox"}, nil, false},
	{"bad-device", []string{"create", "--device", "/dev/sda:rel:rwm", "busybox"}, nil, false},
	{"bad-attach", []string{"run", "-a", "stdfoo", "busybox"}, nil, false},
	{"bad-add-host", []string{"create", "--add-host", "nohost", "busybox"}, nil, false},
	{"bad-dns", []string{"create", "--dns", "1.2.3", "busybox"}, nil, false},
	{"bad-health", []string{"create", "--no-healthcheck", "--health-cmd", "x", "busybox"}, nil, false},
	{"bad-mac", []string{"create", "--mac-address", "zz", "busybox"}, nil, false},
	{"bad-pid", []string{"create", "--pid", "foo", "busybox"}, nil, false},
	{"bad-memory-swap", []string{"create", "--memory-swap", "x", "busybox"}, nil, false},
	{"bad-log-opt-none", []string{"create", "--log-driver", "none", "--log-opt", "a=b", "busybox"}, nil, false},
	{"bad-platform", []string{"create", "--platform", "/", "busybox"}, nil, false},
	{"info-server", []string{"info"}, richInfoFixture, false},
	{"version-server", []string{"version"}, richInfoFixture, false},
	{"info-format", []string{"info", "--format", "{{.ServerVersion}} {{.Containers}} {{.Driver}} {{json .Swarm.LocalNodeState}}"}, versionFixture, false},
	{"rmi-partial", []string{"rmi", "-f", "--no-prune", "a", "b"}, func(f *fakeEngine) {
		f.handle("DELETE /images/*", func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/a") {
				writeJSON(w, 200, []map[string]string{{"Untagged": "a:latest"}})
				return
			}
			writeJSON(w, 409, map[string]string{"message": "conflict: unable to delete b (must be forced)"})
		})
	}, true},
	{"start-missing", []string{"start", "a", "nope"}, func(f *fakeEngine) {
		f.handle("POST /containers/*/start", func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/nope/") {
				writeJSON(w, 404, map[string]string{"message": "No such container: nope"})
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}, true},
	{"stop-partial", []string{"stop", "a", "nope"}, func(f *fakeEngine) {
		f.handle("POST /containers/*/stop", func(w http.ResponseWriter, r *http.Request) {
			if strings.Contains(r.URL.Path, "/nope/") {
				writeJSON(w, 404, map[string]string{"message": "No such container: nope"})
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
	}, false}, // docker stops in parallel: call order varies
	{"kill-missing", []string{"kill", "nope"}, notFound("POST /containers/*/kill", "No such container: nope"), true},
	{"restart-missing", []string{"restart", "nope"}, notFound("POST /containers/*/restart", "No such container: nope"), true},
	{"wait-missing", []string{"wait", "nope"}, notFound("POST /containers/*/wait", "No such container: nope"), true},
	{"update-missing", []string{"update", "-m", "1g", "nope"}, notFound("POST /containers/*/update", "No such container: nope"), true},
	{"logs-missing", []string{"logs", "nope"}, notFound("GET /containers/*/json", "No such container: nope"), true},
	{"exec-missing", []string{"exec", "nope", "true"}, notFound("GET /containers/*/json", "No such container: nope"), true},
	{"exec-not-running", []string{"exec", "web", "true"}, func(f *fakeEngine) {
		inspectFixture(f)
		f.reply("POST /containers/*/exec", 409, map[string]string{"message": "container aaaaaaaaaaaa is not running"})
	}, true},
	{"history-missing", []string{"history", "nope"}, notFound("GET /images/*/history", "No such image: nope:latest"), true},
	{"tag-missing", []string{"tag", "nope", "x:y"}, notFound("POST /images/*/tag", "No such image: nope:latest"), true},
	{"tag-invalid", []string{"tag", "busybox", "UPPER:x"}, nil, true},
	{"pull-not-found", []string{"pull", "nope/nope:1"}, func(f *fakeEngine) {
		f.reply("POST /images/create", 404, map[string]string{"message": "pull access denied for nope/nope, repository does not exist or may require authentication"})
	}, true},
	{"push-denied", []string{"push", "localhost:5000/app:v1"}, func(f *fakeEngine) {
		f.handle("POST /images/*/push", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"status":"The push refers to repository [localhost:5000/app]"}`+"\n"+`{"errorDetail":{"message":"denied: requested access to the resource is denied"},"error":"denied: requested access to the resource is denied"}`+"\n")
		})
	}, true},
	{"save-missing", []string{"save", "nope"}, notFound("GET /images/get", "reference does not exist"), true},
	{"pull-bad-ref", []string{"pull", "Bad:Ref:x"}, nil, true},
	{"rename", []string{"rename", "web", "web2"}, func(f *fakeEngine) { f.reply("POST /containers/*/rename", 204, nil) }, true},
	{"kill-signal", []string{"kill", "--signal", "SIGUSR1", "web"}, func(f *fakeEngine) { f.reply("POST /containers/*/kill", 204, nil) }, true},
	{"bad-template-parse", []string{"ps", "--format", "{{.ID"}, psFixture, false},
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
	co := capturedOutput{Stdout: out.String(), Stderr: errb.String(), Code: code}
	if tc.requests {
		co.Requests = apiCalls(f)
	}
	return co
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
	for _, tc := range append(outputCases, volumeOutputCases...) {
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
			wantOut := dockerToBerth(want.Stdout)
			if strings.HasSuffix(tc.name, "-server") {
				// The client sections describe different programs.
				stdout, wantOut = serverSection(stdout), serverSection(wantOut)
			}
			if stdout != wantOut {
				t.Errorf("stdout differs\ndocker:\n%s\nberth:\n%s", want.Stdout, stdout)
			}
			if stderr != dockerToBerth(want.Stderr) {
				t.Errorf("stderr differs\ndocker:\n%s\nberth:\n%s", want.Stderr, stderr)
			}
			if tc.requests {
				normalizeDockerCalls(want.Requests)
				got := orderConcurrentCalls(apiCalls(f))
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want.Requests)
				if !bytes.Equal(gb, wb) {
					t.Errorf("API calls differ\ndocker: %s\nberth:  %s", wb, gb)
				}
			}
		})
	}
}

func inspectFixture(f *fakeEngine) {
	f.reply("GET /containers/*/json", 200, map[string]any{
		"Id": "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111", "Name": "/web",
		"Created": "2015-03-01T12:00:00Z", "Path": "nginx", "Args": []string{"-g", "daemon off;"},
		"State":  map[string]any{"Status": "running", "Running": true, "Pid": 42, "ExitCode": 0},
		"Image":  "sha256:3333333333333333333333333333333333333333333333333333333333333333",
		"Config": map[string]any{"Image": "nginx", "Env": []string{"A=1", "B=2"}, "Labels": map[string]string{"a": "x"}, "Tty": false},
	})
}

func logsFixture(tty bool) func(f *fakeEngine) {
	return func(f *fakeEngine) {
		f.reply("GET /containers/*/json", 200, map[string]any{
			"Id": "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111", "Name": "/web",
			"State": map[string]any{"Status": "running", "Running": true}, "Config": map[string]any{"Tty": tty},
		})
		f.handle("GET /containers/*/logs", func(w http.ResponseWriter, r *http.Request) {
			if tty {
				w.Header().Set("Content-Type", "application/vnd.docker.raw-stream")
				_, _ = io.WriteString(w, "tty line 1\r\ntty line 2\r\n")
				return
			}
			w.Header().Set("Content-Type", "application/vnd.docker.multiplexed-stream")
			_, _ = w.Write(frame(1, "out 1\n"))
			_, _ = w.Write(frame(2, "err 1\n"))
			_, _ = w.Write(frame(1, "out 2\n"))
		})
	}
}

func execFixture(f *fakeEngine) {
	inspectFixture(f)
	f.reply("POST /containers/*/exec", 201, map[string]string{"Id": "e1e1e1"})
	f.reply("GET /exec/*/json", 200, map[string]any{"ID": "e1e1e1", "Running": false, "ExitCode": 5})
	f.handle("POST /exec/*/start", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Detach bool }
		_ = json.NewDecoder(r.Body).Decode(&req)
		if req.Detach {
			writeJSON(w, 200, nil)
			return
		}
		conn, rw := hijack(nil, w, "application/vnd.docker.multiplexed-stream")
		if conn == nil {
			return
		}
		defer conn.Close()
		_, _ = rw.Write(frame(1, "exec out\n"))
		_, _ = rw.Write(frame(2, "exec err\n"))
		_ = rw.Flush()
	})
}

func dfFixture(f *fakeEngine) {
	f.reply("GET /system/df", 200, map[string]any{
		"LayersSize": 187655555,
		"Images": []map[string]any{
			{"Id": "sha256:3333", "RepoTags": []string{"nginx:latest"}, "Created": created2015, "Size": 187654321, "SharedSize": 0, "Containers": 1},
			{"Id": "sha256:5555", "RepoTags": []string{}, "Created": created2015, "Size": 1234, "SharedSize": 0, "Containers": 0},
		},
		"Containers": []map[string]any{
			{"Id": "aaaa", "Names": []string{"/web"}, "Image": "nginx", "ImageID": "sha256:3333", "Created": created2015, "State": "running", "Status": "Up", "SizeRw": 2048, "SizeRootFs": 187656369},
			{"Id": "bbbb", "Names": []string{"/old"}, "Image": "nginx", "ImageID": "sha256:3333", "Created": created2015, "State": "exited", "Status": "Exited", "SizeRw": 100},
		},
		"Volumes": []map[string]any{
			{"Name": "v1", "Driver": "local", "Mountpoint": "/x", "Scope": "local", "UsageData": map[string]any{"Size": 4096, "RefCount": 1}},
			{"Name": "v2", "Driver": "local", "Mountpoint": "/y", "Scope": "local", "UsageData": map[string]any{"Size": 10, "RefCount": 0}},
		},
		"BuildCache": []any{},
	})
}

// normalizeDockerCalls removes what docker 28's own client adds and the
// moby client v0.6 leaves out, with no effect on the daemon: "tail=all" on
// logs (the daemon's default), the exec-create "Detach" field (ignored by
// the daemon; detaching is chosen at exec start) and a null "OnBuild" in
// container create (omitted by the newer API types).
func normalizeDockerCalls(calls []apiCall) {
	for i, c := range calls {
		if strings.HasSuffix(c.Path, "/logs") && len(c.Query["tail"]) == 1 && c.Query["tail"][0] == "all" {
			delete(calls[i].Query, "tail")
		}
		if c.Path == "/containers/create" {
			var m map[string]any
			if json.Unmarshal(c.Body, &m) == nil {
				if v, ok := m["OnBuild"]; ok && v == nil {
					delete(m, "OnBuild")
				}
				calls[i].Body, _ = json.Marshal(m)
			}
		}
		if strings.HasSuffix(c.Path, "/exec") && c.Method == http.MethodPost {
			var m map[string]any
			if json.Unmarshal(c.Body, &m) == nil {
				delete(m, "Detach")
				calls[i].Body, _ = json.Marshal(m)
			}
		}
	}
}

// runOracleFixture serves a container lifecycle for run/start/attach: the
// wait answers headers at once and the status after the start (or at once
// when the container is not meant to run); attach streams two frames.
func runOracleFixture(exitCode int, echoStdin bool, state string) func(f *fakeEngine) {
	return func(f *fakeEngine) {
		started := make(chan struct{})
		var once sync.Once
		if state == "running" {
			once.Do(func() { close(started) })
		}
		f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{}})
		f.reply("GET /containers/*/json", 200, map[string]any{
			"Id": fakeID, "Name": "/web",
			"State":      map[string]any{"Status": state, "Running": state == "running", "ExitCode": exitCode},
			"Config":     map[string]any{"Tty": false, "OpenStdin": echoStdin},
			"HostConfig": map[string]any{"AutoRemove": false},
		})
		f.handle("POST /containers/*/start", func(w http.ResponseWriter, r *http.Request) {
			once.Do(func() { close(started) })
			w.WriteHeader(http.StatusNoContent)
		})
		f.handle("POST /containers/*/wait", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			select {
			case <-started:
			case <-r.Context().Done():
				return
			case <-time.After(time.Second):
			}
			time.Sleep(50 * time.Millisecond)
			_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": exitCode})
		})
		f.handle("POST /containers/*/attach", func(w http.ResponseWriter, r *http.Request) {
			conn, rw := hijack(nil, w, "application/vnd.docker.multiplexed-stream")
			if conn == nil {
				return
			}
			defer conn.Close()
			select {
			case <-started:
			case <-time.After(5 * time.Second):
				return
			}
			_, _ = rw.Write(frame(1, "to stdout\n"))
			_, _ = rw.Write(frame(2, "to stderr\n"))
			_ = rw.Flush()
			if echoStdin {
				b, _ := io.ReadAll(rw)
				_, _ = rw.Write(frame(1, "stdin:"+string(b)+"\n"))
				_ = rw.Flush()
			}
		})
	}
}

func pullFixture(f *fakeEngine) {
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, pullStream)
	})
}

func pushFixture(f *fakeEngine) {
	f.handle("POST /images/*/push", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"status":"The push refers to repository [localhost:5000/app]"}
{"status":"Preparing","progressDetail":{},"id":"a1b2c3d4e5f6"}
{"status":"Pushing","progressDetail":{"current":512,"total":1024},"progress":"[====>   ]","id":"a1b2c3d4e5f6"}
{"status":"Pushed","progressDetail":{},"id":"a1b2c3d4e5f6"}
{"status":"latest: digest: sha256:4444444444444444444444444444444444444444444444444444444444444444 size: 527"}
{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","Size":527}}
`)
	})
}

func versionFixture(f *fakeEngine) {
	f.reply("GET /version", 200, map[string]any{
		"Platform": map[string]string{"Name": "berth"}, "Version": "0.1.0", "ApiVersion": "1.50", "MinAPIVersion": "1.40",
		"Os": "linux", "Arch": "amd64", "GoVersion": "go1.26", "GitCommit": "abc", "KernelVersion": "6.1",
		"Components": []map[string]any{{"Name": "Engine", "Version": "0.1.0", "Details": map[string]string{"ApiVersion": "1.50"}}},
	})
	f.reply("GET /info", 200, map[string]any{
		"ID": "x", "Containers": 3, "ServerVersion": "0.1.0", "Driver": "overlayfs",
		"Swarm": map[string]any{"LocalNodeState": "inactive"},
	})
}

func imageInspectFixture(f *fakeEngine) {
	f.reply("GET /images/*/json", 200, map[string]any{
		"Id": "sha256:3333333333333333333333333333333333333333333333333333333333333333", "RepoTags": []string{"nginx:latest"},
		"RepoDigests": []string{}, "Created": "2015-03-01T12:00:00Z", "Size": 187654321, "Os": "linux", "Architecture": "amd64",
		"Config": map[string]any{"Env": []string{"PATH=/usr/bin", "NGINX_VERSION=1.25"}, "ExposedPorts": map[string]any{"80/tcp": map[string]any{}}, "Cmd": []string{"nginx"}},
		"RootFS": map[string]any{"Type": "layers", "Layers": []string{"sha256:aaaa"}},
	})
}

func richInfoFixture(f *fakeEngine) {
	f.reply("GET /version", 200, map[string]any{
		"Platform": map[string]string{"Name": "berth"}, "Version": "0.1.0", "ApiVersion": "1.50", "MinAPIVersion": "1.40",
		"Os": "linux", "Arch": "amd64", "GoVersion": "go1.26", "GitCommit": "abc", "KernelVersion": "6.1",
		"Components": []map[string]any{
			{"Name": "Engine", "Version": "0.1.0", "Details": map[string]string{"ApiVersion": "1.50", "MinAPIVersion": "1.40", "GoVersion": "go1.26", "GitCommit": "abc", "BuildTime": "2026-01-01", "Os": "linux", "Arch": "amd64", "Experimental": "false"}},
			{"Name": "berth-runtime", "Version": "0.1.0", "Details": map[string]string{"GitCommit": "def"}},
		},
	})
	f.reply("GET /info", 200, map[string]any{
		"ID": "x", "Containers": 3, "ContainersRunning": 1, "ContainersStopped": 2, "Images": 4, "ServerVersion": "0.1.0",
		"Driver": "overlayfs", "DriverStatus": [][]string{{"Backing Filesystem", "extfs"}}, "LoggingDriver": "json-file",
		"CgroupDriver": "cgroupfs", "CgroupVersion": "2",
		"Plugins":        map[string]any{"Volume": []string{"local"}, "Network": []string{"bridge", "host", "null"}, "Log": []string{"json-file", "local"}},
		"Swarm":          map[string]any{"LocalNodeState": "inactive"},
		"Runtimes":       map[string]any{"runc": map[string]any{"path": "berth-runtime"}},
		"DefaultRuntime": "runc", "InitBinary": "berth-init", "OSType": "linux",
		"ContainerdCommit": map[string]string{"ID": ""}, "RuncCommit": map[string]string{"ID": "v0.1"}, "InitCommit": map[string]string{"ID": ""},
		"SecurityOptions": []string{"name=seccomp,profile=builtin", "name=cgroupns"},
		"KernelVersion":   "6.1.0", "OperatingSystem": "Debian", "Architecture": "x86_64", "NCPU": 2, "MemTotal": 4294967296,
		"Name": "host1", "DockerRootDir": "/var/lib/berth", "Debug": false, "ExperimentalBuild": false,
		"Labels": []string{"a=b"}, "LiveRestoreEnabled": false,
		"RegistryConfig": map[string]any{"InsecureRegistryCIDRs": []string{"127.0.0.0/8"}, "IndexConfigs": map[string]any{"docker.io": map[string]any{"Name": "docker.io", "Secure": true}}, "Mirrors": []string{"https://mirror.example.com/"}},
		"Warnings":       []string{"WARNING: bridge-nf-call-iptables is disabled"},
	})
}

func serverSection(s string) string {
	if i := strings.Index(s, "\nServer:"); i >= 0 {
		return s[i:]
	}
	return s
}
