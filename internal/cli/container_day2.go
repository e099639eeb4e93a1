package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// top, pause, unpause and export: thin commands over one API call each.

func (c *Cli) newTopCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.out, 20, 1, 3, ' ', 0)
			fmt.Fprintln(w, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(w, strings.Join(p, "\t"))
			}
			return w.Flush()
		},
	}
	// Everything after the container is for ps.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func (c *Cli) newPauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			return c.forEach(args, true, func(name string) error {
				_, err := api.ContainerPause(cmd.Context(), name, client.ContainerPauseOptions{})
				return err
			})
		},
	}
}

func (c *Cli) newUnpauseCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			return c.forEach(args, true, func(name string) error {
				_, err := api.ContainerUnpause(cmd.Context(), name, client.ContainerUnpauseOptions{})
				return err
			})
		},
	}
}

func (c *Cli) newExportCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" {
				if _, isTerm := isTerminalWriter(c.out); isTerm {
					return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
			} else if err := validateOutputPath(output); err != nil {
				return fmt.Errorf("failed to export container: %w", err)
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			rc, err := api.ContainerExport(cmd.Context(), args[0], client.ContainerExportOptions{})
			if err != nil {
				return err
			}
			defer rc.Close()
			if output == "" {
				_, err := io.Copy(c.out, rc)
				return err
			}
			f, err := os.CreateTemp(dirOf(output), ".berth-export-*")
			if err != nil {
				return fmt.Errorf("failed to export container: %w", err)
			}
			defer os.Remove(f.Name())
			if _, err := io.Copy(f, rc); err != nil {
				f.Close()
				return fmt.Errorf("failed to export container: %w", err)
			}
			if err := f.Close(); err != nil {
				return err
			}
			return os.Rename(f.Name(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}
