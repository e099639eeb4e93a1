package cli

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/apiext"
	"github.com/berth-dev/berth/internal/memtrim"
)

// berth's extensions to the Engine API (internal/apiext) are used only
// when the daemon announced them: in the Berth-Extensions header, which
// berthd puts on every answer (the /_ping, or the create of run, which
// sends no ping, included). Against dockerd nothing changes.

var (
	extMu      sync.Mutex
	extensions string // the last announcement seen
)

// noteExtensions is the API client's response hook.
func noteExtensions(resp *http.Response) {
	if v, ok := resp.Header[apiext.Header]; ok {
		extMu.Lock()
		extensions = strings.Join(v, ",")
		extMu.Unlock()
	}
}

// daemonHas reports whether the daemon announced extension name (never
// with BERTH_NO_EXTENSIONS=1 in the environment: docker's requests only).
func daemonHas(name string) bool {
	if os.Getenv("BERTH_NO_EXTENSIONS") == "1" {
		return false
	}
	extMu.Lock()
	defer extMu.Unlock()
	for _, n := range strings.Split(extensions, ",") {
		if strings.TrimSpace(n) == name {
			return true
		}
	}
	return false
}

// runAttachRun is the rest of `run` for an attached container without a
// TTY against berthd: one hijacked request (apiext.AttachRun) registers
// the wait, attaches, starts the container and ends with the start's
// error or the wait's answer. docker's sequence — attach and wait, both
// answered, then start — costs two more requests and the round trips
// between them.
func (c *Cli) runAttachRun(ctx context.Context, api *client.Client, id string, cfg *container.Config, autoRemove bool, keysSpec string, allSignals func()) error {
	runCmd := func(err error) error { return runErrorFor("run", err) }
	cond := exitCondition(autoRemove)
	q := url.Values{"stream": {"1"}, apiext.RunParam: {string(cond)}}
	for k, on := range map[string]bool{"stdin": cfg.AttachStdin, "stdout": cfg.AttachStdout, "stderr": cfg.AttachStderr} {
		if on {
			q.Set(k, "1")
		}
	}
	if keysSpec != "" {
		q.Set("detachKeys", keysSpec)
	}
	path := "/containers/" + id + "/attach?" + q.Encode()
	if v := api.ClientVersion(); v != "" {
		path = "/v" + v + path
	}
	conn, err := api.DialHijack(ctx, path, "tcp", map[string][]string{"Content-Type": {"text/plain"}})
	if err != nil {
		// Refused before anything started (berthd starts the container
		// only once the stream is set up): docker's requests then, which
		// also report the daemon's own message (DialHijack has only the
		// status).
		return errNoAttachRun
	}
	defer conn.Close()
	allSignals()
	// While the daemon starts and runs the container, the CLI only waits:
	// give back its binary's page-table entries now (memtrim), rather than
	// have the kernel tear them down on the path of exit.
	go memtrim.DropCleanText()
	if cfg.AttachStdin {
		go func() {
			if _, err := io.Copy(conn, c.in); err == nil || errors.Is(err, io.EOF) {
				if cw, ok := conn.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
				}
			}
		}()
	}
	stdout, stderr := c.out, c.err
	if !cfg.AttachStdout {
		stdout = io.Discard
	}
	if !cfg.AttachStderr {
		stderr = io.Discard
	}
	res, err := demuxRun(bufio.NewReader(conn), stdout, stderr)
	if err != nil {
		return runCmd(err)
	}
	if se := res.StartError; se != nil {
		return startErrorFor("run", fmt.Errorf("Error response from daemon: %s", se.Message))
	}
	if res.Wait == nil {
		return runCmd(errors.New("the daemon ended the run without a result"))
	}
	if res.Wait.Error != nil {
		return runCmd(errors.New(res.Wait.Error.Message))
	}
	if res.Wait.StatusCode != 0 {
		return StatusError{StatusCode: int(res.Wait.StatusCode)}
	}
	return nil
}

// errNoAttachRun: the AttachRun request was refused; run goes on with
// docker's requests.
var errNoAttachRun = errors.New("attach-run refused")

// demuxRun copies an AttachRun stream's frames to stdout and stderr until
// its result frame, which it returns.
func demuxRun(r io.Reader, stdout, stderr io.Writer) (*apiext.RunResult, error) {
	var head [8]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, errors.New("the daemon closed the run's stream without a result")
			}
			return nil, err
		}
		n := binary.BigEndian.Uint32(head[4:])
		if n > 1<<30 {
			return nil, fmt.Errorf("run stream: frame of %d bytes", n)
		}
		if uint32(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		switch head[0] {
		case 0, 1:
			if _, err := stdout.Write(buf); err != nil {
				return nil, err
			}
		case 2:
			if _, err := stderr.Write(buf); err != nil {
				return nil, err
			}
		case 3: // the daemon's error
			return nil, errors.New(strings.TrimSpace(string(buf)))
		case apiext.ResultFrame:
			var res apiext.RunResult
			if err := json.Unmarshal(buf, &res); err != nil {
				return nil, fmt.Errorf("run stream: result: %w", err)
			}
			return &res, nil
		default:
			return nil, fmt.Errorf("run stream: unknown frame type %d", head[0])
		}
	}
}
