package composecli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/compose"
)

func (c *cmds) newComposeScaleCommand(o *composeOptions) *cobra.Command {
	var noDeps bool
	cmd := &cobra.Command{
		Use:   "scale [SERVICE=REPLICAS...]",
		Short: "Scale services ",
		Args:  cli.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var services []string
			for _, a := range args {
				name, _, ok := strings.Cut(a, "=")
				if !ok {
					return fmt.Errorf("invalid scale specifier: %s", a)
				}
				services = append(services, name)
			}
			p, err := c.composeLoad(ctx, o, services...)
			if err != nil {
				return err
			}
			if noDeps {
				if p, err = p.WithSelectedServices(services, types.IgnoreDependencies); err != nil {
					return err
				}
			}
			if err := composeParseScale(p, args); err != nil {
				return err
			}
			e, err := c.composeEngine(o)
			if err != nil {
				return err
			}
			return e.Up(ctx, p, compose.UpOptions{Services: services, Recreate: compose.RecreateNever})
		},
	}
	cmd.Flags().BoolVar(&noDeps, "no-deps", false, "Don't start linked services")
	return cmd
}

func (c *cmds) newComposeWaitCommand(o *composeOptions) *cobra.Command {
	var downProject bool
	cmd := &cobra.Command{
		Use:   "wait SERVICE [SERVICE...] [OPTIONS]",
		Short: "Block until containers of all (or specified) services stop.",
		Args:  cli.RequiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.composeTarget(ctx, o, nil)
			if err != nil {
				return err
			}
			cs, err := e.ProjectContainers(ctx, p.Name, true, false, args...)
			if err != nil {
				return err
			}
			if len(cs) == 0 {
				return errors.New("no containers for project " + p.Name)
			}
			api, _ := c.Client()
			type exit struct {
				code int
				err  error
			}
			exits := make(chan exit, len(cs))
			waitCtx, cancel := context.WithCancel(ctx)
			defer cancel()
			for _, ctr := range cs {
				go func() {
					w := api.ContainerWait(waitCtx, ctr.ID, clientWaitNotRunning())
					select {
					case r := <-w.Result:
						exits <- exit{code: int(r.StatusCode)}
					case err := <-w.Error:
						exits <- exit{err: err}
					}
				}()
			}
			first := <-exits
			if first.err != nil {
				return first.err
			}
			if downProject {
				if err := e.Down(context.WithoutCancel(ctx), p, compose.DownOptions{}); err != nil {
					return err
				}
			} else {
				for range cs[1:] {
					if x := <-exits; x.err != nil {
						return x.err
					}
				}
			}
			if first.code != 0 {
				return cli.StatusError{StatusCode: first.code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&downProject, "down-project", false, "Drops project when the first container stops")
	return cmd
}

func clientWaitNotRunning() client.ContainerWaitOptions {
	return client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning}
}
