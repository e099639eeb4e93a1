package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (c *Cli) newLogsCommand() *cobra.Command {
	var opts client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ins, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			opts.ShowStdout, opts.ShowStderr = true, true
			rc, err := api.ContainerLogs(ctx, ins.Container.ID, opts)
			if err != nil {
				return err
			}
			defer rc.Close()
			if ins.Container.Config != nil && ins.Container.Config.Tty {
				_, err = io.Copy(c.out, rc)
			} else {
				_, err = stdcopy.StdCopy(c.out, c.err, rc)
			}
			return err
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&opts.Details, "details", false, "Show extra details provided to logs")
	fs.BoolVarP(&opts.Follow, "follow", "f", false, "Follow log output")
	fs.StringVar(&opts.Since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	fs.StringVar(&opts.Until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	fs.StringVarP(&opts.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	fs.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "Show timestamps")
	return cmd
}

func (c *Cli) newExecCommand() *cobra.Command {
	var (
		detach, interactive, tty, privileged bool
		detachKeys, user, workdir            string
		env, envFile                         listOpts
	)
	env.validate = validateEnv
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  requiresMinArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var envs []string
			for _, f := range envFile.values {
				lines, err := readKVFile(f, true)
				if err != nil {
					return err
				}
				envs = append(envs, lines...)
			}
			envs = append(envs, env.values...)
			keysSpec, keys, err := c.detachKeys(detachKeys)
			if err != nil {
				return err
			}
			if _, isTerm := isTerminalReader(c.in); tty && interactive && !isTerm && !detach {
				return errors.New("the input device is not a TTY")
			}
			opts := client.ExecCreateOptions{
				User: user, Privileged: privileged, TTY: tty, Env: envs, WorkingDir: workdir,
				Cmd: args[1:], DetachKeys: keysSpec,
			}
			if !detach {
				opts.AttachStdin = interactive
				opts.AttachStdout, opts.AttachStderr = true, true
			}
			if tty {
				if h, w, ok := c.terminalSize(); ok {
					opts.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
				}
			}
			// Like docker, check the container exists before creating
			// the exec.
			if _, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{}); err != nil {
				return err
			}
			created, err := api.ExecCreate(ctx, args[0], opts)
			if err != nil {
				return err
			}
			if detach {
				_, err := api.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true, TTY: tty, ConsoleSize: opts.ConsoleSize})
				return err
			}
			resp, err := api.ExecAttach(ctx, created.ID, client.ExecAttachOptions{TTY: tty, ConsoleSize: opts.ConsoleSize})
			if err != nil {
				return err
			}
			defer resp.Close()
			restore := c.rawTerminal(tty, interactive)
			so := streamOptions{stdout: c.out, stderr: c.err, tty: tty, detachKeys: keys}
			if interactive {
				so.stdin = c.in
			}
			if tty {
				c.monitorTTYSize(ctx, func(h, w uint) {
					_, _ = api.ExecResize(ctx, created.ID, client.ExecResizeOptions{Height: h, Width: w})
				})
			}
			err = pumpStreams(ctx, &resp.HijackedResponse, so)
			restore()
			if errors.Is(err, errDetached) {
				return nil // the user typed the detach sequence
			}
			if err != nil {
				return err
			}
			ins, err := api.ExecInspect(ctx, created.ID, client.ExecInspectOptions{})
			if err != nil {
				return err
			}
			if ins.Running {
				return nil
			}
			if ins.ExitCode != 0 {
				return StatusError{StatusCode: ins.ExitCode}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&detach, "detach", "d", false, "Detached mode: run command in the background")
	fs.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fs.VarP(&env, "env", "e", "Set environment variables")
	fs.Var(&envFile, "env-file", "Read in a file of environment variables")
	fs.BoolVarP(&interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVar(&privileged, "privileged", false, "Give extended privileges to the command")
	fs.BoolVarP(&tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.StringVarP(&user, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fs.StringVarP(&workdir, "workdir", "w", "", "Working directory inside the container")
	return cmd
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (c *Cli) newContainerInspectCommand() *cobra.Command {
	var (
		format string
		size   bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.inspect(cmd, args, "container", format, size)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}

const inspectFormatHelp = "Format output using a custom template:\n" +
	"'json':             Print in JSON format\n" +
	"'TEMPLATE':         Print output using the given Go template.\n" +
	"Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"

func (c *Cli) newInspectCommand() *cobra.Command {
	var (
		format, typ string
		size        bool
	)
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on berth objects",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch typ {
			case "", "container", "image":
			default:
				return fmt.Errorf("%q is not a valid value for --type", typ)
			}
			return c.inspect(cmd, args, typ, format, size)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes if the type is container")
	cmd.Flags().StringVar(&typ, "type", "", "Only inspect objects of the given type")
	return cmd
}

// inspect looks each name up as a container and/or image (typ "" tries
// both, containers first) and prints the raw JSON or a template.
func (c *Cli) inspect(cmd *cobra.Command, args []string, typ, format string, size bool) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	return inspectEach(c.out, format, args, func(name string) (json.RawMessage, any, error) {
		var (
			raw   json.RawMessage
			value any
			err   error
		)
		if typ == "" || typ == "container" {
			var res client.ContainerInspectResult
			res, err = api.ContainerInspect(ctx, name, client.ContainerInspectOptions{Size: size})
			raw, value = res.Raw, res.Container
		}
		if (typ == "image") || (typ == "" && err != nil && isNotFound(err)) {
			var buf bytes.Buffer
			var res client.ImageInspectResult
			res, err = api.ImageInspect(ctx, name, client.ImageInspectWithRawResponse(&buf))
			raw, value = json.RawMessage(buf.Bytes()), res.InspectResponse
		}
		if err != nil && isNotFound(err) && typ == "" {
			err = errors.New("Error: No such object: " + name)
		}
		return raw, value, err
	})
}
