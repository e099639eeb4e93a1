package apitest

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/api/filters"
	containerrouter "github.com/berth-dev/berth/internal/api/router/container"
	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Containers is a fake container service. A "process" is simulated from
// Config.Cmd:
//
//	["echo", args...]   writes args to stdout, exits 0
//	["fail", "N", msg]  writes msg to stderr, exits N
//	["sleep"]           runs until stopped or killed
//	["cat"]             copies attached stdin (OpenStdin) to stdout until EOF
//	anything else       exits 0 silently
type Containers struct {
	mu   sync.Mutex
	byID map[string]*fakeContainer
	// Commits records the commit requests.
	Commits []imagerouter.CommitOptions
	// ImageExists, if set, decides whether create finds its image
	// (NewFakes wires it to the Images fake); "nosuchimage" never exists.
	ImageExists func(ref string) bool
}

type fakeContainer struct {
	id, name string
	cfg      *container.Config
	host     *container.HostConfig
	created  time.Time
	state    container.ContainerState
	exitCode int
	logs     []containerrouter.LogMessage
	subs     []chan containerrouter.LogMessage
	exit     chan struct{} // closed at the next exit
	removed  chan struct{}
	stop     chan struct{} // closed to stop a "sleep"
	files    map[string][]byte
	pid      int
	stdinR   *io.PipeReader
	stdinW   *io.PipeWriter
}

var (
	_ containerrouter.Backend   = (*Containers)(nil)
	_ imagerouter.CommitBackend = (*Containers)(nil)
)

// NewContainers returns an empty fake.
func NewContainers() *Containers { return &Containers{byID: map[string]*fakeContainer{}} }

func noSuch(name string) error { return errdefs.Newf(errdefs.NotFound, "No such container: %s", name) }

// get resolves a name, ID or ID prefix; callers hold mu.
func (f *Containers) get(name string) (*fakeContainer, error) {
	n := strings.TrimPrefix(name, "/")
	if n == "" {
		return nil, noSuch(name)
	}
	var found *fakeContainer
	for id, c := range f.byID {
		if c.name == n || id == n {
			return c, nil
		}
		if strings.HasPrefix(id, n) {
			if found != nil {
				return nil, errdefs.Newf(errdefs.InvalidArgument, "multiple IDs found with provided prefix: %s", n)
			}
			found = c
		}
	}
	if found == nil {
		return nil, noSuch(name)
	}
	return found, nil
}

func (f *Containers) lookup(name string) (*fakeContainer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.get(name)
}

func (f *Containers) ContainerCreate(ctx context.Context, o containerrouter.CreateOptions) (container.CreateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if o.Config.Image == "" {
		return container.CreateResponse{}, errdefs.Newf(errdefs.InvalidArgument, "no image specified")
	}
	if o.Config.Image == "nosuchimage" || (f.ImageExists != nil && !f.ImageExists(o.Config.Image)) {
		return container.CreateResponse{}, errdefs.Newf(errdefs.NotFound, "No such image: %s", o.Config.Image)
	}
	id := randomID()
	name := o.Name
	if name == "" {
		name = "fake_" + id[:6]
	}
	for _, c := range f.byID {
		if c.name == name {
			return container.CreateResponse{}, errdefs.Newf(errdefs.Conflict, "Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, c.id)
		}
	}
	c := &fakeContainer{
		id: id, name: name, cfg: o.Config, host: o.HostConfig, created: time.Now(),
		state: container.StateCreated, exit: make(chan struct{}), removed: make(chan struct{}),
		files: map[string][]byte{"/etc/hostname": []byte(id[:12] + "\n")},
	}
	c.newStdin()
	f.byID[id] = c
	var warnings []string
	if o.HostConfig.Memory > 0 && o.HostConfig.Memory < 6<<20 {
		warnings = append(warnings, "Minimum memory limit allowed is 6MB")
	}
	return container.CreateResponse{ID: id, Warnings: warnings}, nil
}

func (f *Containers) ContainerStart(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return err
	}
	if c.state == container.StateRunning {
		return errdefs.Newf(errdefs.NotModified, "container %s is already running", c.id)
	}
	c.state = container.StateRunning
	c.pid = 4242
	c.stop = make(chan struct{})
	go f.run(c, c.cfg.Cmd, c.stop)
	return nil
}

// run simulates the process of c.
func (f *Containers) run(c *fakeContainer, cmd []string, stop chan struct{}) {
	code := 0
	switch {
	case len(cmd) > 0 && cmd[0] == "echo":
		f.emit(c, "stdout", strings.Join(cmd[1:], " ")+"\n")
	case len(cmd) > 1 && cmd[0] == "fail":
		code, _ = strconv.Atoi(cmd[1])
		f.emit(c, "stderr", strings.Join(cmd[2:], " ")+"\n")
	case len(cmd) > 0 && cmd[0] == "sleep":
		<-stop
		code = 137
	case len(cmd) > 0 && cmd[0] == "cat" && c.stdinR != nil:
		f.mu.Lock()
		in := c.stdinR
		f.mu.Unlock()
		go func() { <-stop; in.CloseWithError(io.EOF) }()
		buf := make([]byte, 32<<10)
		for {
			n, err := in.Read(buf)
			if n > 0 {
				f.emit(c, "stdout", string(buf[:n]))
			}
			if err != nil {
				break
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c.state, c.exitCode, c.pid = container.StateExited, code, 0
	for _, s := range c.subs {
		close(s)
	}
	c.subs = nil
	close(c.exit)
	c.exit = make(chan struct{})
	c.newStdin()
	if c.host.AutoRemove {
		if _, ok := f.byID[c.id]; ok {
			delete(f.byID, c.id)
			close(c.removed)
		}
	}
}

func (f *Containers) emit(c *fakeContainer, stream, line string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := containerrouter.LogMessage{Stream: stream, Line: []byte(line), Timestamp: time.Now().UTC(), Attrs: []containerrouter.LogAttr{{Key: "tag", Value: c.name}}}
	c.logs = append(c.logs, m)
	for _, s := range c.subs {
		s <- m
	}
}

// newStdin gives the next run of c a fresh stdin (attach may connect
// before start); callers hold mu.
func (c *fakeContainer) newStdin() {
	if c.cfg.OpenStdin {
		c.stdinR, c.stdinW = io.Pipe()
	}
}

// halt ends a "sleep"; callers hold mu.
func (c *fakeContainer) halt() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
}

// subscribe returns a channel of live output (closed at exit); buffered
// so emit never blocks. Callers hold mu.
func (c *fakeContainer) subscribe() chan containerrouter.LogMessage {
	ch := make(chan containerrouter.LogMessage, 1024)
	c.subs = append(c.subs, ch)
	return ch
}

func (f *Containers) ContainerStop(ctx context.Context, name string, o containerrouter.StopOptions) error {
	f.mu.Lock()
	c, err := f.get(name)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	if c.state != container.StateRunning {
		f.mu.Unlock()
		return errdefs.Newf(errdefs.NotModified, "container %s is not running", c.id)
	}
	exit := c.exit
	c.halt()
	f.mu.Unlock()
	<-exit
	return nil
}

func (f *Containers) ContainerRestart(ctx context.Context, name string, o containerrouter.StopOptions) error {
	if err := f.ContainerStop(ctx, name, o); err != nil && !errdefs.Is(err, errdefs.NotModified) {
		return err
	}
	return f.ContainerStart(ctx, name)
}

func (f *Containers) ContainerKill(ctx context.Context, name, signal string) error {
	f.mu.Lock()
	c, err := f.get(name)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	if c.state != container.StateRunning {
		f.mu.Unlock()
		return errdefs.Newf(errdefs.Conflict, "cannot kill container: %s: container %s is not running", name, c.id)
	}
	exit := c.exit
	c.halt()
	f.mu.Unlock()
	<-exit
	return nil
}

func (f *Containers) setPaused(name string, paused bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return err
	}
	switch {
	case paused && c.state == container.StateRunning:
		c.state = container.StatePaused
	case !paused && c.state == container.StatePaused:
		c.state = container.StateRunning
	case paused:
		return errdefs.Newf(errdefs.Conflict, "container %s is not running", c.id)
	default:
		return errdefs.Newf(errdefs.Conflict, "container %s is not paused", c.id)
	}
	return nil
}

func (f *Containers) ContainerPause(ctx context.Context, name string) error {
	return f.setPaused(name, true)
}

func (f *Containers) ContainerUnpause(ctx context.Context, name string) error {
	return f.setPaused(name, false)
}

func (f *Containers) ContainerUpdate(ctx context.Context, name string, u container.UpdateConfig) (container.UpdateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	c.host.Resources = u.Resources
	if u.RestartPolicy.Name != "" {
		c.host.RestartPolicy = u.RestartPolicy
	}
	return container.UpdateResponse{}, nil
}

func (f *Containers) ContainerRename(ctx context.Context, name, newName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return err
	}
	for _, o := range f.byID {
		if o.name == newName && o != c {
			return errdefs.Newf(errdefs.Conflict, "Error when allocating new name: Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", newName, o.id)
		}
	}
	c.name = newName
	return nil
}

func (f *Containers) ContainerRemove(ctx context.Context, name string, o containerrouter.RemoveOptions) error {
	f.mu.Lock()
	c, err := f.get(name)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	if c.state == container.StateRunning || c.state == container.StatePaused {
		if !o.Force {
			f.mu.Unlock()
			return errdefs.Newf(errdefs.Conflict, "cannot remove container \"/%s\": container is running: stop the container before removing or force remove", c.name)
		}
		exit := c.exit
		c.halt()
		f.mu.Unlock()
		<-exit
		f.mu.Lock()
	}
	if _, ok := f.byID[c.id]; ok { // not auto-removed meanwhile
		delete(f.byID, c.id)
		close(c.removed)
	}
	f.mu.Unlock()
	return nil
}

func (f *Containers) ContainersPrune(ctx context.Context, fl filters.Args) (*container.PruneReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rep := &container.PruneReport{ContainersDeleted: []string{}}
	for id, c := range f.byID {
		if c.state != container.StateRunning && c.state != container.StatePaused && fl.MatchKVList("label", c.cfg.Labels) {
			delete(f.byID, id)
			close(c.removed)
			rep.ContainersDeleted = append(rep.ContainersDeleted, id)
		}
	}
	sort.Strings(rep.ContainersDeleted)
	return rep, nil
}

func (f *Containers) ContainerList(ctx context.Context, o containerrouter.ListOptions) ([]container.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []container.Summary
	for _, c := range f.byID {
		if !o.All && c.state != container.StateRunning && c.state != container.StatePaused {
			continue
		}
		if !o.Filters.ExactMatch("status", string(c.state)) || !o.Filters.Match("name", c.name) ||
			!o.Filters.FuzzyMatch("id", c.id) || !o.Filters.MatchKVList("label", c.cfg.Labels) {
			continue
		}
		out = append(out, c.summary())
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Created > out[j].Created || (out[i].Created == out[j].Created && out[i].ID < out[j].ID)
	})
	if o.Limit > 0 && len(out) > o.Limit {
		out = out[:o.Limit]
	}
	return out, nil
}

func (c *fakeContainer) summary() container.Summary {
	s := container.Summary{
		ID: c.id, Names: []string{"/" + c.name}, Image: c.cfg.Image, ImageID: "sha256:" + strings.Repeat("a", 64),
		Command: strings.Join(c.cfg.Cmd, " "), Created: c.created.Unix(), Labels: c.cfg.Labels,
		State: c.state, Status: statusText(c), Ports: []container.PortSummary{}, Mounts: []container.MountPoint{},
		NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{}},
	}
	s.HostConfig.NetworkMode = "bridge"
	return s
}

func statusText(c *fakeContainer) string {
	switch c.state {
	case container.StateRunning:
		return "Up Less than a second"
	case container.StateExited:
		return "Exited (" + strconv.Itoa(c.exitCode) + ") Less than a second ago"
	case container.StatePaused:
		return "Up Less than a second (Paused)"
	}
	return "Created"
}

func (f *Containers) ContainerInspect(ctx context.Context, name string, size bool) (*container.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	r := &container.InspectResponse{
		ID: c.id, Name: "/" + c.name, Created: c.created.UTC().Format(time.RFC3339Nano), Image: "sha256:" + strings.Repeat("a", 64),
		Config: c.cfg, HostConfig: c.host, Driver: "overlay", Platform: "linux",
		State:  &container.State{Status: c.state, Running: c.state == container.StateRunning, Paused: c.state == container.StatePaused, ExitCode: c.exitCode, Pid: c.pid},
		Mounts: []container.MountPoint{}, NetworkSettings: &container.NetworkSettings{},
	}
	if len(c.cfg.Cmd) > 0 {
		r.Path, r.Args = c.cfg.Cmd[0], c.cfg.Cmd[1:]
	}
	if size {
		var n int64
		for _, b := range c.files {
			n += int64(len(b))
		}
		r.SizeRw = &n
	}
	return r, nil
}

func (f *Containers) ContainerTop(ctx context.Context, name, psArgs string) (*container.TopResponse, error) {
	c, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c.state != container.StateRunning {
		return nil, errdefs.Newf(errdefs.Conflict, "container %s is not running", c.id)
	}
	return &container.TopResponse{Titles: []string{"UID", "PID", "CMD"}, Processes: [][]string{{"root", strconv.Itoa(c.pid), strings.Join(c.cfg.Cmd, " ")}}}, nil
}

func (f *Containers) ContainerChanges(ctx context.Context, name string) ([]container.FilesystemChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	var out []container.FilesystemChange
	for p := range c.files {
		out = append(out, container.FilesystemChange{Path: p, Kind: container.ChangeAdd})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

func (f *Containers) ContainerAttach(ctx context.Context, name string, o containerrouter.AttachOptions) error {
	f.mu.Lock()
	c, err := f.get(name)
	if err != nil {
		f.mu.Unlock()
		return err
	}
	var live chan containerrouter.LogMessage
	if o.Stream && c.state != container.StateExited {
		live = c.subscribe()
	}
	past := append([]containerrouter.LogMessage(nil), c.logs...)
	tty := c.cfg.Tty
	f.mu.Unlock()
	stdinW := c.stdinW
	stdinOnce := c.cfg.StdinOnce
	s, err := o.Streams(tty)
	if err != nil {
		return err
	}
	if s.Stdin != nil && stdinW != nil {
		go func() {
			io.Copy(stdinW, s.Stdin)
			if stdinOnce {
				stdinW.Close()
			}
		}()
	}
	write := func(m containerrouter.LogMessage) error {
		w := s.Stdout
		if m.Stream == "stderr" {
			w = s.Stderr
		}
		if w == nil {
			return nil
		}
		_, err := w.Write(m.Line)
		return err
	}
	if o.Logs {
		for _, m := range past {
			if err := write(m); err != nil {
				return err
			}
		}
	}
	if live == nil {
		return nil
	}
	for {
		select {
		case m, ok := <-live:
			if !ok {
				return nil
			}
			if err := write(m); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (f *Containers) ContainerLogs(ctx context.Context, name string, o containerrouter.LogsOptions) (<-chan containerrouter.LogMessage, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return nil, false, err
	}
	var sel []containerrouter.LogMessage
	for _, m := range c.logs {
		if (m.Stream == "stdout" && o.Stdout) || (m.Stream == "stderr" && o.Stderr) {
			sel = append(sel, m)
		}
	}
	if o.Tail >= 0 && len(sel) > o.Tail {
		sel = sel[len(sel)-o.Tail:]
	}
	var live chan containerrouter.LogMessage
	if o.Follow && c.state == container.StateRunning {
		live = c.subscribe()
	}
	out := make(chan containerrouter.LogMessage)
	go func() {
		defer close(out)
		for _, m := range sel {
			select {
			case out <- m:
			case <-ctx.Done():
				return
			}
		}
		for live != nil {
			select {
			case m, ok := <-live:
				if !ok {
					return
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, c.cfg.Tty, nil
}

func (f *Containers) ContainerStats(ctx context.Context, name string, o containerrouter.StatsOptions, send func(*container.StatsResponse) error) error {
	c, err := f.lookup(name)
	if err != nil {
		return err
	}
	for {
		s := &container.StatsResponse{ID: c.id, Name: "/" + c.name, Read: time.Now().UTC(), MemoryStats: container.MemoryStats{Usage: 1 << 20, Limit: 1 << 30}}
		if err := send(s); err != nil || !o.Stream {
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
}

func (f *Containers) ContainerWait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	ch := make(chan container.WaitResponse, 1)
	if cond == container.WaitConditionNotRunning && c.state != container.StateRunning && c.state != container.StatePaused {
		ch <- container.WaitResponse{StatusCode: int64(c.exitCode)}
		return ch, nil
	}
	var done <-chan struct{} = c.exit
	if cond == container.WaitConditionRemoved {
		done = c.removed
	}
	go func() {
		select {
		case <-done:
			f.mu.Lock()
			code := c.exitCode
			f.mu.Unlock()
			ch <- container.WaitResponse{StatusCode: int64(code)}
		case <-ctx.Done():
		}
	}()
	return ch, nil
}

func (f *Containers) ContainerResize(ctx context.Context, name string, height, width uint32) error {
	_, err := f.lookup(name)
	return err
}

func (f *Containers) ContainerStatPath(ctx context.Context, name, p string) (*container.PathStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return nil, err
	}
	return c.stat(p)
}

func (c *fakeContainer) stat(p string) (*container.PathStat, error) {
	p = path.Clean("/" + p)
	if b, ok := c.files[p]; ok {
		return &container.PathStat{Name: path.Base(p), Size: int64(len(b)), Mode: 0o644, Mtime: c.created}, nil
	}
	for f := range c.files {
		if p == "/" || strings.HasPrefix(f, p+"/") {
			return &container.PathStat{Name: path.Base(p), Mode: 0o755 | 1<<31, Mtime: c.created}, nil
		}
	}
	return nil, errdefs.Newf(errdefs.NotFound, "Could not find the file %s in container %s", p, c.name)
}

func (f *Containers) ContainerArchivePath(ctx context.Context, name, p string) (io.ReadCloser, *container.PathStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.get(name)
	if err != nil {
		return nil, nil, err
	}
	st, err := c.stat(p)
	if err != nil {
		return nil, nil, err
	}
	p = path.Clean("/" + p)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, fp := range sortedKeys(c.files) {
		if fp == p || strings.HasPrefix(fp, strings.TrimSuffix(p, "/")+"/") {
			rel := path.Join(path.Base(p), strings.TrimPrefix(fp, p))
			b := c.files[fp]
			tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(rel, "/"), Mode: 0o644, Size: int64(len(b)), ModTime: c.created})
			tw.Write(b)
		}
	}
	tw.Close()
	return io.NopCloser(&buf), st, nil
}

func sortedKeys(m map[string][]byte) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func (f *Containers) ContainerExtractToDir(ctx context.Context, name, dir string, o containerrouter.ExtractOptions, content io.Reader) error {
	c, err := f.lookup(name)
	if err != nil {
		return err
	}
	tr := tar.NewReader(content)
	files := map[string][]byte{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "reading archive: %w", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "reading archive: %w", err)
		}
		files[path.Join("/", dir, h.Name)] = b
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range files {
		c.files[k] = v
	}
	return nil
}

func (f *Containers) ContainerExport(ctx context.Context, name string) (io.ReadCloser, error) {
	rc, _, err := f.ContainerArchivePath(ctx, name, "/")
	return rc, err
}

// Commit records the request and returns a fake image ID.
func (f *Containers) Commit(ctx context.Context, o imagerouter.CommitOptions) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(o.Container); err != nil {
		return "", err
	}
	f.Commits = append(f.Commits, o)
	return "sha256:" + randomID(), nil
}
