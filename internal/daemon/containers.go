package daemon

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"time"

	apicontainer "github.com/moby/moby/api/types/container"
	apievents "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/api/filters"
	ctrrouter "github.com/berth-dev/berth/internal/api/router/container"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logger"
)

// containerBackend adapts the container service to the container router.
type containerBackend struct{ d *Daemon }

var _ ctrrouter.Backend = containerBackend{}

func (b containerBackend) svc() *container.Service { return b.d.containers }

func argsMap(a filters.Args) map[string][]string {
	m := map[string][]string{}
	for _, k := range a.Keys() {
		m[k] = a.Get(k)
	}
	return m
}

func (b containerBackend) ContainerList(ctx context.Context, o ctrrouter.ListOptions) ([]apicontainer.Summary, error) {
	return b.svc().List(ctx, container.ListOptions{All: o.All, Limit: o.Limit, Size: o.Size, Filters: argsMap(o.Filters)})
}

func (b containerBackend) ContainerInspect(ctx context.Context, name string, size bool) (*apicontainer.InspectResponse, error) {
	return b.svc().Inspect(ctx, name, size)
}

// ContainerTop runs the host's ps over the container's processes, as
// dockerd does (top.go).
func (b containerBackend) ContainerTop(ctx context.Context, name, psArgs string) (*apicontainer.TopResponse, error) {
	return b.d.top(ctx, name, psArgs)
}

func (b containerBackend) ContainerChanges(ctx context.Context, name string) ([]apicontainer.FilesystemChange, error) {
	return b.d.containerChanges(ctx, name)
}

func (b containerBackend) ContainerCreate(ctx context.Context, o ctrrouter.CreateOptions) (apicontainer.CreateResponse, error) {
	co := container.CreateOptions{Name: o.Name, Config: o.Config, HostConfig: o.HostConfig, Networking: o.NetworkingConfig}
	if o.Platform != nil {
		co.Platform = o.Platform.OS + "/" + o.Platform.Architecture
	}
	res, err := b.svc().Create(ctx, co)
	if err != nil {
		return apicontainer.CreateResponse{}, err
	}
	w := res.Warnings
	if w == nil {
		w = []string{}
	}
	return apicontainer.CreateResponse{ID: res.ID, Warnings: w}, nil
}

func (b containerBackend) ContainerUpdate(ctx context.Context, name string, u apicontainer.UpdateConfig) (apicontainer.UpdateResponse, error) {
	w, err := b.svc().Update(ctx, name, &u)
	return apicontainer.UpdateResponse{Warnings: w}, err
}

func (b containerBackend) ContainerRename(ctx context.Context, name, newName string) error {
	return b.svc().Rename(ctx, name, newName)
}

func (b containerBackend) ContainerRemove(ctx context.Context, name string, o ctrrouter.RemoveOptions) error {
	return b.svc().Remove(ctx, name, container.RemoveOptions{Force: o.Force, Volumes: o.RemoveVolumes, Link: o.RemoveLink})
}

func (b containerBackend) ContainersPrune(ctx context.Context, f filters.Args) (*apicontainer.PruneReport, error) {
	rep, err := b.svc().Prune(ctx, argsMap(f))
	if err == nil {
		// dockerd reports every prune with what it reclaimed.
		b.d.events.Publish(apievents.ContainerEventType, apievents.ActionPrune, "", map[string]string{"reclaimed": strconv.FormatUint(rep.SpaceReclaimed, 10)})
	}
	return rep, err
}

func (b containerBackend) ContainerStart(ctx context.Context, name string) error {
	return b.svc().Start(ctx, name)
}

func (b containerBackend) ContainerStop(ctx context.Context, name string, o ctrrouter.StopOptions) error {
	return b.svc().Stop(ctx, name, container.StopOptions{Signal: o.Signal, Timeout: o.Timeout})
}

func (b containerBackend) ContainerRestart(ctx context.Context, name string, o ctrrouter.StopOptions) error {
	return b.svc().Restart(ctx, name, container.StopOptions{Signal: o.Signal, Timeout: o.Timeout})
}

func (b containerBackend) ContainerKill(ctx context.Context, name, signal string) error {
	return b.svc().Kill(ctx, name, signal)
}

func (b containerBackend) ContainerPause(ctx context.Context, name string) error {
	return b.svc().Pause(ctx, name)
}

func (b containerBackend) ContainerUnpause(ctx context.Context, name string) error {
	return b.svc().Unpause(ctx, name)
}

// ContainerAttach bridges the router's stream setup to the service's
// attach, which speaks Docker's multiplexed framing (the shim frames the
// output): without a TTY the frames are split back onto the router's
// stdout and stderr writers.
func (b containerBackend) ContainerAttach(ctx context.Context, name string, o ctrrouter.AttachOptions) error {
	c, err := b.svc().Get(name)
	if err != nil {
		return err
	}
	tty := c.Tty()
	if !o.Stream {
		// logs-only attach: replay the log and stop.
		streams, err := o.Streams(tty)
		if err != nil {
			return err
		}
		if !o.Logs {
			return nil
		}
		return b.svc().Logs(ctx, name, container.LogsOptions{Stdout: o.Stdout, Stderr: o.Stderr, Tail: -1},
			func(bool) error { return nil },
			func(m *logger.Message) error { return writeTo(streams, m.Source, lineOf(m)) })
	}
	var streams *ctrrouter.AttachStreams
	cl := &attachClient{}
	err = b.svc().Attach(ctx, name, container.AttachOptions{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr, DetachKeys: o.DetachKeys,
		Ready: func() error {
			var err error
			streams, err = o.Streams(tty)
			if err != nil {
				return err
			}
			cl.streams, cl.tty = streams, tty
			return nil
		}}, cl)
	if errors.Is(err, container.ErrDetached) {
		return nil
	}
	return err
}

// lineOf is a record's bytes as the container wrote them (a fresh copy).
func lineOf(m *logger.Message) []byte {
	b := make([]byte, 0, len(m.Line)+1)
	b = append(b, m.Line...)
	if !m.Partial {
		b = append(b, '\n')
	}
	return b
}

func writeTo(s *ctrrouter.AttachStreams, src string, data []byte) error {
	w := s.Stdout
	if src == "stderr" {
		w = s.Stderr
	}
	if w == nil {
		return nil
	}
	_, err := w.Write(data)
	return err
}

// attachClient is the service's view of the router's streams: reads are
// the client's stdin, writes are the shim's (framed unless tty) output.
type attachClient struct {
	streams *ctrrouter.AttachStreams
	tty     bool
	hdr     [8]byte
	hn      int
	left    int
	stream  byte
}

func (a *attachClient) Read(p []byte) (int, error) {
	if a.streams == nil || a.streams.Stdin == nil {
		return 0, io.EOF
	}
	return a.streams.Stdin.Read(p)
}

func (a *attachClient) Write(p []byte) (int, error) {
	if a.tty {
		if a.streams.Stdout == nil {
			return len(p), nil
		}
		return a.streams.Stdout.Write(p)
	}
	n := len(p)
	for len(p) > 0 {
		if a.left == 0 {
			k := copy(a.hdr[a.hn:], p)
			a.hn += k
			p = p[k:]
			if a.hn < 8 {
				break
			}
			a.stream = a.hdr[0]
			a.left = int(binary.BigEndian.Uint32(a.hdr[4:]))
			a.hn = 0
			continue
		}
		k := min(a.left, len(p))
		var w io.Writer
		switch a.stream {
		case 1:
			w = a.streams.Stdout
		case 2:
			w = a.streams.Stderr
		}
		if w != nil {
			if _, err := w.Write(p[:k]); err != nil {
				return 0, err
			}
		}
		a.left -= k
		p = p[k:]
	}
	return n, nil
}

func (a *attachClient) Close() error { return nil }

func (b containerBackend) ContainerLogs(ctx context.Context, name string, o ctrrouter.LogsOptions) (<-chan ctrrouter.LogMessage, bool, error) {
	c, err := b.svc().Get(name)
	if err != nil {
		return nil, false, err
	}
	if !o.Stdout && !o.Stderr {
		return nil, false, errdefs.Newf(errdefs.InvalidArgument, "Bad parameters: you must choose at least one stream")
	}
	ch := make(chan ctrrouter.LogMessage, 64)
	started := make(chan error, 1)
	go func() {
		defer close(ch)
		first := true
		err := b.svc().Logs(ctx, name, container.LogsOptions{Stdout: o.Stdout, Stderr: o.Stderr, Follow: o.Follow, Since: o.Since, Until: o.Until, Tail: o.Tail},
			func(bool) error { first = false; started <- nil; return nil },
			func(m *logger.Message) error {
				lm := ctrrouter.LogMessage{Stream: m.Source, Line: lineOf(m), Timestamp: m.Timestamp}
				for k, v := range m.Attrs {
					lm.Attrs = append(lm.Attrs, ctrrouter.LogAttr{Key: k, Value: v})
				}
				select {
				case ch <- lm:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			})
		if first {
			started <- err
			return
		}
		if err != nil && ctx.Err() == nil {
			ch <- ctrrouter.LogMessage{Err: err}
		}
	}()
	if err := <-started; err != nil {
		return nil, false, err
	}
	return ch, c.Tty(), nil
}

// ContainerStats samples cgroup files: one-shot at once, otherwise a
// sample with the previous one's CPU figures every second (the first one
// after a second, so the client can compute a CPU percentage).
func (b containerBackend) ContainerStats(ctx context.Context, name string, o ctrrouter.StatsOptions, send func(*apicontainer.StatsResponse) error) error {
	if !o.Stream && !o.OneShot {
		// One sample with a previous one for the CPU share, at once
		// when berth has a recent one (see container.StatsOnce).
		st, err := b.svc().StatsOnce(ctx, name)
		if err != nil {
			return err
		}
		return send(st)
	}
	prev, err := b.svc().Stats(ctx, name)
	if err != nil {
		return err
	}
	if o.OneShot && !o.Stream {
		return send(prev)
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := b.svc().Stats(ctx, name)
		if err != nil {
			return err
		}
		cur.PreRead, cur.PreCPUStats = prev.Read, prev.CPUStats
		if err := send(cur); err != nil {
			return err
		}
		if !o.Stream {
			return nil
		}
		prev = cur
	}
}

func (b containerBackend) ContainerWait(ctx context.Context, name string, cond apicontainer.WaitCondition) (<-chan apicontainer.WaitResponse, error) {
	ready := make(chan struct{})
	errc := make(chan error, 1)
	ch := make(chan apicontainer.WaitResponse, 1)
	go func() {
		res, err := b.svc().Wait(ctx, name, cond, func() { close(ready) })
		if err != nil {
			select {
			case <-ready:
			default:
				errc <- err
				return
			}
			return
		}
		r := apicontainer.WaitResponse{StatusCode: int64(res.StatusCode)}
		if res.Error != "" {
			r.Error = &apicontainer.WaitExitError{Message: res.Error}
		}
		ch <- r
	}()
	select {
	case <-ready:
		return ch, nil
	case err := <-errc:
		return nil, err
	}
}

func (b containerBackend) ContainerResize(ctx context.Context, name string, height, width uint32) error {
	return b.svc().Resize(ctx, name, uint(height), uint(width))
}

func (b containerBackend) ContainerStatPath(ctx context.Context, name, path string) (*apicontainer.PathStat, error) {
	return b.svc().StatPath(ctx, name, path)
}

func (b containerBackend) ContainerArchivePath(ctx context.Context, name, path string) (io.ReadCloser, *apicontainer.PathStat, error) {
	return b.svc().ArchivePath(ctx, name, path)
}

func (b containerBackend) ContainerExtractToDir(ctx context.Context, name, path string, o ctrrouter.ExtractOptions, content io.Reader) error {
	return b.svc().ExtractToDir(ctx, name, path, container.ExtractOptions{NoOverwriteDirNonDir: o.NoOverwriteDirNonDir, CopyUIDGID: o.CopyUIDGID}, content)
}

func (b containerBackend) ContainerExport(ctx context.Context, name string) (io.ReadCloser, error) {
	return b.d.exportContainer(ctx, name)
}

// publish is a container event helper for other daemon parts.
func (d *Daemon) publish(action, id string, attrs map[string]string) {
	d.events.Publish(apievents.ContainerEventType, apievents.Action(action), id, attrs)
}
