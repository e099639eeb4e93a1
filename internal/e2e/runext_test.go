package e2e

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// apiProxy is a reverse proxy on a socket of its own in front of d's
// berthd that records each request ("METHOD path?query") and, with
// hide set, takes berth's extension announcement off every answer (as
// dockerd would answer).
type apiProxy struct {
	sock string
	mu   sync.Mutex
	reqs []string
	// refuse answers 409 to any berth-run request instead of passing it on.
	refuse bool
	// maxVersion, if set, plays an older daemon: requests for a newer API
	// version get dockerd's 400, and the ping's Api-Version says this.
	maxVersion string
}

var versionPath = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)/`)

func newAPIProxy(t *testing.T, d *daemon, hide bool) *apiProxy {
	t.Helper()
	target := d.sock
	p := &apiProxy{sock: filepath.Join(filepath.Dir(target), "proxy.sock")}
	ln, err := net.Listen("unix", p.sock)
	if err != nil {
		t.Fatal(err)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "berthd"})
			r.Out.Host = "berthd"
		},
		Transport: unixTransport(target),
		ModifyResponse: func(resp *http.Response) error {
			if hide {
				resp.Header.Del("Berth-Extensions")
			}
			p.mu.Lock()
			max := p.maxVersion
			p.mu.Unlock()
			if max != "" {
				resp.Header.Set("Api-Version", max)
			}
			return nil
		},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.reqs = append(p.reqs, r.Method+" "+r.URL.RequestURI())
		refuse := p.refuse
		p.mu.Unlock()
		if refuse && r.URL.Query().Has("berth-run") {
			http.Error(w, `{"message":"refused by the test"}`, http.StatusConflict)
			return
		}
		p.mu.Lock()
		max := p.maxVersion
		p.mu.Unlock()
		if m := versionPath.FindStringSubmatch(r.URL.Path); m != nil && max != "" && versionLess(max, m[1]) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"message":"client version %s is too new. Maximum supported API version is %s"}`, m[1], max)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return p
}

// take returns the requests recorded since the last call.
func (p *apiProxy) take() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.reqs
	p.reqs = nil
	return r
}

// TestRunAttachRun: against berthd, `berth run` of an attached container
// without a TTY sends one attach request that also starts the container
// and answers its wait (internal/apiext.AttachRun) instead of attach,
// wait and start: output (stdout and stderr apart), stdin, exit codes,
// --rm (removed before the CLI returns) and a start that fails (127, the
// daemon's message, and --rm still honoured) are as before. Against a
// daemon that does not announce the extension (dockerd) the berth CLI
// sends docker's requests, and the docker CLI always does.
func TestRunAttachRun(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	for _, hide := range []bool{false, true} {
		p := newAPIProxy(t, d, hide)
		saved := d.sock
		d.sock = p.sock // for d.cli
		t.Cleanup(func() { d.sock = saved })
		for _, bin := range []string{bins.cli, bins.docker} {
			ext := bin == bins.cli && !hide
			name := filepath.Base(bin)
			p.take()
			out, errOut, code := d.cli(bin, nil, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
			if code != 3 || out != "out\n" || !strings.Contains(errOut, "err\n") || strings.Contains(out, "err") {
				t.Fatalf("%s (hidden %v): run: exit %d, stdout %q, stderr %q", name, hide, code, out, errOut)
			}
			reqs := strings.Join(p.take(), "\n")
			if used := strings.Contains(reqs, "berth-run=removed"); used != ext {
				t.Fatalf("%s (hidden %v): berth-run used %v, want %v:\n%s", name, hide, used, ext, reqs)
			}
			if sent := strings.Contains(reqs, "/wait") || strings.Contains(reqs, "/start"); sent == ext {
				t.Fatalf("%s (hidden %v): wait/start requests sent %v:\n%s", name, hide, sent, reqs)
			}
			if ids := d.mustCLI("ps", "-aq"); ids != "" {
				t.Fatalf("%s (hidden %v): --rm container left: %q", name, hide, ids)
			}
			out, _, code = d.cli(bin, strings.NewReader("from stdin\n"), "run", "-i", "--rm", "--network", "none", "busybox", "cat")
			if code != 0 || out != "from stdin\n" {
				t.Fatalf("%s (hidden %v): run -i: exit %d, %q", name, hide, code, out)
			}
			_, errOut, code = d.cli(bin, nil, "run", "--rm", "--network", "none", "busybox", "nosuch")
			if code != 127 || !strings.Contains(errOut, `"nosuch": executable file not found`) {
				t.Fatalf("%s (hidden %v): run of a missing command: exit %d, %q", name, hide, code, errOut)
			}
			if ids := d.mustCLI("ps", "-aq"); ids != "" {
				t.Fatalf("%s (hidden %v): --rm container left after a failed start: %q", name, hide, ids)
			}
			// Without --rm: the exit is the next exit; the container stays.
			_, _, code = d.cli(bin, nil, "run", "--network", "none", "--name", "kept", "busybox", "sh", "-c", "exit 5")
			if code != 5 || d.state("kept") != "exited 5" {
				t.Fatalf("%s (hidden %v): run without --rm: exit %d, %s", name, hide, code, d.state("kept"))
			}
			d.mustCLI("rm", "kept")
		}
		if !hide {
			// A refused berth-run request: the CLI goes on with docker's
			// requests (nothing was started), with the same result.
			p.mu.Lock()
			p.refuse = true
			p.mu.Unlock()
			p.take()
			out, _, code := d.cli(bins.cli, nil, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo fell back; exit 6")
			reqs := strings.Join(p.take(), "\n")
			if code != 6 || out != "fell back\n" || !strings.Contains(reqs, "berth-run") || !strings.Contains(reqs, "/start") || !strings.Contains(reqs, "/wait") {
				t.Fatalf("run with berth-run refused: exit %d, %q:\n%s", code, out, reqs)
			}
			if ids := d.mustCLI("ps", "-aq"); ids != "" {
				t.Fatalf("--rm container left after the fallback: %q", ids)
			}
		}
		d.sock = saved
		os.Remove(p.sock)
	}
}

// versionLess compares API versions "1.x".
func versionLess(a, b string) bool {
	pa, pb := strings.SplitN(a, ".", 2), strings.SplitN(b, ".", 2)
	for i := range 2 {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return false
}

// TestRunCreateWithoutPing: berth's run and create send the create at once
// with the client's own API version, no /_ping first; against a daemon
// whose API is older (here a proxy that plays one: 1.47) the create is
// refused as dockerd refuses it, and the CLI negotiates (a ping) and sends
// it again with the daemon's version, which every later request uses; the
// run's result is the same. --pull always negotiates before its pull.
func TestRunCreateWithoutPing(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	p := newAPIProxy(t, d, false)
	saved := d.sock
	d.sock = p.sock
	t.Cleanup(func() { d.sock = saved })
	check := func(what string, reqs []string, wantPing bool, version string) {
		t.Helper()
		all := strings.Join(reqs, "\n")
		if ping := strings.Contains(all, "/_ping"); ping != wantPing {
			t.Errorf("%s: ping sent %v, want %v:\n%s", what, ping, wantPing, all)
		}
		for _, r := range reqs {
			if strings.Contains(r, "/_ping") || strings.Contains(r, "/containers/create") {
				continue
			}
			if !strings.Contains(r, "/v"+version+"/") {
				t.Errorf("%s: request %q not for API %s:\n%s", what, r, version, all)
			}
		}
		if last := lastCreate(reqs); !strings.Contains(last, "/v"+version+"/containers/create") {
			t.Errorf("%s: last create %q, want API %s:\n%s", what, last, version, all)
		}
	}
	p.take()
	out, _, code := d.cli(bins.cli, nil, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo hi; exit 4")
	if code != 4 || out != "hi\n" {
		t.Fatalf("run: exit %d, %q", code, out)
	}
	check("run", p.take(), false, "1.56")
	id, _, code := d.cli(bins.cli, nil, "create", "--network", "none", "busybox", "true")
	if code != 0 {
		t.Fatalf("create: exit %d", code)
	}
	check("create", p.take(), false, "1.56")
	d.mustCLI("rm", strings.TrimSpace(id))

	p.mu.Lock()
	p.maxVersion = "1.47"
	p.mu.Unlock()
	p.take()
	out, errOut, code := d.cli(bins.cli, nil, "run", "--rm", "--network", "none", "busybox", "sh", "-c", "echo older; exit 4")
	if code != 4 || out != "older\n" || errOut != "" {
		t.Fatalf("run against API 1.47: exit %d, %q, stderr %q", code, out, errOut)
	}
	reqs := p.take()
	check("run against API 1.47", reqs, true, "1.47")
	if n := strings.Count(strings.Join(reqs, "\n"), "/containers/create"); n != 2 {
		t.Errorf("run against API 1.47: %d creates, want the refused one and the one after the ping:\n%s", n, strings.Join(reqs, "\n"))
	}
	// (Nothing listens on 127.0.0.1:1: the pull fails, after the ping,
	// with API 1.47; no traffic leaves the machine.)
	out, _, code = d.cli(bins.cli, nil, "run", "--pull", "always", "--rm", "--network", "none", "127.0.0.1:1/nosuch", "true")
	reqs = p.take()
	if code == 0 || !strings.Contains(strings.Join(reqs, "\n"), "/_ping") || !strings.Contains(strings.Join(reqs, "\n"), "/v1.47/images/create") {
		t.Errorf("run --pull always against API 1.47: exit %d, %q:\n%s", code, out, strings.Join(reqs, "\n"))
	}
	if ids := d.mustCLI("ps", "-aq"); ids != "" {
		t.Fatalf("containers left: %q", ids)
	}
}

// lastCreate returns the last container create among reqs.
func lastCreate(reqs []string) string {
	last := ""
	for _, r := range reqs {
		if strings.Contains(r, "/containers/create") {
			last = r
		}
	}
	return last
}
