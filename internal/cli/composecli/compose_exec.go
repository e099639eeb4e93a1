package composecli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/compose-spec/compose-go/v2/format"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/compose"
)

func (c *cmds) newComposeExecCommand(o *composeOptions) *cobra.Command {
	var (
		detach, privileged, noTTY, interactive bool
		index                                  int
		user, workdir                          string
		env                                    []string
	)
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] SERVICE COMMAND [ARGS...]",
		Short: "Execute a command in a running container",
		Args:  cli.RequiresMinArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.composeTarget(ctx, o, nil)
			if err != nil {
				return err
			}
			target, err := e.ServiceContainer(ctx, p, args[0], index)
			if err != nil {
				return err
			}
			stdinTTY := isTerminal(c.In())
			tty := !noTTY && stdinTTY
			if !cmd.Flags().Changed("no-TTY") && cmd.Flags().Changed("tty") {
				tty, _ = cmd.Flags().GetBool("tty")
			}
			return c.execIn(ctx, target.ID, client.ExecCreateOptions{
				User: user, Privileged: privileged, TTY: tty, Env: env, WorkingDir: workdir, Cmd: args[1:],
			}, detach, interactive)
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&detach, "detach", "d", false, "Detached mode: Run command in the background")
	fs.StringArrayVarP(&env, "env", "e", nil, "Set environment variables")
	fs.IntVar(&index, "index", 1, "Index of the container if service has multiple replicas")
	fs.BoolVar(&privileged, "privileged", false, "Give extended privileges to the process")
	fs.BoolVarP(&noTTY, "no-TTY", "T", false, "Disable pseudo-TTY allocation. By default 'docker compose exec' allocates a TTY.")
	fs.Bool("tty", true, "Allocate a pseudo-TTY")
	_ = fs.MarkHidden("tty")
	fs.BoolVarP(&interactive, "interactive", "i", true, "Keep STDIN open even if not attached")
	_ = fs.MarkHidden("interactive")
	fs.StringVarP(&user, "user", "u", "", "Run the command as this user")
	fs.StringVarP(&workdir, "workdir", "w", "", "Path to workdir directory for this command")
	return cmd
}

// execIn runs an exec in container id with the CLI's streams and returns
// its exit status as a StatusError.
func (c *cmds) execIn(ctx context.Context, id string, opts client.ExecCreateOptions, detach, interactive bool) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	if !detach {
		opts.AttachStdin = interactive
		opts.AttachStdout, opts.AttachStderr = true, true
	}
	if opts.TTY {
		if h, w, ok := c.TerminalSize(); ok {
			opts.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
		}
	}
	created, err := api.ExecCreate(ctx, id, opts)
	if err != nil {
		return err
	}
	if detach {
		_, err := api.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true, TTY: opts.TTY, ConsoleSize: opts.ConsoleSize})
		return err
	}
	resp, err := api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: opts.TTY, ConsoleSize: opts.ConsoleSize})
	if err != nil {
		return err
	}
	defer resp.Close()
	restore := c.RawTerminal(opts.TTY, interactive)
	if opts.TTY {
		c.MonitorTTYSize(ctx, func(h, w uint) {
			_, _ = api.ExecResize(ctx, created.ID, client.ExecResizeOptions{Height: h, Width: w})
		})
	}
	err = c.PumpStreams(ctx, &resp.HijackedResponse, opts.TTY, interactive)
	restore()
	if err != nil {
		return err
	}
	ins, err := api.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
	if err != nil {
		return err
	}
	if !ins.Running && ins.ExitCode != 0 {
		return cli.StatusError{StatusCode: ins.ExitCode}
	}
	return nil
}

func (c *cmds) newComposeRunCommand(o *composeOptions) *cobra.Command {
	var (
		detach, rm, noTTY, servicePorts, noDeps, useAliases, build, quietPull, removeOrphans bool
		interactive                                                                          bool
		name, user, workdir, entrypoint, pull                                                string
		env, labels, publish, volumes                                                        []string
	)
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] SERVICE [COMMAND] [ARGS...]",
		Short: "Run a one-off command on a service",
		Args:  cli.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := c.composeLoad(ctx, o, args[0])
			if err != nil {
				return err
			}
			e, err := c.composeEngine(o)
			if err != nil {
				return err
			}
			stdinTTY := isTerminal(c.In())
			ro := compose.RunOptions{
				Service: args[0], Command: args[1:], Env: env, Name: name, User: user, WorkingDir: workdir,
				Tty: !noTTY && stdinTTY && !detach, Interactive: interactive && !detach, AutoRemove: rm,
				ServicePorts: servicePorts, NoDeps: noDeps, UseAliases: useAliases,
				Images: compose.ImageOptions{Build: build, Pull: composePullPolicy(pull), Quiet: quietPull},
			}
			if cmd.Flags().Changed("tty") {
				ro.Tty, _ = cmd.Flags().GetBool("tty")
			}
			if cmd.Flags().Changed("entrypoint") {
				var ep types.ShellCommand
				if err := ep.DecodeMapstructure(entrypoint); err != nil {
					return err
				}
				ro.Entrypoint = ep
				if entrypoint == "" {
					ro.Entrypoint = []string{""}
				}
			}
			if len(labels) > 0 {
				ro.Labels = map[string]string{}
				for _, l := range labels {
					k, v, _ := strings.Cut(l, "=")
					ro.Labels[k] = v
				}
			}
			for _, spec := range publish {
				pc, err := compose.ParsePublish(spec)
				if err != nil {
					return err
				}
				ro.Publish = append(ro.Publish, pc)
			}
			for _, spec := range volumes {
				v, err := format.ParseVolume(spec)
				if err != nil {
					return err
				}
				ro.Volumes = append(ro.Volumes, v)
			}
			_ = removeOrphans
			ctr, err := e.RunCreate(ctx, p, ro)
			if err != nil {
				return err
			}
			return c.runOneoff(ctx, ctr, ro, detach)
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&detach, "detach", "d", false, "Run container in background and print container ID")
	fs.BoolVar(&rm, "rm", false, "Automatically remove the container when it exits")
	fs.StringArrayVarP(&env, "env", "e", nil, "Set environment variables")
	fs.StringArrayVarP(&labels, "label", "l", nil, "Add or override a label")
	fs.StringVar(&name, "name", "", "Assign a name to the container")
	fs.BoolVarP(&noTTY, "no-TTY", "T", false, "Disable pseudo-TTY allocation (default: auto-detected)")
	fs.Bool("tty", true, "Allocate a pseudo-TTY")
	_ = fs.MarkHidden("tty")
	fs.BoolVarP(&interactive, "interactive", "i", true, "Keep STDIN open even if not attached")
	fs.StringVar(&entrypoint, "entrypoint", "", "Override the entrypoint of the image")
	fs.StringVarP(&user, "user", "u", "", "Run as specified username or uid")
	fs.StringVarP(&workdir, "workdir", "w", "", "Working directory inside the container")
	fs.StringArrayVarP(&publish, "publish", "p", nil, "Publish a container's port(s) to the host")
	fs.StringArrayVarP(&volumes, "volume", "v", nil, "Bind mount a volume")
	fs.BoolVarP(&servicePorts, "service-ports", "P", false, "Run command with all service's ports enabled and mapped to the host")
	fs.BoolVar(&noDeps, "no-deps", false, "Don't start linked services")
	fs.BoolVar(&useAliases, "use-aliases", false, "Use the service's network useAliases in the network(s) the container connects to")
	fs.BoolVar(&build, "build", false, "Build image before starting container")
	fs.StringVar(&pull, "pull", "policy", `Pull image before running ("always"|"missing"|"never")`)
	fs.BoolVar(&quietPull, "quiet-pull", false, "Pull without printing progress information")
	fs.BoolVar(&removeOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	return cmd
}

// runOneoff starts a `compose run` container: detached it prints the
// container name; otherwise it attaches, starts, and returns the exit
// status.
func (c *cmds) runOneoff(ctx context.Context, ctr container.Summary, ro compose.RunOptions, detach bool) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	name := compose.ContainerDisplayName(ctr)
	if detach {
		if _, err := api.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
			return err
		}
		fmt.Fprintln(c.Out(), name)
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !ro.Tty {
		// Signals go to the one-off container, as with `docker run`.
		cli.ProxySignals(ctx, api, ctr.ID)
	}
	ar, err := api.ContainerAttach(ctx, ctr.ID, client.ContainerAttachOptions{Stream: true, Stdin: ro.Interactive, Stdout: true, Stderr: true})
	if err != nil {
		return err
	}
	defer ar.Close()
	cond := container.WaitConditionNextExit
	if ro.AutoRemove {
		cond = container.WaitConditionRemoved
	}
	wait := api.ContainerWait(ctx, ctr.ID, client.ContainerWaitOptions{Condition: cond})
	restore := c.RawTerminal(ro.Tty, ro.Interactive)
	defer restore()
	streamDone := make(chan error, 1)
	go func() { streamDone <- c.PumpStreams(ctx, &ar.HijackedResponse, ro.Tty, ro.Interactive) }()
	if _, err := api.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
		return err
	}
	if ro.Tty {
		c.MonitorTTYSize(ctx, func(h, w uint) {
			_, _ = api.ContainerResize(ctx, ctr.ID, client.ContainerResizeOptions{Height: h, Width: w})
		})
	}
	var res container.WaitResponse
	select {
	case res = <-wait.Result:
	case err := <-wait.Error:
		return err
	}
	// Let the output drain before returning.
	select {
	case <-streamDone:
	case <-ctx.Done():
	}
	if res.Error != nil && res.Error.Message != "" {
		return errors.New(res.Error.Message)
	}
	if res.StatusCode != 0 {
		return cli.StatusError{StatusCode: int(res.StatusCode)}
	}
	return nil
}

var _ = io.Discard
