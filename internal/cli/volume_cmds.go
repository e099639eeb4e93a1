package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// This file holds `berth volume` (create, ls, inspect, rm, prune) with
// docker's flags, output and exit codes.

const defaultVolumesFormat = "table {{.Driver}}\t{{.Name}}"

var volumeLsHeaders = map[string]string{
	"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
	"Labels": "LABELS", "Links": "LINKS", "Size": "SIZE", "Group": "GROUP", "Availability": "AVAILABILITY", "Status": "STATUS",
}

// More of docker's volume-context fields (Name, Driver, Links and Size
// are in system_df.go).
func (r volumeRow) Scope() string      { return r.v.Scope }
func (r volumeRow) Mountpoint() string { return r.v.Mountpoint }
func (r volumeRow) Labels() string {
	keys := make([]string, 0, len(r.v.Labels))
	for k := range r.v.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+r.v.Labels[k])
	}
	return strings.Join(parts, ",")
}
func (r volumeRow) Label(name string) string { return r.v.Labels[name] }
func (r volumeRow) Group() string            { return "N/A" }
func (r volumeRow) Availability() string     { return "N/A" }
func (r volumeRow) Status() string           { return "N/A" }

// volumeNoArgs is docker's volume ls/prune check ("Run ..." where other
// commands say "See ...").
func volumeNoArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	return argError(cmd, "accepts no arguments", "Run")
}

// volumeCreateArgs is docker's check, including its "SRun" typo, so
// that scripts matching docker's output match berth's.
func volumeCreateArgs(cmd *cobra.Command, args []string) error {
	if len(args) <= 1 {
		return nil
	}
	return argError(cmd, "requires at most 1 argument", "SRun")
}

func (c *Cli) newVolumeCommand() *cobra.Command {
	return managementCommand("volume", "Manage volumes",
		c.newVolumeCreateCommand(), withAlias(c.newVolumeLsCommand(), "ls", "list"),
		c.newVolumeInspectCommand(), withAlias(c.newVolumeRmCommand(), "rm", "remove"),
		c.newVolumePruneCommand(),
	)
}

func (c *Cli) newVolumeCreateCommand() *cobra.Command {
	var (
		driver, name string
		labels       listOpts
		opts         mapOpts
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  volumeCreateArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return StatusError{Status: "conflicting options: cannot specify a volume-name through both --name and as a positional arg", StatusCode: 1}
				}
				name = args[0]
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			lbls := map[string]string{}
			for _, l := range labels.values {
				k, v, _ := strings.Cut(l, "=")
				lbls[k] = v
			}
			res, err := api.VolumeCreate(cmd.Context(), client.VolumeCreateOptions{Name: name, Driver: driver, DriverOpts: opts.values, Labels: lbls})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.Volume.Name)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	fs.Var(&labels, "label", "Set metadata for a volume")
	fs.VarP(&opts, "opt", "o", "Set driver specific options")
	fs.StringVar(&name, "name", "", "Specify volume name")
	hideFlag(fs, "name")
	return cmd
}

func (c *Cli) newVolumeLsCommand() *cobra.Command {
	var (
		quiet   bool
		format  string
		filters filterOpts
	)
	cmd := &cobra.Command{
		Use:   "ls [OPTIONS]",
		Short: "List volumes",
		Args:  volumeNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: filters.f})
			if err != nil {
				return err
			}
			items := res.Items
			sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
			rows := make([]any, 0, len(items))
			for _, v := range items {
				rows = append(rows, volumeRow{v: v})
			}
			lf := listFormat{Format: format, Default: defaultVolumesFormat, Headers: volumeLsHeaders}
			if quiet {
				lf.Format = "{{.Name}}"
			}
			return lf.write(c.out, rows)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	fs.StringVar(&format, "format", "", formatHelp)
	fs.VarP(&filters, "filter", "f", "Provide filter values (e.g. \"dangling=true\")")
	return cmd
}

func (c *Cli) newVolumeInspectCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			return inspectEach(c.out, format, args, func(name string) (json.RawMessage, any, error) {
				res, err := api.VolumeInspect(cmd.Context(), name, client.VolumeInspectOptions{})
				return res.Raw, res.Volume, err
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	return cmd
}

func (c *Cli) newVolumeRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] VOLUME [VOLUME...]",
		Short: "Remove one or more volumes",
		Long:  "Remove one or more volumes. You cannot remove a volume that is in use by a container.",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			var errs []string
			for _, name := range args {
				if _, err := api.VolumeRemove(cmd.Context(), name, client.VolumeRemoveOptions{Force: force}); err != nil {
					errs = append(errs, err.Error())
					continue
				}
				fmt.Fprintln(c.out, name)
			}
			if len(errs) > 0 {
				return StatusError{Status: joinLines(errs), StatusCode: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func (c *Cli) newVolumePruneCommand() *cobra.Command {
	var (
		all, force bool
		filters    filterOpts
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  volumeNoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, ok := filters.f["all"]; ok && all {
				return StatusError{Status: `conflicting options: cannot specify both "--all" and "--filter all=1"`, StatusCode: 1}
			}
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
			if all {
				warning = "WARNING! This will remove all local volumes not used by at least one container."
			}
			if !force && !c.confirm(warning) {
				return nil
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.VolumePrune(cmd.Context(), client.VolumePruneOptions{All: all, Filters: filters.f})
			if err != nil {
				return err
			}
			if len(res.Report.VolumesDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Volumes:")
				for _, v := range res.Report.VolumesDeleted {
					fmt.Fprintln(c.out, v)
				}
				fmt.Fprintln(c.out)
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", units.HumanSize(float64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	fs.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fs.Var(&filters, "filter", `Provide filter values (e.g. "label=<label>")`)
	return cmd
}
