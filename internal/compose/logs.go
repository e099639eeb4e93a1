package compose

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// LogPrinter writes container output line by line, each line prefixed
// with the container's name as Docker Compose shows it ("web-1  | "),
// names padded to the longest one and coloured when Color is set.
type LogPrinter struct {
	Out      io.Writer
	Color    bool
	NoPrefix bool
	Project  string

	mu     sync.Mutex
	width  int
	colors map[string]string
}

var logColors = []string{"36", "33", "32", "35", "34", "96", "93", "92", "95", "94"}

// displayName is the name shown in prefixes: the container name without
// the "<project>-" prefix.
func (lp *LogPrinter) displayName(name string) string {
	if lp.Project != "" {
		if rest, ok := strings.CutPrefix(name, lp.Project+separator); ok {
			return rest
		}
	}
	return name
}

// Register makes the printer aware of a container name before its
// output arrives, so all prefixes have the same width.
func (lp *LogPrinter) Register(name string) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	lp.register(lp.displayName(name))
}

func (lp *LogPrinter) register(d string) {
	if lp.colors == nil {
		lp.colors = map[string]string{}
	}
	if _, ok := lp.colors[d]; !ok {
		lp.colors[d] = logColors[len(lp.colors)%len(logColors)]
	}
	if len(d)+1 > lp.width {
		lp.width = len(d) + 1
	}
}

func (lp *LogPrinter) prefix(d string) string {
	if lp.NoPrefix {
		return ""
	}
	p := fmt.Sprintf("%-"+strconv.Itoa(lp.width)+"s |", d)
	if lp.Color {
		p = "\x1b[" + lp.colors[d] + "m" + p + "\x1b[0m"
	}
	return p + " "
}

// Line prints one line of name's output.
func (lp *LogPrinter) Line(name, line string) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	d := lp.displayName(name)
	lp.register(d)
	fmt.Fprintf(lp.Out, "%s%s\n", lp.prefix(d), line)
}

// Status prints a message about name without a log prefix, as Compose
// prints "web-1 exited with code 0".
func (lp *LogPrinter) Status(name, msg string) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	d := lp.displayName(name)
	lp.register(d)
	if lp.Color {
		d = "\x1b[" + lp.colors[d] + "m" + d + "\x1b[0m"
	}
	fmt.Fprintf(lp.Out, "%s %s\n", d, msg)
}

// lineWriter splits writes into lines for a printer.
type lineWriter struct {
	lp   *LogPrinter
	name string
	buf  bytes.Buffer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	for {
		b := w.buf.Bytes()
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			break
		}
		w.lp.Line(w.name, strings.TrimSuffix(string(b[:i]), "\r"))
		w.buf.Next(i + 1)
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	if w.buf.Len() > 0 {
		w.lp.Line(w.name, w.buf.String())
		w.buf.Reset()
	}
}

// LogOptions are `compose logs`' flags.
type LogOptions struct {
	Follow     bool
	Timestamps bool
	Tail       string
	Since      string
	Until      string
}

// Logs prints the output of the services' containers (one-off ones
// excluded) through lp. With Follow it streams until every followed
// container has stopped (or ctx ends), picking up containers of the
// project that start meanwhile (a recreate, a scale up), as Compose does.
func (e *Engine) Logs(ctx context.Context, p *types.Project, services []string, o LogOptions, lp *LogPrinter) error {
	if !o.Follow {
		cs, err := e.listContainers(ctx, p.Name, oneoffExclude, true, services...)
		if err != nil {
			return err
		}
		for _, c := range cs {
			lp.Register(containerName(c))
		}
		return forEachContainer(cs, func(c container.Summary) error {
			return e.streamLogs(ctx, c, o, lp)
		})
	}
	// Subscribe before listing so no start falls between the two.
	evCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	events := e.API.Events(evCtx, client.EventsListOptions{
		Since: fmt.Sprintf("%d", time.Now().Unix()),
		Filters: make(client.Filters).Add("type", "container").Add("event", "start").
			Add("label", LabelProject+"="+p.Name, LabelOneoff+"=False"),
	})
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, true, services...)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range services {
		want[s] = true
	}
	var (
		mu     sync.Mutex
		seen   = map[string]bool{}
		active int
		done   = make(chan struct{}, 1)
		wg     sync.WaitGroup
	)
	follow := func(c container.Summary, lo LogOptions) {
		mu.Lock()
		if seen[c.ID] {
			mu.Unlock()
			return
		}
		seen[c.ID] = true
		active++
		mu.Unlock()
		lp.Register(containerName(c))
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = e.streamLogs(ctx, c, lo, lp)
			mu.Lock()
			active--
			if active == 0 {
				select {
				case done <- struct{}{}:
				default:
				}
			}
			mu.Unlock()
		}()
	}
	for _, c := range cs {
		follow(c, o)
	}
	if len(cs) == 0 {
		return nil
	}
	for {
		select {
		case <-done:
			mu.Lock()
			idle := active == 0
			mu.Unlock()
			if idle {
				wg.Wait()
				return nil
			}
		case m, ok := <-events.Messages:
			if !ok {
				events.Messages = nil
				continue
			}
			if len(want) > 0 && !want[m.Actor.Attributes[LabelService]] {
				continue
			}
			name := m.Actor.Attributes["name"]
			if name == "" {
				name = m.Actor.ID
			}
			lo := o
			lo.Tail = "" // a new container is shown from its start
			follow(container.Summary{ID: m.Actor.ID, Names: []string{"/" + name}}, lo)
		case <-events.Err:
			events.Err = nil // keep following what is already followed
		case <-ctx.Done():
			wg.Wait()
			return nil
		}
	}
}

func (e *Engine) streamLogs(ctx context.Context, c container.Summary, o LogOptions, lp *LogPrinter) error {
	ins, err := e.API.ContainerInspect(ctx, c.ID, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	rc, err := e.API.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Follow: o.Follow, Timestamps: o.Timestamps,
		Tail: o.Tail, Since: o.Since, Until: o.Until,
	})
	if err != nil {
		return err
	}
	defer rc.Close()
	w := &lineWriter{lp: lp, name: containerName(c)}
	if ins.Container.Config != nil && ins.Container.Config.Tty {
		_, err = io.Copy(w, rc)
	} else {
		_, err = stdcopy.StdCopy(w, w, rc)
	}
	w.flush()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// AttachOptions are the flags of an attached `compose up`.
type AttachOptions struct {
	AbortOnExit  bool   // --abort-on-container-exit
	ExitCodeFrom string // --exit-code-from (implies AbortOnExit)
	Timeout      *int
	// Since limits the output to what was written from then on (the start
	// of `up`), so containers left running are not replayed from their
	// beginning. Zero shows everything.
	Since      time.Time
	Timestamps bool
}

// Attach follows the output of the services' containers and waits for
// them to exit, printing "<name> exited with code N". With AbortOnExit
// the first exit stops every other container. It returns the exit
// status of `up`: ExitCodeFrom's container's, or with AbortOnExit the
// first exited container's.
func (e *Engine) Attach(ctx context.Context, p *types.Project, services []string, o AttachOptions, lp *LogPrinter) (int, error) {
	if o.ExitCodeFrom != "" {
		o.AbortOnExit = true
	}
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, true, services...)
	if err != nil {
		return 0, err
	}
	for _, c := range cs {
		lp.Register(containerName(c))
	}
	type exit struct {
		c    container.Summary
		code int
		err  error
	}
	exits := make(chan exit, len(cs))
	var logs sync.WaitGroup
	for _, c := range cs {
		logs.Add(1)
		go func() {
			defer logs.Done()
			lo := LogOptions{Follow: true, Timestamps: o.Timestamps}
			if !o.Since.IsZero() {
				lo.Since = fmt.Sprintf("%d.%09d", o.Since.Unix(), o.Since.Nanosecond())
			}
			_ = e.streamLogs(ctx, c, lo, lp)
		}()
		go func() {
			code, err := e.waitExit(ctx, c.ID)
			exits <- exit{c, code, err}
		}()
	}
	status := 0
	aborted := false
	for range cs {
		var x exit
		select {
		case x = <-exits:
		case <-ctx.Done():
			return status, ctx.Err()
		}
		if x.err != nil {
			if ctx.Err() != nil {
				return status, ctx.Err()
			}
			continue
		}
		lp.Status(containerName(x.c), fmt.Sprintf("exited with code %d", x.code))
		svc := x.c.Labels[LabelService]
		if o.ExitCodeFrom != "" && svc == o.ExitCodeFrom {
			status = x.code
		}
		if o.AbortOnExit && !aborted {
			aborted = true
			if o.ExitCodeFrom == "" {
				status = x.code
			}
			fmt.Fprintln(e.progressOr(lp.Out), "Aborting on container exit...")
			if err := e.Stop(ctx, p, nil, o.Timeout); err != nil {
				return status, err
			}
		}
	}
	logs.Wait()
	return status, nil
}

func (e *Engine) progressOr(w io.Writer) io.Writer {
	if e.Progress != nil {
		return e.Progress
	}
	return w
}
