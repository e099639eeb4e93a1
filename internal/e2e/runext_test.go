package e2e

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
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
}

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
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", target)
		}},
		ModifyResponse: func(resp *http.Response) error {
			if hide {
				resp.Header.Del("Berth-Extensions")
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
