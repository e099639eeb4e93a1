package cli

import (
	"bytes"
	"fmt"
	"github.com/docker/go-units"
	"runtime"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (c *Cli) newSystemCommand() *cobra.Command {
	return managementCommand("system", "Manage berth",
		c.newDfCommand(), c.newInfoCommand(), c.newSystemPruneCommand(), c.newEventsCommand(),
	)
}

// infoData is what "info --format" templates see: the server's fields at
// the top level, plus ClientInfo.
type infoData struct {
	ClientInfo   clientInfo
	ServerErrors []string `json:",omitempty"`
	*system.Info
}

type clientInfo struct {
	Debug     bool
	Context   string
	Version   string
	GoVersion string
	Os, Arch  string
}

func (c *Cli) contextName() string {
	if c.contextArg != "" {
		return c.contextArg
	}
	return "default"
}

func (c *Cli) newInfoCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			data := infoData{ClientInfo: clientInfo{
				Debug: c.debug, Context: c.contextName(), Version: Version,
				GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH,
			}}
			api, err := c.Client()
			if err == nil {
				var res client.SystemInfoResult
				res, err = api.Info(cmd.Context(), client.InfoOptions{})
				if err == nil {
					data.Info = &res.Info
				}
			}
			if err != nil {
				data.ServerErrors = append(data.ServerErrors, err.Error())
			}
			if format != "" {
				if format == "json" {
					format = "{{json .}}"
				}
				tmpl, terr := parseTemplate(format)
				if terr != nil {
					return terr
				}
				if data.Info == nil {
					data.Info = &system.Info{}
				}
				buf := &bytes.Buffer{}
				if terr := tmpl.Execute(buf, data); terr != nil {
					return fmt.Errorf("template: %w", terr)
				}
				fmt.Fprintln(c.out, buf.String())
				if err != nil {
					return err
				}
				return nil
			}
			c.printInfo(data)
			if err != nil {
				return StatusError{Status: "", StatusCode: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	return cmd
}

// printInfo prints "info" in docker's layout: the client section, then the
// server's fields in docker's order, optional ones only when set.
func (c *Cli) printInfo(d infoData) {
	w := c.out
	line := func(label string, v any) { fmt.Fprintln(w, label, v) }
	nonEmpty := func(label, v string) {
		if v != "" {
			fmt.Fprintln(w, label, v)
		}
	}
	fmt.Fprintln(w, "Client:")
	nonEmpty(" Version:   ", d.ClientInfo.Version)
	line(" Context:   ", d.ClientInfo.Context)
	line(" Debug Mode:", d.ClientInfo.Debug)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Server:")
	if d.Info == nil {
		for _, e := range d.ServerErrors {
			fmt.Fprintln(c.err, "ERROR:", e)
		}
		return
	}
	i := d.Info
	line(" Containers:", i.Containers)
	line("  Running:", i.ContainersRunning)
	line("  Paused:", i.ContainersPaused)
	line("  Stopped:", i.ContainersStopped)
	line(" Images:", i.Images)
	nonEmpty(" Server Version:", i.ServerVersion)
	nonEmpty(" Storage Driver:", i.Driver)
	for _, kv := range i.DriverStatus {
		fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
	}
	for _, kv := range i.SystemStatus {
		fmt.Fprintf(w, " %s: %s\n", kv[0], kv[1])
	}
	nonEmpty(" Logging Driver:", i.LoggingDriver)
	nonEmpty(" Cgroup Driver:", i.CgroupDriver)
	nonEmpty(" Cgroup Version:", i.CgroupVersion)
	fmt.Fprintln(w, " Plugins:")
	line("  Volume:", strings.Join(i.Plugins.Volume, " "))
	line("  Network:", strings.Join(i.Plugins.Network, " "))
	if len(i.Plugins.Authorization) != 0 {
		line("  Authorization:", strings.Join(i.Plugins.Authorization, " "))
	}
	line("  Log:", strings.Join(i.Plugins.Log, " "))
	if len(i.CDISpecDirs) > 0 {
		fmt.Fprintln(w, " CDI spec directories:")
		for _, dir := range i.CDISpecDirs {
			fmt.Fprintf(w, "  %s\n", dir)
		}
	}
	line(" Swarm:", i.Swarm.LocalNodeState)
	if len(i.Runtimes) > 0 {
		names := make([]string, 0, len(i.Runtimes))
		for name := range i.Runtimes {
			names = append(names, name)
		}
		sort.Strings(names)
		line(" Runtimes:", strings.Join(names, " "))
		line(" Default Runtime:", i.DefaultRuntime)
	}
	if i.OSType == "linux" {
		line(" Init Binary:", i.InitBinary)
		line(" containerd version:", i.ContainerdCommit.ID)
		line(" runc version:", i.RuncCommit.ID)
		line(" init version:", i.InitCommit.ID)
		if len(i.SecurityOptions) > 0 {
			fmt.Fprintln(w, " Security Options:")
			for _, opt := range i.SecurityOptions {
				name, profile := securityOption(opt)
				fmt.Fprintln(w, "  "+name)
				if profile != "" {
					line("   Profile:", profile)
				}
			}
		}
	}
	nonEmpty(" Kernel Version:", i.KernelVersion)
	nonEmpty(" Operating System:", i.OperatingSystem)
	nonEmpty(" OSType:", i.OSType)
	nonEmpty(" Architecture:", i.Architecture)
	line(" CPUs:", i.NCPU)
	line(" Total Memory:", units.BytesSize(float64(i.MemTotal)))
	nonEmpty(" Name:", i.Name)
	nonEmpty(" ID:", i.ID)
	line(" Docker Root Dir:", i.DockerRootDir)
	line(" Debug Mode:", i.Debug)
	if i.Debug || c.debug {
		line("  File Descriptors:", i.NFd)
		line("  Goroutines:", i.NGoroutines)
		line("  System Time:", i.SystemTime)
		line("  EventsListeners:", i.NEventsListener)
	}
	nonEmpty(" HTTP Proxy:", i.HTTPProxy)
	nonEmpty(" HTTPS Proxy:", i.HTTPSProxy)
	nonEmpty(" No Proxy:", i.NoProxy)
	if len(i.Labels) > 0 {
		fmt.Fprintln(w, " Labels:")
		for _, l := range i.Labels {
			fmt.Fprintln(w, "  "+l)
		}
	}
	line(" Experimental:", i.ExperimentalBuild)
	if rc := i.RegistryConfig; rc != nil && (len(rc.InsecureRegistryCIDRs) > 0 || len(rc.IndexConfigs) > 0) {
		fmt.Fprintln(w, " Insecure Registries:")
		for _, ic := range rc.IndexConfigs {
			if !ic.Secure {
				fmt.Fprintln(w, "  "+ic.Name)
			}
		}
		for _, cidr := range rc.InsecureRegistryCIDRs {
			fmt.Fprintf(w, "  %s\n", cidr)
		}
	}
	if rc := i.RegistryConfig; rc != nil && len(rc.Mirrors) > 0 {
		fmt.Fprintln(w, " Registry Mirrors:")
		for _, m := range rc.Mirrors {
			fmt.Fprintln(w, "  "+m)
		}
	}
	line(" Live Restore Enabled:", i.LiveRestoreEnabled)
	fmt.Fprintln(w)
	for _, warn := range i.Warnings {
		fmt.Fprintln(c.err, warn)
	}
}

// securityOption splits "name=seccomp,profile=builtin" into the name and
// the profile.
func securityOption(opt string) (name, profile string) {
	for _, kv := range strings.Split(opt, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "name":
			name = v
		case "profile":
			profile = v
		}
	}
	if name == "" {
		name = opt
	}
	return name, profile
}

// versionData is what "version --format" templates see.
type versionData struct {
	Client versionClient
	Server *client.ServerVersionResult
}

type versionClient struct {
	Platform          struct{ Name string }
	Version           string
	APIVersion        string `json:"ApiVersion"`
	DefaultAPIVersion string `json:"DefaultAPIVersion,omitempty"`
	GoVersion         string
	GitCommit         string
	BuildTime         string `json:",omitempty"`
	Os                string
	Arch              string
	Context           string
}

const versionTemplate = `Client:{{if .Client.Platform.Name}} {{.Client.Platform.Name}}{{end}}
 Version:           {{.Client.Version}}
 API version:       {{.Client.APIVersion}}{{if ne .Client.APIVersion .Client.DefaultAPIVersion}} (downgraded from {{.Client.DefaultAPIVersion}}){{end}}
 Go version:        {{.Client.GoVersion}}
 OS/Arch:           {{.Client.Os}}/{{.Client.Arch}}
 Context:           {{.Client.Context}}
{{- if .Server}}

Server:{{if .Server.Platform.Name}} {{.Server.Platform.Name}}{{end}}
{{- range $component := .Server.Components}}
 {{$component.Name}}:
  {{- if eq $component.Name "Engine" }}
  Version:          {{.Version}}
  API version:      {{index .Details "ApiVersion"}} (minimum version {{index .Details "MinAPIVersion"}})
  Go version:       {{index .Details "GoVersion"}}
  Git commit:       {{index .Details "GitCommit"}}
  Built:            {{index .Details "BuildTime"}}
  OS/Arch:          {{index .Details "Os"}}/{{index .Details "Arch"}}
  Experimental:     {{index .Details "Experimental"}}
  {{- else }}
  Version:          {{$component.Version}}
  {{- range $key, $value := $component.Details}}
  {{$key}}:{{printf "%*s" (padding $key) ""}}{{$value}}
  {{- end}}
  {{- end}}
{{- end}}
{{- end}}`

func (c *Cli) newVersionCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := versionData{Client: versionClient{
				Version: Version, APIVersion: client.MaxAPIVersion, DefaultAPIVersion: client.MaxAPIVersion,
				GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH, Context: c.contextName(),
			}}
			v.Client.Platform.Name = "berth"
			api, err := c.Client()
			if err == nil {
				var sv client.ServerVersionResult
				sv, err = api.ServerVersion(cmd.Context(), client.ServerVersionOptions{})
				if err == nil {
					v.Server = &sv
					v.Client.APIVersion = api.ClientVersion()
				}
			}
			tmplText := versionTemplate
			switch format {
			case "":
			case "json":
				tmplText = "{{json .}}"
			default:
				tmplText = format
			}
			funcs := map[string]any{"padding": func(k string) int { return max(1, 17-len(k)) }}
			tmpl, terr := parseTemplate("")
			if terr != nil {
				return terr
			}
			tmpl, terr = tmpl.Funcs(funcs).Parse(tmplText)
			if terr != nil {
				return fmt.Errorf("template parsing error: %w", terr)
			}
			buf := &bytes.Buffer{}
			tw := tabwriter.NewWriter(buf, 20, 1, 1, ' ', 0)
			if terr := tmpl.Execute(tw, v); terr != nil && err == nil {
				return fmt.Errorf("template: %w", terr)
			}
			tw.Flush()
			fmt.Fprintln(c.out, buf.String())
			return err
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", inspectFormatHelp)
	return cmd
}

var dfHeaders = map[string]string{
	"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE",
}

const defaultDfFormat = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"

type dfRow struct {
	typ                       string
	total, active, size, recl int64
	percent                   bool
}

func (r dfRow) MarshalJSON() ([]byte, error) { return fieldsJSON(r) }
func (r dfRow) Type() string                 { return r.typ }
func (r dfRow) TotalCount() string           { return fmt.Sprint(r.total) }
func (r dfRow) Active() string               { return fmt.Sprint(r.active) }
func (r dfRow) Size() string                 { return units.HumanSize(float64(r.size)) }
func (r dfRow) Reclaimable() string {
	s := units.HumanSize(float64(r.recl))
	// docker shows the share only when there is something to share.
	if r.percent && r.size > 0 {
		s += fmt.Sprintf(" (%d%%)", r.recl*100/r.size)
	}
	return s
}

func (c *Cli) newDfCommand() *cobra.Command {
	var (
		format  string
		verbose bool
	)
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show berth disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			du, err := api.DiskUsage(cmd.Context(), client.DiskUsageOptions{
				Containers: true, Images: true, BuildCache: true, Volumes: true, Verbose: verbose,
			})
			if err != nil {
				return err
			}
			if verbose && (format == "" || format == "table") {
				return writeDiskUsageVerbose(c.out, du)
			}
			rows := []any{
				dfRow{typ: "Images", total: du.Images.TotalCount, active: du.Images.ActiveCount, size: du.Images.TotalSize, recl: du.Images.Reclaimable, percent: true},
				dfRow{typ: "Containers", total: du.Containers.TotalCount, active: du.Containers.ActiveCount, size: du.Containers.TotalSize, recl: du.Containers.Reclaimable, percent: true},
				dfRow{typ: "Local Volumes", total: du.Volumes.TotalCount, active: du.Volumes.ActiveCount, size: du.Volumes.TotalSize, recl: du.Volumes.Reclaimable, percent: true},
				dfRow{typ: "Build Cache", total: du.BuildCache.TotalCount, active: du.BuildCache.ActiveCount, size: du.BuildCache.TotalSize, recl: du.BuildCache.Reclaimable},
			}
			return listFormat{Format: format, Default: defaultDfFormat, Headers: dfHeaders}.write(c.out, rows)
		},
	}
	cmd.Flags().StringVar(&format, "format", "", formatHelp)
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	return cmd
}

func (c *Cli) newSystemPruneCommand() *cobra.Command {
	var (
		all, force, volumes bool
		filters             filterOpts
	)
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			items := []string{"all stopped containers", "all networks not used by at least one container"}
			if volumes {
				items = append(items, "all anonymous volumes not used by at least one container")
			}
			if all {
				items = append(items, "all images without at least one container associated to them", "all build cache")
			} else {
				items = append(items, "all dangling images", "unused build cache")
			}
			warning := "WARNING! This will remove:\n  - " + strings.Join(items, "\n  - ") + "\n"
			if !force && !c.confirm(warning) {
				return nil
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var total uint64
			cr, err := api.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: filters.f})
			if err != nil {
				return err
			}
			total += cr.Report.SpaceReclaimed
			if len(cr.Report.ContainersDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Containers:")
				for _, id := range cr.Report.ContainersDeleted {
					fmt.Fprintln(c.out, id)
				}
				fmt.Fprintln(c.out)
			}
			nr, err := api.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: filters.f})
			if err != nil {
				return err
			}
			if len(nr.Report.NetworksDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted Networks:")
				for _, n := range nr.Report.NetworksDeleted {
					fmt.Fprintln(c.out, n)
				}
				fmt.Fprintln(c.out)
			}
			if volumes {
				vr, err := api.VolumePrune(ctx, client.VolumePruneOptions{Filters: filters.f})
				if err != nil {
					return err
				}
				total += vr.Report.SpaceReclaimed
				if len(vr.Report.VolumesDeleted) > 0 {
					fmt.Fprintln(c.out, "Deleted Volumes:")
					for _, v := range vr.Report.VolumesDeleted {
						fmt.Fprintln(c.out, v)
					}
					fmt.Fprintln(c.out)
				}
			}
			reclaimed, out, err := c.pruneImages(ctx, all, filters.f)
			if err != nil {
				return err
			}
			total += reclaimed
			fmt.Fprint(c.out, out)
			br, err := api.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: all, Filters: filters.f})
			if err == nil {
				total += br.Report.SpaceReclaimed
				if len(br.Report.CachesDeleted) > 0 {
					fmt.Fprintln(c.out, "Deleted build cache objects:")
					for _, id := range br.Report.CachesDeleted {
						fmt.Fprintln(c.out, id)
					}
					fmt.Fprintln(c.out)
				}
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", units.HumanSize(float64(total)))
			return nil
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Remove all unused images not just dangling ones")
	fs.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fs.BoolVar(&volumes, "volumes", false, "Prune anonymous volumes")
	fs.Var(&filters, "filter", `Provide filter values (e.g. "label=<key>=<value>")`)
	return cmd
}
