package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"

	"github.com/moby/moby/api/types"
)

// StreamContentType is the media type of an attach, exec or logs stream:
// multiplexed framing (no TTY) is announced as
// application/vnd.docker.multiplexed-stream from API 1.42; a TTY stream,
// and any stream for older clients, is application/vnd.docker.raw-stream.
func StreamContentType(ctx context.Context, multiplexed bool) string {
	if multiplexed && VersionAtLeast(ctx, "1.42") {
		return types.MediaTypeMultiplexedStream
	}
	return types.MediaTypeRawStream
}

// Conn is a connection taken over from the HTTP server for a raw
// bidirectional stream (attach, exec start). Reads return the client's
// input (what the HTTP server had buffered first); writes go straight to
// the client.
type Conn struct {
	net.Conn
	r      io.Reader
	ctx    context.Context
	cancel context.CancelFunc
	stop   func()
	once   sync.Once
	srv    *Server
}

// Read reads the client's input; io.EOF when the client half-closed its
// side (end of stdin) or went away.
func (c *Conn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Context is cancelled when the client closes the connection entirely
// (detected by EPOLLHUP on unix sockets; on TCP only once a write fails)
// or when Close is called. A half-close (end of stdin) does not cancel it.
func (c *Conn) Context() context.Context { return c.ctx }

// CloseWrite ends the output: the client reads EOF.
func (c *Conn) CloseWrite() error {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close ends the output and closes the connection. It is idempotent.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		if c.srv != nil {
			c.srv.untrack(c)
		}
		c.stop()
		c.cancel()
		c.CloseWrite()
		err = c.Conn.Close()
	})
	return err
}

// Hijack takes the connection of r over and answers the upgrade as dockerd
// does: with an "Upgrade" request header, "101 UPGRADED" with contentType
// and "Connection: Upgrade", "Upgrade: tcp"; without one (old clients),
// "200 OK" with application/vnd.docker.raw-stream — the stream follows
// either way. The headers already set on w (Api-Version, Server, ...) are
// sent too. After Hijack the handler must not use w.
func Hijack(w http.ResponseWriter, r *http.Request, contentType string) (*Conn, error) {
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, fmt.Errorf("hijacking the connection: %w", err)
	}
	var head []byte
	if _, upgrade := r.Header["Upgrade"]; upgrade {
		head = fmt.Appendf(nil, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n", contentType)
	} else {
		head = fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n", types.MediaTypeRawStream)
	}
	for k, vs := range w.Header() {
		switch http.CanonicalHeaderKey(k) {
		case "Content-Type", "Content-Length", "Connection", "Upgrade", "Transfer-Encoding":
			continue
		}
		for _, v := range vs {
			head = fmt.Appendf(head, "%s: %s\r\n", k, v)
		}
	}
	head = append(head, '\r', '\n')
	if _, err := nc.Write(head); err != nil {
		nc.Close()
		return nil, err
	}
	// Input the server had buffered is served first; after it, reads go
	// to the socket itself, not through the server's buffered reader:
	// net/http cancels the request's context when a read through it
	// returns an error, and the client's half-close (end of stdin) reads
	// as io.EOF, which would end the whole session.
	var in io.Reader = nc
	if n := brw.Reader.Buffered(); n > 0 {
		head, _ := brw.Reader.Peek(n)
		in = io.MultiReader(bytes.NewReader(append([]byte(nil), head...)), nc)
	}
	ctx, cancel := context.WithCancel(r.Context())
	c := &Conn{Conn: nc, r: in, ctx: ctx, cancel: cancel}
	c.stop = watchHangup(nc, cancel)
	if srv, ok := r.Context().Value(serverKey{}).(*Server); ok {
		c.srv = srv
		srv.track(c)
	}
	return c, nil
}

// underlying is the socket under a TLS connection.
func underlying(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

// Streams are the client's side of an attach or exec.
type Streams struct {
	// Stdin is the client's input, nil unless asked for; io.EOF when the
	// client closes its input (half-close).
	Stdin io.Reader
	// Stdout and Stderr write to the client: with a TTY both raw, else
	// each in its frame of the multiplexed stream. Nil unless asked for.
	Stdout, Stderr io.Writer
}

// HijackedStreams are the client's streams on a hijacked connection: with
// a TTY raw, else framed (stdout 1, stderr 2). Streams not asked for are
// nil. errOut is the stderr stream whether asked for or not, where a
// router reports an error that ends the session.
func HijackedStreams(conn *Conn, tty, stdin, stdout, stderr bool) (s *Streams, errOut io.Writer) {
	s = &Streams{}
	if stdin {
		s.Stdin = conn
	}
	var o, e io.Writer = conn, conn
	if !tty {
		mux := NewMultiplexer(conn)
		o, e = mux.Writer(Stdout), mux.Writer(Stderr)
	}
	if stdout {
		s.Stdout = o
	}
	if stderr {
		s.Stderr = e
	}
	return s, e
}
