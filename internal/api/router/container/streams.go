package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/apiext"
	"github.com/berth-dev/berth/internal/errdefs"
)

const notImplemented = errdefs.NotImplemented

func jsonLine(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// timeFormat is Docker's fixed-width RFC 3339 with nanoseconds, the
// prefix of "--timestamps" lines.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

func (c *Router) logs(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	// Everything is checked before the 200 header: after it, errors can
	// only be written into the stream.
	opts := LogsOptions{
		Stdout: api.BoolValue(r, "stdout"), Stderr: api.BoolValue(r, "stderr"),
		Follow: api.BoolValue(r, "follow"), Timestamps: api.BoolValue(r, "timestamps"),
		Details: api.BoolValue(r, "details"), Tail: parseTail(q.Get("tail")),
	}
	if !opts.Stdout && !opts.Stderr {
		return api.InvalidParam(errors.New("Bad parameters: you must choose at least one stream"))
	}
	var err error
	if opts.Since, err = api.ParseTime("since", q.Get("since")); err != nil {
		return err
	}
	if opts.Until, err = api.ParseTime("until", q.Get("until")); err != nil {
		return err
	}
	msgs, tty, err := c.backend.ContainerLogs(ctx, r.PathValue("name"), opts)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", api.StreamContentType(ctx, !tty))
	w.WriteHeader(http.StatusOK)
	fw := api.NewFlushWriter(w)
	fw.Flush()
	stdout, stderr := io.Writer(fw), io.Writer(fw)
	if !tty {
		mux := api.NewMultiplexer(fw)
		stdout, stderr = mux.Writer(api.Stdout), mux.Writer(api.Stderr)
	}
	for {
		var m LogMessage
		var ok bool
		select {
		case m, ok = <-msgs:
		case <-ctx.Done():
			return nil
		}
		if !ok {
			return nil
		}
		if m.Err != nil {
			fmt.Fprintf(stderr, "Error grabbing logs: %v\n", m.Err)
			return nil
		}
		out := stdout
		if m.Stream == "stderr" {
			out = stderr
		}
		var line []byte
		if opts.Timestamps {
			line = append(line, m.Timestamp.UTC().Format(timeFormat)...)
			line = append(line, ' ')
		}
		if opts.Details {
			line = append(line, formatAttrs(m.Attrs)...)
			line = append(line, ' ')
		}
		line = append(line, m.Line...)
		if _, err := out.Write(line); err != nil {
			return nil // the client went away
		}
	}
}

// formatAttrs is the "--details" prefix as dockerd writes it: k=v pairs
// sorted by key, query-escaped, joined by commas.
func formatAttrs(attrs []LogAttr) string {
	sorted := append([]LogAttr(nil), attrs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key < sorted[j].Key })
	parts := make([]string, 0, len(sorted))
	for _, a := range sorted {
		parts = append(parts, url.QueryEscape(a.Key)+"="+url.QueryEscape(a.Value))
	}
	return strings.Join(parts, ",")
}

func (c *Router) stats(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	opts := StatsOptions{Stream: api.BoolValueOrDefault(r, "stream", true)}
	if api.VersionAtLeast(ctx, "1.41") {
		opts.OneShot = api.BoolValueOrDefault(r, "one-shot", false)
	}
	var fw *api.FlushWriter
	err := c.backend.ContainerStats(ctx, r.PathValue("name"), opts, func(s *container.StatsResponse) error {
		if fw == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			fw = api.NewFlushWriter(w)
		}
		b, err := jsonLine(s)
		if err != nil {
			return err
		}
		_, err = fw.Write(b)
		return err
	})
	if fw != nil {
		// The stream started: a later error (or the client leaving) ends
		// it; nothing more can be said on the wire.
		if err != nil && ctx.Err() == nil {
			slog.Debug("api: stats stream ended", "container", r.PathValue("name"), "err", err)
		}
		return nil
	}
	return err
}

func (c *Router) export(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	rc, err := c.backend.ContainerExport(ctx, r.PathValue("name"))
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, rc)
	return err
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", api.InvalidParam(errors.New("path is required"))
	}
	return p, nil
}

func (c *Router) statPath(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := c.backend.ContainerStatPath(ctx, r.PathValue("name"), p)
	if err != nil {
		return err
	}
	if err := api.SetPathStat(w.Header(), st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (c *Router) getArchive(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	rc, st, err := c.backend.ContainerArchivePath(ctx, r.PathValue("name"), p)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := api.SetPathStat(w.Header(), st); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, rc)
	return err
}

func (c *Router) putArchive(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	opts := ExtractOptions{
		NoOverwriteDirNonDir: api.BoolValue(r, "noOverwriteDirNonDir"),
		CopyUIDGID:           api.BoolValue(r, "copyUIDGID"),
	}
	if err := c.backend.ContainerExtractToDir(ctx, r.PathValue("name"), p, opts, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (c *Router) attach(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	name := r.PathValue("name")
	opts := AttachOptions{
		Stdin: api.BoolValue(r, "stdin"), Stdout: api.BoolValue(r, "stdout"), Stderr: api.BoolValue(r, "stderr"),
		Logs: api.BoolValue(r, "logs"), Stream: api.BoolValue(r, "stream"),
		DetachKeys: r.URL.Query().Get("detachKeys"),
	}
	// berth's run in one request (apiext.AttachRun): the wait is
	// registered first, the start follows the attach.
	var run *attachRun
	if cond := r.URL.Query().Get(apiext.RunParam); cond != "" {
		var err error
		if run, err = c.startAttachRun(ctx, name, container.WaitCondition(cond), opts.Stream); err != nil {
			return err
		}
	}
	var conn *api.Conn
	var errOut io.Writer
	opts.Streams = func(tty bool) (*AttachStreams, error) {
		if conn != nil {
			return nil, errors.New("attach streams already set up")
		}
		if run != nil && tty {
			return nil, api.InvalidParam(fmt.Errorf("%s needs a container without a TTY", apiext.RunParam))
		}
		var err error
		conn, err = api.Hijack(w, r.WithContext(ctx), api.StreamContentType(ctx, !tty))
		if err != nil {
			return nil, err
		}
		go func() {
			<-conn.Context().Done()
			cancel()
		}()
		var s *AttachStreams
		s, errOut = api.HijackedStreams(conn, tty, opts.Stdin, opts.Stdout, opts.Stderr)
		if run != nil {
			// The attacher is registered (the backend calls Streams once
			// it is): the start hands it the container's streams.
			go func() { run.started <- c.backend.ContainerStart(context.WithoutCancel(ctx), name) }()
		}
		return s, nil
	}
	err := c.backend.ContainerAttach(ctx, name, opts)
	if conn == nil {
		return err // not hijacked: a normal HTTP error answer
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintf(errOut, "Error attaching: %v\n", err)
	}
	if run != nil {
		run.finish(ctx, conn)
	}
	conn.Close()
	return nil
}

// attachRun is the state of an attach that also starts the container and
// answers its wait (apiext.AttachRun).
type attachRun struct {
	cond    container.WaitCondition
	wait    <-chan container.WaitResponse
	started chan error
}

// startAttachRun checks an AttachRun request and registers its wait.
func (c *Router) startAttachRun(ctx context.Context, name string, cond container.WaitCondition, stream bool) (*attachRun, error) {
	switch cond {
	case container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, api.InvalidParam(fmt.Errorf("invalid %s condition: %q", apiext.RunParam, cond))
	}
	if !stream {
		return nil, api.InvalidParam(fmt.Errorf("%s needs stream=1", apiext.RunParam))
	}
	ch, err := c.backend.ContainerWait(ctx, name, cond)
	if err != nil {
		return nil, err
	}
	return &attachRun{cond: cond, wait: ch, started: make(chan error, 1)}, nil
}

// finish ends the stream with the run's result: the start's error or the
// wait's answer. A start that failed on a container removed on exit is
// reported once it is removed, as the wait would have been answered.
func (run *attachRun) finish(ctx context.Context, conn *api.Conn) {
	var startErr error
	select {
	case startErr = <-run.started:
	case <-ctx.Done():
		return
	}
	var res apiext.RunResult
	if startErr == nil {
		wr, ok := awaitWait(ctx, run.wait)
		if !ok {
			return
		}
		res.Wait = &wr
	} else {
		if run.cond == container.WaitConditionRemoved {
			if _, ok := awaitWait(ctx, run.wait); !ok {
				return
			}
		}
		res.StartError = &apiext.StartError{Status: api.StatusFromError(startErr), Message: startErr.Error()}
	}
	b, err := json.Marshal(&res)
	if err != nil {
		return
	}
	_, _ = api.NewMultiplexer(conn).Writer(api.StreamID(apiext.ResultFrame)).Write(b)
}
