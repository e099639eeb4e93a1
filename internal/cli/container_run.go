package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/internal/apiext"
	"github.com/berth-dev/berth/internal/memtrim"
)

// runOptions are the flags run has beyond create's.
type runOptions struct {
	detach     bool
	sigProxy   bool
	detachKeys string
	quiet      bool
}

func (c *Cli) newRunCommand() *cobra.Command {
	var (
		o  containerOptions
		ro runOptions
	)
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.image, o.args = args[0], args[1:]
			return c.runRun(cmd.Context(), cmd.Flags(), &o, &ro)
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&ro.detach, "detach", "d", false, "Run container in background and print container ID")
	fs.BoolVar(&ro.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	fs.StringVar(&ro.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fs.BoolVarP(&ro.quiet, "quiet", "q", false, "Suppress the pull output")
	addContainerFlags(fs, &o)
	return cmd
}

func (c *Cli) newCreateCommand() *cobra.Command {
	var (
		o     containerOptions
		quiet bool
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.image, o.args = args[0], args[1:]
			if err := validatePullOpt(o.pull); err != nil {
				return runErrorFor("create", err)
			}
			if err := c.applyProxyEnv(&o); err != nil {
				return err
			}
			cc, err := o.parse(cmd.Flags())
			if err != nil {
				return runErrorFor("create", err)
			}
			// Like docker, engine errors of create are printed plainly
			// and exit 1; only flag errors exit 125.
			id, err := c.createContainer(cmd.Context(), &o, cc, quiet)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, id)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&quiet, "quiet", "q", false, "Suppress the pull output")
	addContainerFlags(fs, &o)
	return cmd
}

// startError maps a failed start to docker's exit codes: 127 when the
// command was not found, 126 when it could not be invoked, else 125.
func startErrorFor(name string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "Error response from daemon: ")
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found"),
		strings.Contains(msg, "no such file or directory"),
		strings.Contains(msg, "system cannot find the file specified"):
		code = 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		code = 126
	}
	return StatusError{
		Status:     fmt.Sprintf("berth: %s\n\nRun 'berth %s --help' for more information", err, name),
		StatusCode: code,
	}
}

func validatePullOpt(p string) error {
	switch p {
	case "always", "missing", "never", "":
		return nil
	}
	return fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", p)
}

// createContainer creates the container, pulling the image according to
// --pull, and writes --cidfile.
func (c *Cli) createContainer(ctx context.Context, o *containerOptions, cc *containerConfig, quiet bool) (string, error) {
	if err := validatePullOpt(o.pull); err != nil {
		return "", err
	}
	api, err := c.Client()
	if err != nil {
		return "", err
	}
	var cidFile *os.File
	if o.cidfile != "" {
		if _, err := os.Stat(o.cidfile); err == nil {
			return "", fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", o.cidfile)
		}
		f, err := os.Create(o.cidfile)
		if err != nil {
			return "", fmt.Errorf("failed to create the container ID file: %w", err)
		}
		cidFile = f
		defer f.Close()
	}
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return "", fmt.Errorf("error parsing specified platform: %w", err)
		}
		cc.Platform = &p
	}
	pullOut := c.err
	if quiet {
		pullOut = io.Discard
	}
	if o.pull == "always" {
		// The pull comes first: with the version the daemon agreed to.
		if api, err = c.renegotiate(); err != nil {
			return "", err
		}
		if err := c.pullImage(ctx, o.image, o.platform, pullOut); err != nil {
			return "", err
		}
	}
	// Like docker, the initial console size is the terminal's (0x0 when
	// stdout is not a terminal).
	if h, w, ok := c.terminalSize(); ok {
		cc.HostConfig.ConsoleSize = [2]uint{h, w}
	}
	create := func() (client.ContainerCreateResult, error) {
		return api.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:           cc.Config,
			HostConfig:       cc.HostConfig,
			NetworkingConfig: cc.NetworkingConfig,
			Platform:         cc.Platform,
			Name:             o.name,
		})
	}
	resp, err := create()
	if err != nil && c.assumedVersion && versionTooNew(err) {
		// An older daemon: negotiate, as docker does before it asks, and
		// ask again (nothing was created).
		if api, err = c.renegotiate(); err != nil {
			return "", err
		}
		resp, err = create()
	}
	if err != nil && cerrdefs.IsNotFound(err) && o.pull == "missing" {
		fmt.Fprintf(c.err, "Unable to find image '%s' locally\n", familiarRef(o.image))
		if perr := c.pullImage(ctx, o.image, o.platform, pullOut); perr != nil {
			return "", perr
		}
		resp, err = create()
	}
	if err != nil {
		if cidFile != nil {
			cidFile.Close()
			os.Remove(o.cidfile)
		}
		return "", err
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(c.err, "WARNING: %s\n", w)
	}
	if cidFile != nil {
		if _, err := cidFile.WriteString(resp.ID); err != nil {
			return "", fmt.Errorf("failed to write the container ID to the file: %w", err)
		}
	}
	return resp.ID, nil
}

// exitCondition is the wait condition for a run's (or start -a's) exit:
// the removal with --rm, docker's wait for an auto-removed container.
func exitCondition(autoRemove bool) container.WaitCondition {
	if autoRemove {
		return container.WaitConditionRemoved
	}
	return container.WaitConditionNextExit
}

// applyProxyEnv adds config.json's proxy settings for the daemon to -e.
func (c *Cli) applyProxyEnv(o *containerOptions) error {
	cf, err := c.readConfig()
	if err != nil {
		return err
	}
	host, err := c.resolveHost()
	if err != nil {
		return err
	}
	o.env.values = cf.proxyEnv(host, o.env.values)
	return nil
}

// familiarRef renders an image reference as docker prints it (name:tag).
func familiarRef(s string) string {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return s
	}
	return reference.FamiliarString(reference.TagNameOnly(named))
}

func (c *Cli) runRun(ctx context.Context, fs *pflag.FlagSet, o *containerOptions, ro *runOptions) error {
	runCmd := func(err error) error { return runErrorFor("run", err) }
	if err := validatePullOpt(o.pull); err != nil {
		return runCmd(err)
	}
	if err := c.applyProxyEnv(o); err != nil {
		return err
	}
	cc, err := o.parse(fs)
	if err != nil {
		return runCmd(err)
	}
	cfg, hc := cc.Config, cc.HostConfig
	if ro.detach {
		if fs.Changed("attach") {
			return runCmd(errors.New("conflicting options: cannot specify both --attach and --detach"))
		}
		cfg.AttachStdin, cfg.AttachStdout, cfg.AttachStderr = false, false, false
		cfg.StdinOnce = false
	}
	if _, isTerm := isTerminalReader(c.in); cfg.Tty && cfg.AttachStdin && !isTerm {
		return runCmd(errors.New("the input device is not a TTY"))
	}
	keysSpec, keys, err := c.detachKeys(ro.detachKeys)
	if err != nil {
		return runCmd(err)
	}

	id, err := c.createContainer(ctx, o, cc, ro.quiet)
	if err != nil {
		return runCmd(err)
	}
	api, _ := c.Client()

	if ro.detach {
		// docker prints the ID before starting, so it is shown even when
		// the start fails.
		fmt.Fprintln(c.out, id)
		if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			return startErrorFor("run", err)
		}
		return nil
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	allSignals := func() {}
	if ro.sigProxy {
		allSignals = proxySignalsStaged(ctx, api, id)
	}

	// Against berthd, one request does attach, start and wait
	// (run_ext.go).
	attaching := cfg.AttachStdin || cfg.AttachStdout || cfg.AttachStderr
	if attaching && !cfg.Tty && daemonHas(apiext.AttachRun) {
		if err := c.runAttachRun(ctx, api, id, cfg, hc.AutoRemove, keysSpec, allSignals); err != errNoAttachRun {
			return err
		}
	}
	var (
		attachResp *client.ContainerAttachResult
		streamDone = make(chan error, 1)
	)
	// The attach and the wait are independent requests on connections of
	// their own: send them together, so the container is started one
	// round trip after its create instead of two. Start waits for both
	// answers, as docker's run does for each in turn: the attach answers
	// once the daemon holds the streams (no output is lost) and the wait
	// once it is registered (a fast exit is not missed).
	cond := exitCondition(hc.AutoRemove)
	var (
		ar        client.ContainerAttachResult
		attachErr error
		attached  = make(chan struct{})
	)
	if attaching {
		go func() {
			defer close(attached)
			ar, attachErr = api.ContainerAttach(ctx, id, client.ContainerAttachOptions{
				Stream:     true,
				Stdin:      cfg.AttachStdin,
				Stdout:     cfg.AttachStdout,
				Stderr:     cfg.AttachStderr,
				DetachKeys: keysSpec,
			})
		}()
	} else {
		close(attached)
	}
	wait := api.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: cond})
	<-attached
	if attaching {
		if attachErr != nil {
			return runCmd(attachErr)
		}
		attachResp = &ar
		defer ar.Close()
		restore := c.rawTerminal(cfg.Tty, cfg.AttachStdin)
		defer restore()
		so := streamOptions{tty: cfg.Tty, detachKeys: keys}
		if cfg.AttachStdin {
			so.stdin = c.in
		}
		if cfg.AttachStdout {
			so.stdout = c.out
		} else {
			so.stdout = io.Discard
		}
		if cfg.AttachStderr {
			so.stderr = c.err
		} else {
			so.stderr = io.Discard
		}
		go func() { streamDone <- pumpStreams(ctx, &ar.HijackedResponse, so) }()
	} else {
		close(streamDone)
	}

	if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		if attachResp != nil {
			attachResp.Close()
		}
		if hc.AutoRemove {
			<-waitDone(wait)
		}
		return startErrorFor("run", err)
	}
	allSignals()
	go memtrim.DropCleanText() // as in runAttachRun
	if cfg.Tty {
		c.monitorTTYSize(ctx, func(h, w uint) {
			_, _ = api.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
		})
	}

	exitStatus := func(res container.WaitResponse) error {
		if res.Error != nil {
			return runCmd(errors.New(res.Error.Message))
		}
		if res.StatusCode != 0 {
			return StatusError{StatusCode: int(res.StatusCode)}
		}
		return nil
	}
	select {
	case err := <-streamDone:
		if errors.Is(err, errDetached) {
			return nil // the user typed the detach sequence
		}
		if err != nil {
			return runCmd(err)
		}
		select {
		case res := <-wait.Result:
			return exitStatus(res)
		case err := <-wait.Error:
			return runCmd(err)
		}
	case res := <-wait.Result:
		// The container exited first: keep copying its remaining output,
		// unless no output stream is attached.
		if !cfg.AttachStdout && !cfg.AttachStderr {
			cancel()
		}
		<-streamDone
		return exitStatus(res)
	case err := <-wait.Error:
		return runCmd(err)
	}
}

func waitDone(w client.ContainerWaitResult) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		select {
		case <-w.Result:
		case <-w.Error:
		}
		close(ch)
	}()
	return ch
}

// runErrorFor formats an error of run/create/start as docker does, with
// status 125.
func runErrorFor(name string, err error) error {
	var se StatusError
	if errors.As(err, &se) {
		return err
	}
	return StatusError{
		Status:     fmt.Sprintf("berth: %s\n\nRun 'berth %s --help' for more information", err, name),
		StatusCode: 125,
	}
}
