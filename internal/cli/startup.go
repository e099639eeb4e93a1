package cli

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// The berth CLI's start-up is on the path of every command (`berth run
// --rm` included), so work is done lazily, or early on other goroutines:
//
//   - Only the command that is run is built: the root with all its
//     commands and their flags (run and create alone have ~100 flags
//     each, and run, create, container run and container create are four
//     copies) took ~0.6 ms, more than the whole package initialisation of
//     cobra and the moby client. Help, completion and anything that is not
//     a known command name get the whole tree.
//   - The API client is built and its version negotiated (the /_ping round
//     trip, the first connection to the daemon) on another goroutine while
//     the command line is parsed, when the endpoint does not depend on
//     global options: the ping the client would send before its first
//     request is sent earlier, not in addition.
//   - run and create send no ping at all: the create goes out at once with
//     the client's own API version (client.MaxAPIVersion), which berthd
//     (and any recent dockerd) accepts; a daemon whose API is older
//     refuses it before doing anything ("client version 1.56 is too new"),
//     and then the CLI negotiates as docker does and sends the create
//     again (renegotiate). The ping was ~0.6 ms of a 10 ms `run --rm`,
//     between the CLI's start-up and its first request.
//   - run and create run on one P (oneProc), so nothing runs beside the
//     command line's parsing: the create request's encoder (a reflection
//     walk over Config, HostConfig and NetworkingConfig) is built by the
//     create itself; a goroutine that used to build it ahead ran only once
//     the create had.

// topCommand is one command of the root: its name (as its Use line gives
// it), its constructor and whether running it nearly always talks to the
// daemon (then the client is prepared early).
type topCommand struct {
	name  string
	build func(*Cli) *cobra.Command
	dials bool
}

// topCommands are berth's commands; TestTopCommandsTable keeps the names
// in step with the constructors.
var topCommands = []topCommand{
	// Management commands.
	{"container", (*Cli).newContainerCommand, true},
	{"image", (*Cli).newImageCommand, true},
	{"system", (*Cli).newSystemCommand, true},
	{"volume", (*Cli).newVolumeCommand, true},
	{"network", (*Cli).newNetworkCommand, true},
	{"port", (*Cli).newPortCommand, true},
	// Top-level shortcuts, as docker has them.
	{"run", (*Cli).newRunCommand, true},
	{"create", (*Cli).newCreateCommand, true},
	{"start", (*Cli).newStartCommand, true},
	{"stop", (*Cli).newStopCommand, true},
	{"restart", (*Cli).newRestartCommand, true},
	{"kill", (*Cli).newKillCommand, true},
	{"rm", (*Cli).newRmCommand, true},
	{"ps", (*Cli).newPsCommand, true},
	{"logs", (*Cli).newLogsCommand, true},
	{"exec", (*Cli).newExecCommand, true},
	{"attach", (*Cli).newAttachCommand, true},
	{"inspect", (*Cli).newInspectCommand, true},
	{"wait", (*Cli).newWaitCommand, true},
	{"rename", (*Cli).newRenameCommand, true},
	{"update", (*Cli).newUpdateCommand, true},
	{"cp", (*Cli).newCpCommand, true},
	{"top", (*Cli).newTopCommand, true},
	{"pause", (*Cli).newPauseCommand, true},
	{"unpause", (*Cli).newUnpauseCommand, true},
	{"export", (*Cli).newExportCommand, true},
	{"images", (*Cli).newImagesCommand, true},
	{"pull", (*Cli).newPullCommand, true},
	{"push", (*Cli).newPushCommand, true},
	{"tag", (*Cli).newTagCommand, true},
	{"rmi", (*Cli).newRmiCommand, true},
	{"save", (*Cli).newSaveCommand, true},
	{"load", (*Cli).newLoadCommand, true},
	{"import", (*Cli).newImportCommand, true},
	{"history", (*Cli).newHistoryCommand, true},
	{"login", (*Cli).newLoginCommand, true},
	{"logout", (*Cli).newLogoutCommand, false},
	{"info", (*Cli).newInfoCommand, true},
	{"version", (*Cli).newVersionCommand, true},
	{"completion", func(*Cli) *cobra.Command { return newCompletionCommand() }, false},
	{"registry", func(*Cli) *cobra.Command { return newRegistryCommand() }, false},
	{"events", (*Cli).newEventsCommand, true},
	{"stats", (*Cli).newStatsCommand, true},
	{"compose", (*Cli).newComposeCommand, false},
	{"commit", (*Cli).newCommitCommand, true},
	{"diff", (*Cli).newDiffCommand, true},
	// build sets request headers before it asks for the client.
	{"build", (*Cli).newBuildCommand, false},
	{"builder", (*Cli).newBuilderCommand, true},
}

// lookupTopCommand returns the table entry named name.
func lookupTopCommand(name string) (topCommand, bool) {
	for _, tc := range topCommands {
		if tc.name == name {
			return tc, true
		}
	}
	return topCommand{}, false
}

// newRootCommandFor returns the root command for running args: with only
// the command args name when args start with a command name (no global
// options before it, which are the root's own flags), else the whole tree.
func (c *Cli) newRootCommandFor(args []string) *cobra.Command {
	if len(args) == 0 {
		return c.newRootCommand()
	}
	tc, ok := lookupTopCommand(args[0])
	if !ok {
		return c.newRootCommand()
	}
	root := c.newBareRootCommand()
	root.AddCommand(tc.build(c))
	setFlagErrorFunc(root)
	return root
}

// earlyClient is an API client built, and its version negotiated, in the
// background from the environment alone; Client hands it out when the
// parsed options select the same endpoint and client options.
type earlyClient struct {
	done      chan struct{}
	cancel    context.CancelFunc
	configDir string
	api       *client.Client
	err       error
	// assumed: the client sends client.MaxAPIVersion without a ping.
	assumed bool
	// pre holds the connections dialed for it ahead (run and create).
	pre *predialed
}

// predialed holds connections to a unix socket dialed while the CLI
// starts: the first requests of run (the create, then the attach) take
// them, so that the daemon has accepted them (its accept, a goroutine,
// the read set up) while the CLI was parsing and encoding. Later dials
// connect as usual.
type predialed struct {
	path  string
	mu    sync.Mutex
	conns []net.Conn
}

// predial connects n times to the unix socket at path (what fails is
// left to the ordinary dial).
func predial(path string, n int) *predialed {
	p := &predialed{path: path}
	for range n {
		conn, err := net.Dial("unix", path)
		if err != nil {
			break
		}
		p.conns = append(p.conns, conn)
	}
	return p
}

// dial is the client's DialContext: a connection dialed ahead if one is
// left, else a new one.
func (p *predialed) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	p.mu.Lock()
	if len(p.conns) > 0 {
		conn := p.conns[0]
		p.conns = p.conns[1:]
		p.mu.Unlock()
		return conn, nil
	}
	p.mu.Unlock()
	var d net.Dialer
	return d.DialContext(ctx, "unix", p.path)
}

// close closes the connections no request took.
func (p *predialed) close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, conn := range p.conns {
		conn.Close()
	}
	p.conns = nil
}

// startEarlyClient starts building the client for args when args name a
// command that talks to the daemon, no global option precedes it, the
// endpoint is a unix socket and no TLS or fixed API version is asked for
// by the environment (then there is no ping to move).
func (c *Cli) startEarlyClient(args []string) {
	if len(args) == 0 {
		return
	}
	if tc, ok := lookupTopCommand(args[0]); !ok || !tc.dials {
		return
	}
	if os.Getenv(client.EnvOverrideAPIVersion) != "" || os.Getenv("DOCKER_TLS_VERIFY") != "" {
		return
	}
	configDir := defaultConfigDir()
	host, err := resolveHostFrom(nil, "", configDir)
	if err != nil || !strings.HasPrefix(host, "unix://") {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &earlyClient{done: make(chan struct{}), cancel: cancel, configDir: configDir, assumed: createsContainer(args)}
	c.early = e
	var pre *predialed
	if e.assumed {
		pre = predial(strings.TrimPrefix(host, "unix://"), 2)
		e.pre = pre
	}
	go func() {
		defer close(e.done)
		if e.assumed {
			e.api, e.err = newAPIClient(host, []client.Opt{client.WithAPIVersion(client.MaxAPIVersion)}, nil,
				client.WithDialContext(pre.dial))
			return
		}
		e.api, e.err = newAPIClient(host, nil, nil)
		if e.err != nil {
			return
		}
		// A failed ping leaves the version to be negotiated by the first
		// request, exactly as without the early client.
		_, _ = e.api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	}()
}

// takeEarlyClient returns the early client if the options parsed since
// select the same endpoint and client options; otherwise it discards it.
func (c *Cli) takeEarlyClient() (*client.Client, bool) {
	e := c.early
	if e == nil {
		return nil, false
	}
	c.early = nil
	<-e.done
	e.cancel()
	same := len(c.hosts) == 0 && c.contextArg == "" && c.configDir == e.configDir &&
		!c.tls.tls && !c.tls.verify && len(c.headers) == 0
	if e.err != nil || !same {
		e.discard()
		return nil, false
	}
	c.assumedVersion = e.assumed
	c.pre = e.pre
	return e.api, true
}

// renegotiate replaces a client that assumed the API version (see above)
// by one that negotiates it with the daemon, and returns it; it returns
// the client as it is otherwise.
func (c *Cli) renegotiate() (*client.Client, error) {
	if !c.assumedVersion {
		return c.Client()
	}
	c.assumedVersion = false
	if c.api != nil {
		_ = c.api.Close()
		c.api = nil
	}
	c.pre.close()
	return c.Client()
}

// versionTooNew says whether err is a daemon's refusal of the client's API
// version as newer than its own.
func versionTooNew(err error) bool {
	return cerrdefs.IsInvalidArgument(err) && strings.Contains(err.Error(), "is too new")
}

// stopEarlyClient ends an early client no command asked for.
func (c *Cli) stopEarlyClient() {
	if e := c.early; e != nil {
		c.early = nil
		e.cancel()
		<-e.done
		e.discard()
	}
}

// discard closes the early client and the connections dialed for it.
func (e *earlyClient) discard() {
	if e.api != nil {
		_ = e.api.Close()
	}
	e.pre.close()
}

// createsContainer reports whether args are a run or create command
// (`container run` and `container create` included).
func createsContainer(args []string) bool {
	if len(args) > 1 && args[0] == "container" {
		args = args[1:]
	}
	return len(args) > 0 && (args[0] == "run" || args[0] == "create")
}

// readConfig returns config.json, read once per invocation, for callers
// that do not change it (login and logout read and save their own copy).
func (c *Cli) readConfig() (*configFile, error) {
	if c.config != nil {
		return c.config, nil
	}
	cf, err := loadConfigFile(c.configDir)
	if err != nil {
		return cf, err
	}
	c.config = cf
	return cf, nil
}
