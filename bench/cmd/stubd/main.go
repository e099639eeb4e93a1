// Command stubd is an Engine API stub for timing the berth CLI alone: it
// answers the requests of `version`, `run` (attached or -d, --rm) and
// `rm` at once from memory, on a unix socket, so that the wall time of a
// CLI command against it is the CLI's own share (process start-up,
// parsing, connections, encoding) plus a few microseconds of stub.
//
//	stubd SOCKET
//
// A created container "runs" from its start until both the attach stream
// (if any) and the wait have been answered: the attach is closed (no
// output) and the wait returns status 0 right after the start.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"sync"
)

type ctr struct{ started chan struct{} }

type stub struct {
	mu   sync.Mutex
	ctrs map[string]*ctr
}

var (
	versionPrefix = regexp.MustCompile(`^/v[0-9.]+`)
	byID          = regexp.MustCompile(`^/containers/([^/]+)/(attach|wait|start)$`)
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: stubd SOCKET")
		os.Exit(2)
	}
	_ = os.Remove(os.Args[1])
	l, err := net.Listen("unix", os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "stubd:", err)
		os.Exit(1)
	}
	s := &stub{ctrs: map[string]*ctr{}}
	if err := http.Serve(l, s); err != nil {
		fmt.Fprintln(os.Stderr, "stubd:", err)
		os.Exit(1)
	}
}

func (s *stub) get(id string) *ctr {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.ctrs[id]
	if c == nil {
		c = &ctr{started: make(chan struct{})}
		s.ctrs[id] = c
	}
	return c
}

func reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Api-Version", "1.50")
	w.Header().Set("Ostype", "linux")
	p := versionPrefix.ReplaceAllString(r.URL.Path, "")
	switch {
	case p == "/_ping":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("OK"))
		}
	case p == "/version":
		reply(w, 200, map[string]any{"Version": "stub", "ApiVersion": "1.50", "MinAPIVersion": "1.40", "Os": "linux", "Arch": "amd64"})
	case p == "/containers/create":
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		id := hex.EncodeToString(b)
		s.get(id)
		reply(w, 201, map[string]any{"Id": id, "Warnings": []string{}})
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		m := byID.FindStringSubmatch(p)
		if m == nil {
			reply(w, 404, map[string]string{"message": "page not found"})
			return
		}
		c := s.get(m[1])
		switch m[2] {
		case "start":
			select {
			case <-c.started:
			default:
				close(c.started)
			}
			w.WriteHeader(http.StatusNoContent)
		case "wait":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			http.NewResponseController(w).Flush()
			select {
			case <-c.started:
			case <-r.Context().Done():
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": 0})
		case "attach":
			conn, rw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			_, _ = rw.WriteString("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
			_ = rw.Flush()
			<-c.started
		}
	}
}
