package exec_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/api/apitest"
	containerrouter "github.com/berth-dev/berth/internal/api/router/container"
	execrouter "github.com/berth-dev/berth/internal/api/router/exec"
)

func setup(t *testing.T) (http.Handler, string) {
	c := apitest.NewContainers()
	routers := []api.Router{containerrouter.New(c), execrouter.New(apitest.NewExecs(c))}
	h := apitest.NewServer(t, routers...)
	sock := apitest.Serve(t, routers...)
	w := apitest.Do(t, h, "POST", "/containers/create?name=box", strings.NewReader(`{"Image":"busybox","Cmd":["sleep"]}`), "Content-Type", "application/json")
	if w.Code != 201 {
		t.Fatal(w.Body.String())
	}
	if w := apitest.Do(t, h, "POST", "/containers/box/start", nil); w.Code != 204 {
		t.Fatal(w.Body.String())
	}
	t.Cleanup(func() { apitest.Do(t, h, "DELETE", "/containers/box?force=1", nil) })
	return h, sock
}

func execCreate(t *testing.T, h http.Handler, body string) string {
	t.Helper()
	w := apitest.Do(t, h, "POST", "/containers/box/exec", strings.NewReader(body), "Content-Type", "application/json")
	if w.Code != 201 {
		t.Fatalf("exec create: %d %s", w.Code, w.Body.String())
	}
	var r container.ExecCreateResponse
	json.Unmarshal(w.Body.Bytes(), &r)
	return r.ID
}

func TestExecCreateInspectDetach(t *testing.T) {
	h, _ := setup(t)
	w := apitest.Do(t, h, "POST", "/containers/box/exec", strings.NewReader(`{"Cmd":[]}`), "Content-Type", "application/json")
	if w.Code != 400 || apitest.Message(t, w) != "No exec command specified" {
		t.Fatalf("empty cmd: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, h, "POST", "/containers/ghost/exec", strings.NewReader(`{"Cmd":["true"]}`), "Content-Type", "application/json"); w.Code != 404 {
		t.Fatalf("ghost: %d", w.Code)
	}
	id := execCreate(t, h, `{"Cmd":["fail","4"],"AttachStdout":true}`)
	w = apitest.Do(t, h, "POST", "/exec/"+id+"/start", strings.NewReader(`{"Detach":true}`), "Content-Type", "application/json")
	if w.Code != 200 {
		t.Fatalf("detached start: %d %s", w.Code, w.Body.String())
	}
	w = apitest.Do(t, h, "GET", "/exec/"+id+"/json", nil)
	var in container.ExecInspectResponse
	if json.Unmarshal(w.Body.Bytes(), &in) != nil || in.ExitCode == nil || *in.ExitCode != 4 || in.Running || in.ProcessConfig.Entrypoint != "fail" {
		t.Fatalf("inspect: %s", w.Body.String())
	}
	w = apitest.Do(t, h, "POST", "/exec/"+id+"/start", strings.NewReader(`{"Detach":true}`), "Content-Type", "application/json")
	if w.Code != 409 {
		t.Fatalf("second start: %d", w.Code)
	}
	if w := apitest.Do(t, h, "POST", "/exec/nope/resize?h=1&w=1", nil); w.Code != 404 || apitest.Message(t, w) != "No such exec instance: nope" {
		t.Fatalf("resize missing: %d %s", w.Code, w.Body.String())
	}
	if w := apitest.Do(t, h, "POST", "/exec/nope/start", strings.NewReader(`{}`), "Content-Type", "application/json"); w.Code != 404 {
		t.Fatalf("start missing: %d", w.Code)
	}
}

func hijackedStart(t *testing.T, sock, id, body string) (net.Conn, *bufio.Reader, map[string]string) {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "POST /v1.50/exec/"+id+"/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: "+itoa(len(body))+"\r\n\r\n"+body)
	br := bufio.NewReader(c)
	status, _ := br.ReadString('\n')
	if status != "HTTP/1.1 101 UPGRADED\r\n" {
		t.Fatalf("status %q", status)
	}
	hdr := map[string]string{}
	for {
		line, _ := br.ReadString('\n')
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			break
		}
		k, v, _ := strings.Cut(line, ": ")
		hdr[k] = v
	}
	return c, br, hdr
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestExecHijacked(t *testing.T) {
	h, sock := setup(t)
	// stdin through, half-close ends it.
	id := execCreate(t, h, `{"Cmd":["cat"],"AttachStdin":true,"AttachStdout":true,"AttachStderr":true}`)
	c, br, hdr := hijackedStart(t, sock, id, `{"Detach":false,"Tty":false}`)
	if hdr["Content-Type"] != "application/vnd.docker.multiplexed-stream" {
		t.Fatalf("headers %v", hdr)
	}
	io.WriteString(c, "line one\n")
	c.(*net.UnixConn).CloseWrite()
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, br); err != nil || o.String() != "line one\n" {
		t.Fatalf("cat: %v %q %q", err, o.String(), e.String())
	}

	// With a TTY: raw.
	id = execCreate(t, h, `{"Cmd":["echo","raw"],"Tty":true,"AttachStdout":true}`)
	_, br, hdr = hijackedStart(t, sock, id, `{"Tty":true,"ConsoleSize":[24,80]}`)
	b, _ := io.ReadAll(br)
	if hdr["Content-Type"] != "application/vnd.docker.raw-stream" || string(b) != "raw\n" {
		t.Fatalf("tty: %v %q", hdr, b)
	}

	// An error after the takeover is written in the stream (stdout).
	id = execCreate(t, h, `{"Cmd":["nosuchcommand"],"AttachStdout":true,"AttachStderr":true}`)
	_, br, _ = hijackedStart(t, sock, id, `{}`)
	o.Reset()
	e.Reset()
	stdcopy.StdCopy(&o, &e, br)
	if !strings.Contains(o.String(), `executable file not found in $PATH`) || !strings.HasSuffix(o.String(), "\r\n") {
		t.Fatalf("in-stream error: %q %q", o.String(), e.String())
	}
}
