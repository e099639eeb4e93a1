package cli

import (
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newCommitCommand is `berth commit`, docker's flags and output (the new
// image's ID).
func (c *Cli) newCommitCommand() *cobra.Command {
	var (
		author, message string
		changes         []string
		pause, noPause  bool
	)
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  requiresRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ref := ""
			if len(args) == 2 {
				ref = args[1]
			}
			if cmd.Flags().Changed("no-pause") {
				pause = !noPause
			}
			res, err := api.ContainerCommit(cmd.Context(), args[0], client.ContainerCommitOptions{
				Reference: ref, Comment: message, Author: author, Changes: changes, NoPause: !pause,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVarP(&author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	fl.StringArrayVarP(&changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	fl.StringVarP(&message, "message", "m", "", "Commit message")
	fl.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	fl.BoolVar(&noPause, "no-pause", false, "Disable pausing container during commit")
	hideFlag(fl, "no-pause")
	return cmd
}

// newDiffCommand is `berth diff`: one "K /path" line per change.
func (c *Cli) newDiffCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.ContainerDiff(cmd.Context(), args[0], client.ContainerDiffOptions{})
			if err != nil {
				return err
			}
			for _, ch := range res.Changes {
				k := "C"
				switch ch.Kind {
				case container.ChangeAdd:
					k = "A"
				case container.ChangeDelete:
					k = "D"
				}
				fmt.Fprintf(c.out, "%s %s\n", k, ch.Path)
			}
			return nil
		},
	}
}
