package build_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"

	apibuild "github.com/moby/moby/api/types/build"

	"github.com/berth-dev/berth/internal/api/apitest"
	buildrouter "github.com/berth-dev/berth/internal/api/router/build"
	"github.com/berth-dev/berth/internal/errdefs"
)

// fake records the options and replays a scripted build.
type fake struct {
	got      buildrouter.Options
	body     string
	stream   []string
	err      error
	pruneAll bool
}

type codeErr struct{ code int }

func (e codeErr) Error() string { return "The command '/bin/sh -c exit 3' returned a non-zero code: 3" }
func (e codeErr) ExitCode() int { return e.code }

func (f *fake) Build(ctx context.Context, o buildrouter.Options, body io.Reader, out buildrouter.Output) (string, error) {
	f.got = o
	b, _ := io.ReadAll(body)
	f.body = string(b)
	for _, s := range f.stream {
		out.Stream(s)
	}
	if f.err != nil {
		return "", f.err
	}
	out.Aux("sha256:abc")
	return "sha256:abc", nil
}

func (f *fake) PruneCache(ctx context.Context, all bool, filters map[string][]string) (*apibuild.CachePruneReport, error) {
	f.pruneAll = all
	return &apibuild.CachePruneReport{CachesDeleted: []string{"x"}, SpaceReclaimed: 7}, nil
}

func messages(t *testing.T, body string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

func TestBuildQueryAndStream(t *testing.T) {
	f := &fake{stream: []string{"Step 1/1 : FROM busybox\n"}}
	h := apitest.NewServer(t, buildrouter.New(f))
	w := apitest.Do(t, h, "POST", `/build?t=a:1&t=b&dockerfile=sub/Df&target=x&nocache=1&pull=1&q=1&networkmode=none&extrahosts=h1:1.2.3.4,h2:5.6.7.8&buildargs={"A":"1","B":null}&labels={"l":"v"}&platform=linux/amd64&memory=67108864&cpushares=512&shmsize=1024`, strings.NewReader("ctx"))
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	o := f.got
	if strings.Join(o.Tags, ",") != "a:1,b" || o.Dockerfile != "sub/Df" || o.Target != "x" || !o.NoCache || !o.Pull || !o.Quiet ||
		o.NetworkMode != "none" || strings.Join(o.ExtraHosts, ",") != "h1:1.2.3.4,h2:5.6.7.8" || o.Labels["l"] != "v" ||
		*o.BuildArgs["A"] != "1" || o.BuildArgs["B"] != nil || o.Platform != "linux/amd64" || f.body != "ctx" ||
		o.Resources.Memory != 64<<20 || o.Resources.CPUShares != 512 || o.ShmSize != 1024 {
		t.Fatalf("options: %+v", o)
	}
	ms := messages(t, w.Body.String())
	if len(ms) != 2 || ms[0]["stream"] != "Step 1/1 : FROM busybox\n" || ms[1]["aux"].(map[string]any)["ID"] != "sha256:abc" {
		t.Fatalf("stream: %v", ms)
	}
	if w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("content type %q", w.Header().Get("Content-Type"))
	}
}

func TestBuildErrors(t *testing.T) {
	// Before any output: the error is the response.
	f := &fake{err: errdefs.Newf(errdefs.InvalidArgument, "dockerfile parse error on line 3: unknown instruction: X")}
	h := apitest.NewServer(t, buildrouter.New(f))
	w := apitest.Do(t, h, "POST", "/build", strings.NewReader(""))
	if w.Code != 400 || !strings.Contains(w.Body.String(), "line 3") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	// After output: an errorDetail, with a failed RUN's code.
	f = &fake{stream: []string{"Step 1/2 : RUN exit 3\n"}, err: codeErr{3}}
	h = apitest.NewServer(t, buildrouter.New(f))
	w = apitest.Do(t, h, "POST", "/build", strings.NewReader(""))
	ms := messages(t, w.Body.String())
	if w.Code != 200 || len(ms) != 2 {
		t.Fatalf("%d %v", w.Code, ms)
	}
	ed := ms[1]["errorDetail"].(map[string]any)
	if ed["code"].(float64) != 3 || !strings.Contains(ed["message"].(string), "non-zero code: 3") || ms[1]["error"] == "" {
		t.Fatalf("errorDetail: %v", ms[1])
	}
	for _, q := range []string{"buildargs={bad", "labels=[1]", "version=2", "remote=https://x/context.tar", "memory=lots", `outputs=[{"Type":"local"}]`, "squash=1"} {
		w = apitest.Do(t, h, "POST", "/build?"+q, strings.NewReader(""))
		if w.Code < 400 {
			t.Errorf("%s: %d", q, w.Code)
		}
	}
	// Secrets: a bad header is refused; a good one reaches the backend.
	w = apitest.Do(t, h, "POST", "/build", strings.NewReader(""), buildrouter.SecretsHeader, "!!")
	if w.Code != 400 {
		t.Errorf("bad secrets header: %d", w.Code)
	}
	f = &fake{}
	h = apitest.NewServer(t, buildrouter.New(f))
	apitest.Do(t, h, "POST", "/build", strings.NewReader(""), buildrouter.SecretsHeader, "eyJzIjoiYzJWamNtVjAifQ==")
	if string(f.got.Secrets["s"]) != "secret" {
		t.Errorf("secrets: %v", f.got.Secrets)
	}
	// A git remote reaches the backend, as with dockerd.
	apitest.Do(t, h, "POST", "/build?remote="+url.QueryEscape("https://127.0.0.1/r.git#v1:sub"), nil)
	if f.got.Remote != "https://127.0.0.1/r.git#v1:sub" {
		t.Errorf("remote: %q", f.got.Remote)
	}
	// berth's context-by-reference and SSH headers only on a unix socket.
	for _, hd := range []string{buildrouter.ContextHeader, buildrouter.SSHHeader} {
		if w := apitest.Do(t, h, "POST", "/build", strings.NewReader(""), hd, "e30="); w.Code != 400 {
			t.Errorf("%s over TCP: %d", hd, w.Code)
		}
	}
	_ = errors.New
}

func TestBuildPrune(t *testing.T) {
	f := &fake{}
	h := apitest.NewServer(t, buildrouter.New(f))
	w := apitest.Do(t, h, "POST", `/build/prune?all=1&filters={"until":{"24h":true}}`, nil)
	if w.Code != 200 || !f.pruneAll || !strings.Contains(w.Body.String(), `"SpaceReclaimed":7`) {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if w := apitest.Do(t, h, "POST", `/build/prune?filters=nope`, nil); w.Code != 400 {
		t.Fatalf("bad filters: %d", w.Code)
	}
}
