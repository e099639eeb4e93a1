package composecli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/compose"
)

type composeUpFlags struct {
	detach, build, noBuild, wait, forceRecreate, noRecreate, noDeps    bool
	removeOrphans, abortOnExit, noStart, quietPull, alwaysRecreateDeps bool
	noColor, noLogPrefix, attachDeps, timestamps                       bool
	attach, noAttach                                                   []string
	waitTimeout, timeout                                               int
	scale                                                              []string
	exitCodeFrom, pull                                                 string
}

func (f *composeUpFlags) images() compose.ImageOptions {
	return compose.ImageOptions{Build: f.build, NoBuild: f.noBuild, Pull: composePullPolicy(f.pull), Quiet: f.quietPull}
}

// composePullPolicy maps --pull values to compose pull policies.
func composePullPolicy(v string) string {
	switch v {
	case "", "policy":
		return ""
	case "missing":
		return types.PullPolicyMissing
	default:
		return v
	}
}

// envBool reads a COMPOSE_* boolean environment variable.
func envBool(name string) bool {
	v, err := strconv.ParseBool(os.Getenv(name))
	return err == nil && v
}

func (f *composeUpFlags) validate() error {
	if f.forceRecreate && f.noRecreate {
		return errors.New("--force-recreate and --no-recreate are incompatible")
	}
	if f.detach && (f.abortOnExit || f.exitCodeFrom != "") {
		return errors.New("--abort-on-container-exit and --detach are incompatible")
	}
	if f.build && f.noBuild {
		return errors.New("--build and --no-build are incompatible")
	}
	switch f.pull {
	case "", "policy", "always", "missing", "never", "build":
	default:
		return fmt.Errorf("invalid --pull option %q", f.pull)
	}
	return nil
}

func (f *composeUpFlags) upOptions(cmd *cobra.Command, services []string) compose.UpOptions {
	o := compose.UpOptions{
		Services: services, Images: f.images(), RemoveOrphans: f.removeOrphans || envBool("COMPOSE_REMOVE_ORPHANS"),
		IgnoreOrphans: envBool("COMPOSE_IGNORE_ORPHANS"),
		Timeout:       composeTimeoutFlag(cmd, "timeout", f.timeout), NoStart: f.noStart,
		Wait: f.wait, WaitTimeout: time.Duration(f.waitTimeout) * time.Second,
	}
	switch {
	case f.forceRecreate:
		o.Recreate = compose.RecreateForce
	case f.noRecreate:
		o.Recreate = compose.RecreateNever
	}
	if f.alwaysRecreateDeps {
		o.RecreateDependencies = compose.RecreateForce
	}
	return o
}

func (c *cmds) newComposeUpCommand(o *composeOptions) *cobra.Command {
	f := &composeUpFlags{}
	cmd := &cobra.Command{
		Use:   "up [OPTIONS] [SERVICE...]",
		Short: "Create and start containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.exitCodeFrom != "" {
				f.abortOnExit = true
			}
			if f.wait {
				f.detach = true
			}
			if err := f.validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			p, err := c.composeLoad(ctx, o, args...)
			if err != nil {
				return err
			}
			if f.noDeps && len(args) > 0 {
				if p, err = p.WithSelectedServices(args, types.IgnoreDependencies); err != nil {
					return err
				}
			}
			if err := composeParseScale(p, f.scale); err != nil {
				return err
			}
			if f.exitCodeFrom != "" {
				if _, ok := p.Services[f.exitCodeFrom]; !ok {
					return fmt.Errorf("no such service: %s", f.exitCodeFrom)
				}
			}
			e, err := c.composeEngine(o)
			if err != nil {
				return err
			}
			runCtx, stop := composeInterruptible(ctx)
			defer stop()
			started := time.Now()
			if err := e.Up(runCtx, p, f.upOptions(cmd, args)); err != nil {
				return err
			}
			if f.detach || f.noStart {
				return nil
			}
			lp := &compose.LogPrinter{Out: c.Out(), Color: !f.noColor && composeColorOutput(o, c.Out()), NoPrefix: f.noLogPrefix, Project: p.Name}
			attached := composeAttachedServices(p, args, f)
			if attached != nil && len(attached) == 0 {
				// Everything is --no-attach: wait for the containers, silently.
				lp.Out = io.Discard
			} else {
				fmt.Fprintln(c.Out(), "Attaching to "+composeAttachNames(ctx, e, p, attached))
			}
			status, err := e.Attach(runCtx, p, attached, compose.AttachOptions{
				AbortOnExit: f.abortOnExit, ExitCodeFrom: f.exitCodeFrom, Timeout: composeTimeoutFlag(cmd, "timeout", f.timeout),
				Since: started, Timestamps: f.timestamps,
			}, lp)
			if runCtx.Err() != nil && ctx.Err() == nil {
				// Interrupted: stop the project like Compose does.
				fmt.Fprintln(c.Err(), "Gracefully stopping... (press Ctrl+C again to force)")
				if err := e.Stop(context.WithoutCancel(ctx), p, nil, composeTimeoutFlag(cmd, "timeout", f.timeout)); err != nil {
					return err
				}
				return cli.StatusError{StatusCode: 130}
			}
			if err != nil {
				return err
			}
			if status != 0 {
				return cli.StatusError{StatusCode: status}
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&f.detach, "detach", "d", false, "Detached mode: Run containers in the background")
	fs.BoolVar(&f.build, "build", false, "Build images before starting containers")
	fs.BoolVar(&f.noBuild, "no-build", false, "Don't build an image, even if it's policy")
	fs.BoolVar(&f.wait, "wait", false, "Wait for services to be running|healthy. Implies detached mode.")
	fs.IntVar(&f.waitTimeout, "wait-timeout", 0, "Maximum duration in seconds to wait for the project to be running|healthy")
	fs.StringArrayVar(&f.scale, "scale", nil, "Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present.")
	fs.BoolVar(&f.forceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	fs.BoolVar(&f.noRecreate, "no-recreate", false, "If containers already exist, don't recreate them. Incompatible with --force-recreate.")
	fs.BoolVar(&f.alwaysRecreateDeps, "always-recreate-deps", false, "Recreate dependent containers. Incompatible with --no-recreate.")
	fs.BoolVar(&f.noDeps, "no-deps", false, "Don't start linked services")
	fs.BoolVar(&f.removeOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	fs.BoolVar(&f.abortOnExit, "abort-on-container-exit", false, "Stops all containers if any container was stopped. Incompatible with -d")
	fs.StringVar(&f.exitCodeFrom, "exit-code-from", "", "Return the exit code of the selected service container. Implies --abort-on-container-exit")
	fs.StringVar(&f.pull, "pull", "policy", `Pull image before running ("always"|"missing"|"never")`)
	fs.BoolVar(&f.quietPull, "quiet-pull", false, "Pull without printing progress information")
	fs.BoolVar(&f.noStart, "no-start", false, "Don't start the services after creating them")
	fs.BoolVar(&f.noColor, "no-color", false, "Produce monochrome output")
	fs.BoolVar(&f.noLogPrefix, "no-log-prefix", false, "Don't print prefix in logs")
	fs.StringArrayVar(&f.attach, "attach", nil, "Restrict attaching to the specified services. Incompatible with --attach-dependencies.")
	fs.StringArrayVar(&f.noAttach, "no-attach", nil, "Do not attach (stream logs) to the specified services")
	fs.BoolVar(&f.attachDeps, "attach-dependencies", false, "Automatically attach to log output of dependent services")
	fs.BoolVar(&f.timestamps, "timestamps", false, "Show timestamps")
	fs.IntVarP(&f.timeout, "timeout", "t", 0, "Use this timeout in seconds for container shutdown when attached or when containers are already running")
	return cmd
}

// composeAttachedServices picks the services an attached up follows:
// --attach, else the services named (with their dependencies given
// --attach-dependencies), else all; minus --no-attach.
func composeAttachedServices(p *types.Project, args []string, f *composeUpFlags) []string {
	var list []string
	switch {
	case len(f.attach) > 0:
		list = append(list, f.attach...)
	case len(args) > 0 && !f.attachDeps:
		list = append(list, args...)
	default:
		list = p.ServiceNames()
	}
	if len(f.noAttach) == 0 {
		if len(f.attach) == 0 && (len(args) == 0 || f.attachDeps) {
			return nil // all
		}
		return list
	}
	skip := map[string]bool{}
	for _, s := range f.noAttach {
		skip[s] = true
	}
	out := []string{}
	for _, s := range list {
		if !skip[s] {
			out = append(out, s)
		}
	}
	return out
}

func composeAttachNames(ctx context.Context, e *compose.Engine, p *types.Project, services []string) string {
	cs, err := e.ProjectContainers(ctx, p.Name, true, false, services...)
	if err != nil {
		return ""
	}
	var names string
	for i, ctr := range cs {
		if i > 0 {
			names += ", "
		}
		names += strings.TrimPrefix(compose.ContainerDisplayName(ctr), p.Name+"-")
	}
	return names
}

func (c *cmds) newComposeCreateCommand(o *composeOptions) *cobra.Command {
	f := &composeUpFlags{}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [SERVICE...]",
		Short: "Creates containers for a service",
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			p, err := c.composeLoad(cmd.Context(), o, args...)
			if err != nil {
				return err
			}
			if err := composeParseScale(p, f.scale); err != nil {
				return err
			}
			e, err := c.composeEngine(o)
			if err != nil {
				return err
			}
			f.noStart = true
			return e.Up(cmd.Context(), p, f.upOptions(cmd, args))
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&f.build, "build", false, "Build images before starting containers")
	fs.BoolVar(&f.noBuild, "no-build", false, "Don't build an image, even if it's policy")
	fs.BoolVar(&f.forceRecreate, "force-recreate", false, "Recreate containers even if their configuration and image haven't changed")
	fs.BoolVar(&f.noRecreate, "no-recreate", false, "If containers already exist, don't recreate them. Incompatible with --force-recreate.")
	fs.BoolVar(&f.removeOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	fs.StringArrayVar(&f.scale, "scale", nil, "Scale SERVICE to NUM instances. Overrides the `scale` setting in the Compose file if present.")
	fs.StringVar(&f.pull, "pull", "policy", `Pull image before running ("always"|"missing"|"never"|"build")`)
	fs.BoolVar(&f.quietPull, "quiet-pull", false, "Pull without printing progress information")
	return cmd
}

func (c *cmds) newComposeDownCommand(o *composeOptions) *cobra.Command {
	var (
		removeOrphans, volumes bool
		rmi                    string
		timeout                int
	)
	cmd := &cobra.Command{
		Use:   "down [OPTIONS] [SERVICES]",
		Short: "Stop and remove containers, networks",
		RunE: func(cmd *cobra.Command, args []string) error {
			if rmi != "" && rmi != "local" && rmi != "all" {
				return fmt.Errorf("invalid value for --rmi: %s", rmi)
			}
			p, err := c.composeProjectOrName(cmd.Context(), o)
			if err != nil {
				return err
			}
			e, err := c.composeEngine(o)
			if err != nil {
				return err
			}
			return e.Down(cmd.Context(), p, compose.DownOptions{
				RemoveOrphans: removeOrphans, Volumes: volumes, Images: rmi,
				Timeout: composeTimeoutFlag(cmd, "timeout", timeout), Services: args,
			})
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&removeOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	fs.StringVar(&rmi, "rmi", "", `Remove images used by services. "local" remove only images that don't have a custom tag ("local"|"all")`)
	fs.IntVarP(&timeout, "timeout", "t", 0, "Specify a shutdown timeout in seconds")
	fs.BoolVarP(&volumes, "volumes", "v", false, "Remove named volumes declared in the \"volumes\" section of the Compose file and anonymous volumes attached to containers")
	return cmd
}

// newComposeLifecycleCommand builds start, stop, restart, pause and
// unpause, which share their shape: [SERVICE...] and, for stop and
// restart, -t.
func (c *cmds) newComposeLifecycleCommand(o *composeOptions, verb, short string) *cobra.Command {
	var timeout int
	cmd := &cobra.Command{
		Use:   verb + " [SERVICE...]",
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.composeTarget(ctx, o, args)
			if err != nil {
				return err
			}
			t := composeTimeoutFlag(cmd, "timeout", timeout)
			switch verb {
			case "start":
				return e.Start(ctx, p, args)
			case "stop":
				return e.Stop(ctx, p, args, t)
			case "restart":
				noDeps, _ := cmd.Flags().GetBool("no-deps")
				return e.Restart(ctx, p, args, t, noDeps)
			case "pause":
				return e.Pause(ctx, p, args)
			default:
				return e.Unpause(ctx, p, args)
			}
		},
	}
	if verb == "stop" || verb == "restart" {
		cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Specify a shutdown timeout in seconds")
	}
	if verb == "restart" {
		cmd.Flags().Bool("no-deps", false, "Don't restart dependent services")
	}
	return cmd
}

func (c *cmds) newComposeKillCommand(o *composeOptions) *cobra.Command {
	var (
		signal        string
		removeOrphans bool
	)
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] [SERVICE...]",
		Short: "Force stop service containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := c.composeProjectOrName(cmd.Context(), o)
			if err != nil {
				return err
			}
			e, err := c.composeEngine(o)
			if err != nil {
				return err
			}
			return e.Kill(cmd.Context(), p, args, signal, removeOrphans)
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "SIGKILL", "SIGNAL to send to the container")
	cmd.Flags().BoolVar(&removeOrphans, "remove-orphans", false, "Remove containers for services not defined in the Compose file")
	return cmd
}

func (c *cmds) newComposeRmCommand(o *composeOptions) *cobra.Command {
	var force, stop, volumes bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] [SERVICE...]",
		Short: "Removes stopped service containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.composeTarget(ctx, o, nil)
			if err != nil {
				return err
			}
			if stop {
				if err := e.Stop(ctx, p, args, nil); err != nil {
					return err
				}
			}
			targets, err := e.Remove(ctx, p, args, stop, volumes, true)
			if err != nil {
				return err
			}
			if len(targets) == 0 {
				fmt.Fprintln(c.Err(), "No stopped containers")
				return nil
			}
			if !force {
				msg := "Going to remove"
				for _, t := range targets {
					msg += " " + compose.ContainerDisplayName(t)
				}
				if !c.Confirm(msg) {
					return nil
				}
			}
			_, err = e.Remove(ctx, p, args, stop, volumes, false)
			return err
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&force, "force", "f", false, "Don't ask to confirm removal")
	fs.BoolVarP(&stop, "stop", "s", false, "Stop the containers, if required, before removing")
	fs.BoolVarP(&volumes, "volumes", "v", false, "Remove any anonymous volumes attached to containers")
	return cmd
}
