package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// rawAPI sends one request to berthd's socket and returns status and body.
func (d *daemon) rawAPI(method, path, body string) (int, string) {
	d.t.Helper()
	hc := &http.Client{Transport: unixTransport(d.sock)}
	req, _ := http.NewRequest(method, "http://berth"+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestGoClientRunLogsWait(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	ctx := context.Background()
	cl := d.client
	mem := int64(64 << 20)
	res, err := cl.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "echo to-out; echo to-err >&2; exit 5"},
			Labels: map[string]string{"com.example.role": "test"}, Env: []string{"FOO=bar"}},
		HostConfig: &container.HostConfig{Resources: container.Resources{Memory: mem}},
		Name:       "goclient",
	})
	if err != nil {
		t.Fatal(err)
	}
	wait := cl.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := cl.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 5 {
			t.Fatalf("wait status %d", r.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("wait timed out")
	}
	logs, err := cl.ContainerLogs(ctx, res.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, logs); err != nil {
		t.Fatal(err)
	}
	logs.Close()
	if out.String() != "to-out\n" || errb.String() != "to-err\n" {
		t.Fatalf("logs: out %q err %q", out.String(), errb.String())
	}
	insp, err := cl.ContainerInspect(ctx, "goclient", client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := insp.Container
	if c.State.Status != "exited" || c.State.ExitCode != 5 || c.Name != "/goclient" || c.HostConfig.Memory != mem ||
		c.Config.Labels["com.example.role"] != "test" || c.Config.Image != "busybox" || !strings.HasPrefix(c.Image, "sha256:") ||
		c.State.StartedAt == "" || c.State.FinishedAt == "0001-01-01T00:00:00Z" || c.LogPath == "" {
		t.Fatalf("inspect: %+v state %+v", c, c.State)
	}
	// The imported image has no ENV, so (as with Docker) the config holds
	// only the container's own; PATH is added to the process, not here.
	if len(c.Config.Env) != 1 || c.Config.Env[0] != "FOO=bar" {
		t.Fatalf("env: %v", c.Config.Env)
	}
	// Filters: label, status, exited, name.
	for _, f := range []client.Filters{
		make(client.Filters).Add("label", "com.example.role=test"),
		make(client.Filters).Add("status", "exited"),
		make(client.Filters).Add("exited", "5"),
		make(client.Filters).Add("name", "goc"),
	} {
		list, err := cl.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: f})
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 1 || list.Items[0].ID != res.ID {
			t.Fatalf("filter %v: %+v", f, list.Items)
		}
	}
	list, _ := cl.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("status", "running")})
	if len(list.Items) != 0 {
		t.Fatalf("status=running matched %+v", list.Items)
	}
	if _, err := cl.ContainerStart(ctx, "nosuch", client.ContainerStartOptions{}); err == nil || !strings.Contains(err.Error(), "No such container: nosuch") {
		t.Fatalf("start nosuch: %v", err)
	}
}

func TestTTY(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, c := range clis() {
		out, errOut, code := d.cli(c.bin, nil, "run", "--rm", "-t", "busybox", "sh", "-c", "tty; echo hi; exit 4")
		if code != 4 || !strings.Contains(out, "/dev/pts/0\r\n") || !strings.Contains(out, "hi\r\n") {
			t.Fatalf("%s run -t: code %d out %q err %q", c.name, code, out, errOut)
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, tc := range []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"POST", "/v1.50/containers/create", `{"Image":`, 400, ""},
		{"POST", "/v1.50/containers/create", `[1,2]`, 400, ""},
		{"POST", "/v1.50/containers/create?name=bad/name", `{"Image":"busybox","Cmd":["true"]}`, 400, "Invalid container name"},
		{"POST", "/v1.50/containers/create", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}`, 400, "AutoRemove"},
		{"POST", "/v1.50/containers/create", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"Memory":1024}}`, 400, "Minimum memory limit"},
		{"POST", "/v1.50/containers/create", `{"Image":"nosuch:v1","Cmd":["true"]}`, 404, "No such image"},
		{"GET", "/v1.50/containers/nosuch/json", "", 404, "No such container: nosuch"},
		{"POST", "/v1.50/containers/nosuch/start", "", 404, "No such container"},
		{"POST", "/v1.50/containers/json", "", 404, ""},
		{"GET", "/v1.12/version", "", 400, "too old"},
		{"GET", "/v1.50/containers/json?filters=notjson", "", 400, ""},
		{"GET", "/v1.50/containers/json?filters=" + `{"bogus":["x"]}`, "", 400, "invalid filter"},
		{"POST", "/v1.50/containers/create", `{"Image":"busybox","Cmd":["true"],"HostConfig":{"CapAdd":["NOT_A_CAP"]}}`, 201, ""},
	} {
		code, body := d.rawAPI(tc.method, tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s %s %s: %d %s, want %d containing %q", tc.method, tc.path, tc.body, code, body, tc.code, tc.msg)
		}
		if code >= 400 && code != 404 || code == 404 && tc.msg != "" {
			var e struct{ Message string }
			if json.Unmarshal([]byte(body), &e) != nil || e.Message == "" {
				t.Errorf("%s %s: error body %q is not {\"message\":...}", tc.method, tc.path, body)
			}
		}
	}
	// A huge body is refused without taking the daemon down.
	big := `{"Image":"busybox","Cmd":["` + strings.Repeat("x", 40<<20) + `"]}`
	if code, _ := d.rawAPI("POST", "/v1.50/containers/create", big); code < 400 {
		t.Errorf("40 MiB create body: %d", code)
	}
	// The container with an unknown capability fails at start, clearly.
	list, _ := d.client.ContainerList(context.Background(), client.ContainerListOptions{All: true})
	for _, c := range list.Items {
		code, body := d.rawAPI("POST", "/v1.50/containers/"+c.ID+"/start", "")
		if code != 400 || !strings.Contains(strings.ToLower(body), "capability") {
			t.Errorf("start with unknown cap: %d %s", code, body)
		}
	}
	// Still alive.
	if code, body := d.rawAPI("GET", "/_ping", ""); code != 200 || body != "OK" {
		t.Fatalf("ping after abuse: %d %q", code, body)
	}
}
