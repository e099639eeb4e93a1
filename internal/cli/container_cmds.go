package cli

import (
	"context"
	"errors"
	"fmt"
	"github.com/docker/go-units"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (c *Cli) newContainerCommand() *cobra.Command {
	return managementCommand("container", "Manage containers",
		c.newStatsCommand(),
		c.newRunCommand(), c.newCreateCommand(), c.newStartCommand(), c.newStopCommand(),
		c.newRestartCommand(), c.newKillCommand(), withAlias(c.newRmCommand(), "rm", "remove"),
		withAlias(c.newPsCommand(), "ls", "list", "ps"), c.newLogsCommand(), c.newExecCommand(),
		c.newAttachCommand(), c.newContainerInspectCommand(), c.newWaitCommand(),
		c.newRenameCommand(), c.newUpdateCommand(), c.newContainerPruneCommand(),
		c.newCpCommand(), c.newTopCommand(), c.newPauseCommand(), c.newUnpauseCommand(), c.newExportCommand(),
		c.newCommitCommand(), c.newDiffCommand(), c.newPortCommand(),
	)
}

// forEach runs fn for every argument, printing each argument on success
// (when echo is set) and collecting errors as docker does: all are printed,
// and the command fails with status 1.
func (c *Cli) forEach(args []string, echo bool, fn func(string) error) error {
	var errs []string
	for _, a := range args {
		if err := fn(a); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if echo {
			fmt.Fprintln(c.out, a)
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

func (c *Cli) newStartCommand() *cobra.Command {
	var (
		attach, interactive bool
		detachKeys          string
	)
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !attach && !interactive {
				var failed []string
				err := c.forEach(args, true, func(id string) error {
					_, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{})
					if err != nil {
						failed = append(failed, id)
					}
					return err
				})
				if err != nil {
					return fmt.Errorf("%w\nError: failed to start containers: %s", err, strings.Join(failed, ", "))
				}
				return nil
			}
			if len(args) > 1 {
				return errors.New("you cannot start and attach multiple containers at once")
			}
			return c.attachAndWait(ctx, args[0], attachSpec{
				stdin: interactive, detachKeys: detachKeys, sigProxy: true, start: true,
			})
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	fs.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	fs.BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	return cmd
}

func (c *Cli) newAttachCommand() *cobra.Command {
	var (
		noStdin, sigProxy bool
		detachKeys        string
	)
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.attachAndWait(cmd.Context(), args[0], attachSpec{
				stdin: !noStdin, detachKeys: detachKeys, sigProxy: sigProxy,
			})
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	fs.BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	fs.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

type attachSpec struct {
	stdin      bool
	detachKeys string
	sigProxy   bool
	start      bool // start the container after attaching (start -a)
}

// detachKeys returns the sequence to send to the daemon (flag, else the
// config file's detachKeys) and the bytes the client watches for.
func (c *Cli) detachKeys(flag string) (string, []byte, error) {
	spec := flag
	if spec == "" {
		if cf, err := c.readConfig(); err == nil {
			spec = cf.DetachKeys
		}
	}
	keys, err := parseDetachKeys(orDefault(spec, defaultDetachKeys))
	if err != nil {
		return "", nil, fmt.Errorf("invalid detach keys (%s) provided", spec)
	}
	return spec, keys, nil
}

// attachAndWait implements "attach" and "start -a": attach to the
// container's streams (starting it for start -a), stream until it exits or
// the user detaches, and return its exit status. The order of API calls is
// docker's.
func (c *Cli) attachAndWait(ctx context.Context, name string, spec attachSpec) error {
	api, err := c.Client()
	if err != nil {
		return err
	}
	keysSpec, keys, err := c.detachKeys(spec.detachKeys)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wait client.ContainerWaitResult
	if !spec.start {
		// attach: the wait is registered first, on the name given.
		wait = api.ContainerWait(context.WithoutCancel(ctx), name, client.ContainerWaitOptions{})
	}
	ins, err := api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	ctr := ins.Container
	if !spec.start {
		if err := attachableState(ctr.State); err != nil {
			return err
		}
	}
	cfg := ctr.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	stdin := spec.stdin && cfg.OpenStdin
	if _, isTerm := isTerminalReader(c.in); cfg.Tty && spec.stdin && !isTerm && !spec.start {
		return errors.New("the input device is not a TTY")
	}
	target := name
	if spec.start {
		target = ctr.ID
	}
	if spec.sigProxy && !cfg.Tty {
		proxySignals(ctx, api, ctr.ID)
	}
	ar, err := api.ContainerAttach(ctx, target, client.ContainerAttachOptions{
		Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: keysSpec,
	})
	if err != nil {
		return err
	}
	defer ar.Close()
	if !spec.start {
		// The container may have stopped while attaching.
		again, err := api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		if err := attachableState(again.Container.State); err != nil {
			return err
		}
	}
	restore := c.rawTerminal(cfg.Tty, stdin)
	defer restore()
	so := streamOptions{stdout: c.out, stderr: c.err, tty: cfg.Tty, detachKeys: keys}
	if stdin {
		so.stdin = c.in
	}
	done := make(chan error, 1)
	go func() { done <- pumpStreams(ctx, &ar.HijackedResponse, so) }()
	if spec.start {
		cond := exitCondition(ctr.HostConfig != nil && ctr.HostConfig.AutoRemove)
		wait = api.ContainerWait(context.WithoutCancel(ctx), ctr.ID, client.ContainerWaitOptions{Condition: cond})
		if _, err := api.ContainerStart(ctx, ctr.ID, client.ContainerStartOptions{}); err != nil {
			cancel()
			<-done
			return err
		}
	}
	if cfg.Tty {
		c.monitorTTYSize(ctx, func(h, w uint) {
			_, _ = api.ContainerResize(ctx, ctr.ID, client.ContainerResizeOptions{Height: h, Width: w})
		})
	}
	if err := <-done; err != nil {
		if errors.Is(err, errDetached) {
			return nil // the user typed the detach sequence
		}
		return err
	}
	select {
	case res := <-wait.Result:
		if res.Error != nil {
			return errors.New(res.Error.Message)
		}
		if res.StatusCode != 0 {
			return StatusError{StatusCode: int(res.StatusCode)}
		}
		return nil
	case err := <-wait.Error:
		return err
	}
}

func attachableState(st *container.State) error {
	if st == nil || !st.Running {
		return errors.New("You cannot attach to a stopped container, start it first")
	}
	if st.Paused {
		return errors.New("You cannot attach to a paused container, unpause it first")
	}
	if st.Restarting {
		return errors.New("You cannot attach to a restarting container, wait until it is running")
	}
	return nil
}

func (c *Cli) newStopCommand() *cobra.Command {
	return c.stopLike("stop", "Stop one or more running containers", func(ctx context.Context, api *client.Client, id, sig string, t *int) error {
		_, err := api.ContainerStop(ctx, id, client.ContainerStopOptions{Signal: sig, Timeout: t})
		return err
	})
}

func (c *Cli) newRestartCommand() *cobra.Command {
	return c.stopLike("restart", "Restart one or more containers", func(ctx context.Context, api *client.Client, id, sig string, t *int) error {
		_, err := api.ContainerRestart(ctx, id, client.ContainerRestartOptions{Signal: sig, Timeout: t})
		return err
	})
}

func (c *Cli) stopLike(name, short string, fn func(context.Context, *client.Client, string, string, *int) error) *cobra.Command {
	var (
		signal  string
		timeout int
	)
	cmd := &cobra.Command{
		Use:   name + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *int
			if cmd.Flags().Changed("timeout") || cmd.Flags().Changed("time") {
				t = &timeout
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			return c.forEach(args, true, func(id string) error {
				return fn(cmd.Context(), api, id, signal, t)
			})
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	fs.IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	fs.IntVar(&timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	hideFlag(fs, "time")
	return cmd
}

func (c *Cli) newKillCommand() *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			return c.forEach(args, true, func(id string) error {
				_, err := api.ContainerKill(cmd.Context(), id, client.ContainerKillOptions{Signal: signal})
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func (c *Cli) newRmCommand() *cobra.Command {
	var opts client.ContainerRemoveOptions
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			return c.forEach(args, true, func(id string) error {
				id = strings.Trim(id, "/")
				if id == "" {
					return errors.New("Container name cannot be empty")
				}
				_, err := api.ContainerRemove(cmd.Context(), id, opts)
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.Force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	fs.BoolVarP(&opts.RemoveLinks, "link", "l", false, "Remove the specified link")
	fs.BoolVarP(&opts.RemoveVolumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	return cmd
}

func (c *Cli) newWaitCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			return c.forEach(args, false, func(id string) error {
				w := api.ContainerWait(cmd.Context(), id, client.ContainerWaitOptions{})
				select {
				case res := <-w.Result:
					fmt.Fprintf(c.out, "%d\n", res.StatusCode)
					return nil
				case err := <-w.Error:
					return err
				}
			})
		},
	}
}

func (c *Cli) newRenameCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			oldName, newName := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if oldName == "" || newName == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			if _, err := api.ContainerRename(cmd.Context(), oldName, client.ContainerRenameOptions{NewName: newName}); err != nil {
				return fmt.Errorf("%w\nError: failed to rename container named %s", err, oldName)
			}
			return nil
		},
	}
}

func (c *Cli) newUpdateCommand() *cobra.Command {
	var (
		blkioWeight               uint16
		cpuPeriod, cpuQuota       int64
		cpuRtPeriod, cpuRtRuntime int64
		cpuShares, pidsLimit      int64
		cpus                      nanoCPUs
		cpusetCpus, cpusetMems    string
		memory, memoryReservation memBytes
		memorySwap                memSwapBytes
		restart                   string
	)
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := cmd.Flags()
			if fs.NFlag() == 0 {
				return errors.New("you must provide one or more flags when using this command")
			}
			r := &container.Resources{
				BlkioWeight:        blkioWeight,
				CpusetCpus:         cpusetCpus,
				CpusetMems:         cpusetMems,
				CPUShares:          cpuShares,
				Memory:             int64(memory),
				MemoryReservation:  int64(memoryReservation),
				MemorySwap:         int64(memorySwap),
				CPUPeriod:          cpuPeriod,
				CPUQuota:           cpuQuota,
				CPURealtimePeriod:  cpuRtPeriod,
				CPURealtimeRuntime: cpuRtRuntime,
				NanoCPUs:           int64(cpus),
			}
			if fs.Changed("pids-limit") {
				r.PidsLimit = &pidsLimit
			}
			opts := client.ContainerUpdateOptions{Resources: r}
			if fs.Changed("restart") {
				p, err := parseRestartPolicy(restart)
				if err != nil {
					return err
				}
				opts.RestartPolicy = &p
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			return c.forEach(args, true, func(id string) error {
				res, err := api.ContainerUpdate(cmd.Context(), id, opts)
				for _, w := range res.Warnings {
					fmt.Fprintln(c.err, w)
				}
				return err
			})
		},
	}
	fs := cmd.Flags()
	fs.Uint16Var(&blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.Int64Var(&cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64Var(&cpuRtPeriod, "cpu-rt-period", 0, "Limit the CPU real-time period in microseconds")
	fs.Int64Var(&cpuRtRuntime, "cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds")
	fs.Int64VarP(&cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&cpus, "cpus", "Number of CPUs")
	fs.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.VarP(&memory, "memory", "m", "Memory limit")
	fs.Var(&memoryReservation, "memory-reservation", "Memory soft limit")
	fs.Var(&memorySwap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fs.Int64Var(&pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fs.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}

func (c *Cli) newContainerPruneCommand() *cobra.Command {
	var (
		force   bool
		filters filterOpts
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !c.confirm("WARNING! This will remove all stopped containers.") {
				return nil
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{Filters: filters.f})
			if err != nil {
				return err
			}
			if len(res.Report.ContainersDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Containers:")
				for _, id := range res.Report.ContainersDeleted {
					fmt.Fprintln(c.out, id)
				}
				fmt.Fprintln(c.out)
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().Var(&filters, "filter", `Provide filter values (e.g. "until=<timestamp>")`)
	return cmd
}
