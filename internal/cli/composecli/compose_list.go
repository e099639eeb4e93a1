package composecli

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/compose"
)

// composePsRow is a container as `compose ps` shows it: docker's
// container fields plus Name, Service and Project.
type composePsRow struct {
	cli.ContainerRow
	s container.Summary
}

func (r composePsRow) MarshalJSON() ([]byte, error) { return cli.FieldsJSON(r) }
func (r composePsRow) Name() string                 { return compose.ContainerDisplayName(r.s) }
func (r composePsRow) Service() string              { return r.s.Labels[compose.LabelService] }
func (r composePsRow) Project() string              { return r.s.Labels[compose.LabelProject] }
func (r composePsRow) Health() string {
	if r.s.Health != nil {
		return string(r.s.Health.Status)
	}
	return ""
}
func (r composePsRow) ExitCode() int {
	if r.s.State != container.StateExited {
		return 0
	}
	// Status reads "Exited (N) ..."
	var n int
	if _, err := fmt.Sscanf(r.s.Status, "Exited (%d)", &n); err == nil {
		return n
	}
	return 0
}

var composePsHeaders = func() map[string]string {
	m := cli.ContainerHeaders()
	m["Name"] = "NAME"
	m["Service"] = "SERVICE"
	m["Project"] = "PROJECT"
	return m
}()

const composePsFormat = "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}"

func (c *cmds) newComposePsCommand(o *composeOptions) *cobra.Command {
	var (
		all, quiet, services, noTrunc, orphans bool
		format                                 string
		status, filter                         []string
	)
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS] [SERVICE...]",
		Short: "List containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.composeTarget(ctx, o, args)
			if err != nil {
				return err
			}
			for _, f := range filter {
				k, v, _ := strings.Cut(f, "=")
				if k != "status" {
					return fmt.Errorf("unsupported filter %q: only status is", k)
				}
				status = append(status, v)
			}
			// -a also lists one-off (run) containers, as Compose does.
			cs, err := e.ProjectContainers(ctx, p.Name, all || len(status) > 0, all, args...)
			if err != nil {
				return err
			}
			if !orphans && len(p.Services) > 0 {
				kept := cs[:0]
				for _, ctr := range cs {
					if _, ok := p.Services[ctr.Labels[compose.LabelService]]; ok {
						kept = append(kept, ctr)
					}
				}
				cs = kept
			}
			if len(status) > 0 {
				kept := cs[:0]
				for _, ctr := range cs {
					for _, st := range status {
						if string(ctr.State) == st {
							kept = append(kept, ctr)
							break
						}
					}
				}
				cs = kept
			}
			if services {
				seen := map[string]bool{}
				for _, ctr := range cs {
					s := ctr.Labels[compose.LabelService]
					if !seen[s] {
						seen[s] = true
						fmt.Fprintln(c.Out(), s)
					}
				}
				return nil
			}
			if quiet {
				for _, ctr := range cs {
					fmt.Fprintln(c.Out(), ctr.ID)
				}
				return nil
			}
			rows := make([]any, 0, len(cs))
			for _, ctr := range cs {
				rows = append(rows, composePsRow{cli.NewContainerRow(ctr, !noTrunc), ctr})
			}
			return cli.WriteList(c.Out(), format, composePsFormat, composePsHeaders, rows)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all stopped containers (including those created by the run command)")
	fs.StringArrayVar(&filter, "filter", nil, "Filter services by a property (supported filters: status).")
	fs.StringVar(&format, "format", "table", "Format output using a custom template:\n'table':            Print output in table format with column headers (default)\n'table TEMPLATE':   Print output in table format using the given Go template\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVar(&orphans, "orphans", true, "Include orphaned services (not declared by project)")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	fs.BoolVar(&services, "services", false, "Display services")
	fs.StringArrayVar(&status, "status", nil, "Filter services by status. Values: [paused | restarting | removing | running | dead | created | exited]")
	return cmd
}

func (c *cmds) newComposeLogsCommand(o *composeOptions) *cobra.Command {
	var (
		lo                   compose.LogOptions
		noColor, noLogPrefix bool
	)
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] [SERVICE...]",
		Short: "View output from containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.composeTarget(ctx, o, args)
			if err != nil {
				return err
			}
			lp := &compose.LogPrinter{Out: c.Out(), Color: !noColor && composeColorOutput(o, c.Out()), NoPrefix: noLogPrefix, Project: p.Name}
			ctx, stop := composeInterruptible(ctx)
			defer stop()
			return e.Logs(ctx, p, args, lo, lp)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&lo.Follow, "follow", "f", false, "Follow log output")
	fs.StringVarP(&lo.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs for each container")
	fs.BoolVarP(&lo.Timestamps, "timestamps", "t", false, "Show timestamps")
	fs.StringVar(&lo.Since, "since", "", `Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)`)
	fs.StringVar(&lo.Until, "until", "", `Show logs before a timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)`)
	fs.BoolVar(&noColor, "no-color", false, "Produce monochrome output")
	fs.BoolVar(&noLogPrefix, "no-log-prefix", false, "Don't print prefix in logs")
	fs.Int("index", 0, "index of the container if service has multiple replicas")
	return cmd
}

func (c *cmds) newComposeBuildCommand(o *composeOptions) *cobra.Command {
	var (
		noCache, pull, quiet, push bool
		buildArgs                  []string
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] [SERVICE...]",
		Short: "Build or rebuild services",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := c.composeLoad(ctx, o, args...)
			if err != nil {
				return err
			}
			e, err := c.composeEngine(o)
			if err != nil {
				return err
			}
			bo := compose.BuildOptions{Services: args, NoCache: noCache, Pull: pull, Quiet: quiet}
			if len(buildArgs) > 0 {
				bo.Args = map[string]*string{}
				for _, a := range buildArgs {
					k, v, ok := strings.Cut(a, "=")
					if ok {
						bo.Args[k] = &v
					} else if env, set := p.Environment[k]; set {
						bo.Args[k] = &env
					} else {
						bo.Args[k] = nil
					}
				}
			}
			if err := e.Build(ctx, p, bo); err != nil {
				return err
			}
			if push {
				return e.Push(ctx, p, args, quiet, false)
			}
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringArrayVar(&buildArgs, "build-arg", nil, "Set build-time variables for services")
	fs.BoolVar(&noCache, "no-cache", false, "Do not use cache when building the image")
	fs.BoolVar(&pull, "pull", false, "Always attempt to pull a newer version of the image")
	fs.BoolVar(&push, "push", false, "Push service images")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Don't print anything to STDOUT")
	return cmd
}

func (c *cmds) newComposePullCommand(o *composeOptions) *cobra.Command {
	var po compose.PullOptions
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] [SERVICE...]",
		Short: "Pull service images",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := c.composeLoad(ctx, o, args...)
			if err != nil {
				return err
			}
			if !po.IncludeDeps && len(args) > 0 {
				if p, err = p.WithSelectedServices(args, types.IgnoreDependencies); err != nil {
					return err
				}
			}
			e, err := c.composeEngine(o)
			if err != nil {
				return err
			}
			return e.Pull(ctx, p, nil, po)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&po.Quiet, "quiet", "q", false, "Pull without printing progress information")
	fs.BoolVar(&po.IgnoreFailures, "ignore-pull-failures", false, "Pull what it can and ignores images with pull failures")
	fs.BoolVar(&po.IgnoreBuildable, "ignore-buildable", false, "Ignore images that can be built")
	fs.BoolVar(&po.IncludeDeps, "include-deps", false, "Also pull services declared as dependencies")
	return cmd
}

func (c *cmds) newComposePushCommand(o *composeOptions) *cobra.Command {
	var quiet, ignoreFailures, includeDeps bool
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] [SERVICE...]",
		Short: "Push service images",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := c.composeLoad(ctx, o, args...)
			if err != nil {
				return err
			}
			if !includeDeps && len(args) > 0 {
				if p, err = p.WithSelectedServices(args, types.IgnoreDependencies); err != nil {
					return err
				}
			}
			e, err := c.composeEngine(o)
			if err != nil {
				return err
			}
			return e.Push(ctx, p, nil, quiet, ignoreFailures)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&quiet, "quiet", "q", false, "Push without printing progress information")
	fs.BoolVar(&ignoreFailures, "ignore-push-failures", false, "Push what it can and ignores images with push failures")
	fs.BoolVar(&includeDeps, "include-deps", false, "Also push images of services declared as dependencies")
	return cmd
}

func (c *cmds) newComposeConfigCommand(o *composeOptions) *cobra.Command {
	var (
		services, volumes, networks, images, profiles, quiet bool
		format, hash, output                                 string
		lo                                                   compose.LoadOptions
	)
	cmd := &cobra.Command{
		Use:     "config [OPTIONS] [SERVICE...]",
		Aliases: []string{"convert"},
		Short:   "Parse, resolve and render compose file in canonical format",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := c.composeLoadWith(ctx, o, lo, args...)
			if err != nil {
				return err
			}
			out := c.Out()
			switch {
			case quiet:
				return nil
			case services:
				for _, n := range p.ServiceNames() {
					fmt.Fprintln(out, n)
				}
				return nil
			case volumes:
				for _, n := range p.VolumeNames() {
					fmt.Fprintln(out, n)
				}
				return nil
			case networks:
				for _, n := range p.NetworkNames() {
					fmt.Fprintln(out, n)
				}
				return nil
			case images:
				for _, n := range p.ServiceNames() {
					fmt.Fprintln(out, compose.ImageName(p.Name, p.Services[n]))
				}
				return nil
			case profiles:
				set := map[string]bool{}
				for _, s := range p.AllServices() {
					for _, pr := range s.Profiles {
						set[pr] = true
					}
				}
				var list []string
				for pr := range set {
					list = append(list, pr)
				}
				sort.Strings(list)
				for _, pr := range list {
					fmt.Fprintln(out, pr)
				}
				return nil
			case hash != "":
				names := p.ServiceNames()
				if hash != "*" {
					names = strings.Split(hash, ",")
				}
				for _, n := range names {
					s, ok := p.Services[n]
					if !ok {
						return fmt.Errorf("no such service: %s", n)
					}
					h, err := compose.ServiceHash(s)
					if err != nil {
						return err
					}
					fmt.Fprintf(out, "%s %s\n", n, h)
				}
				return nil
			}
			var b []byte
			switch format {
			case "json":
				b, err = p.MarshalJSON()
			case "yaml", "":
				b, err = p.MarshalYAML()
			default:
				return fmt.Errorf("unsupported format %q", format)
			}
			if err != nil {
				return err
			}
			if output != "" {
				return os.WriteFile(output, b, 0o644)
			}
			_, err = out.Write(b)
			return err
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&format, "format", "yaml", "Format the output. Values: [yaml | json]")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only validate the configuration, don't print anything")
	fs.BoolVar(&services, "services", false, "Print the service names, one per line.")
	fs.BoolVar(&volumes, "volumes", false, "Print the volume names, one per line.")
	fs.BoolVar(&networks, "networks", false, "Print the network names, one per line.")
	fs.BoolVar(&images, "images", false, "Print the image names, one per line.")
	fs.BoolVar(&profiles, "profiles", false, "Print the profile names, one per line.")
	fs.StringVar(&hash, "hash", "", "Print the service config hash, one per line.")
	fs.StringVarP(&output, "output", "o", "", "Save to file (default to stdout)")
	fs.BoolVar(&lo.NoInterpolate, "no-interpolate", false, "Don't interpolate environment variables")
	fs.BoolVar(&lo.NoNormalize, "no-normalize", false, "Don't normalize compose model")
	fs.BoolVar(&lo.NoResolvePaths, "no-path-resolution", false, "Don't resolve file paths")
	fs.BoolVar(&lo.NoConsistency, "no-consistency", false, "Don't check model consistency - warning: may produce invalid Compose output")
	return cmd
}

func (c *cmds) newComposeTopCommand(o *composeOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "top [SERVICES...]",
		Short: "Display the running processes",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, e, err := c.composeTarget(ctx, o, nil)
			if err != nil {
				return err
			}
			cs, err := e.ProjectContainers(ctx, p.Name, false, false, args...)
			if err != nil {
				return err
			}
			api, _ := c.Client()
			for _, ctr := range cs {
				top, err := api.ContainerTop(ctx, ctr.ID, client.ContainerTopOptions{})
				if err != nil {
					return err
				}
				fmt.Fprintln(c.Out(), compose.ContainerDisplayName(ctr))
				tw := tabwriter.NewWriter(c.Out(), 5, 1, 3, ' ', 0)
				fmt.Fprintln(tw, strings.Join(top.Titles, "\t"))
				for _, proc := range top.Processes {
					fmt.Fprintln(tw, strings.Join(proc, "\t"))
				}
				_ = tw.Flush()
				fmt.Fprintln(c.Out())
			}
			return nil
		},
	}
}

func (c *cmds) newComposeImagesCommand(o *composeOptions) *cobra.Command {
	var (
		quiet  bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [SERVICE...]",
		Short: "List images used by the created containers",
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
			api, _ := c.Client()
			type row struct {
				ContainerName, Repository, Tag, ID string
				Size                               int64
			}
			var rows []row
			for _, ctr := range cs {
				img, err := api.ImageInspect(ctx, ctr.ImageID)
				if err != nil {
					continue
				}
				repo, tag := ctr.Image, "latest"
				if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
					repo, tag = repo[:i], repo[i+1:]
				}
				rows = append(rows, row{compose.ContainerDisplayName(ctr), repo, tag, img.ID, img.Size})
			}
			if quiet {
				seen := map[string]bool{}
				for _, r := range rows {
					if !seen[r.ID] {
						seen[r.ID] = true
						fmt.Fprintln(c.Out(), r.ID)
					}
				}
				return nil
			}
			if format == "json" {
				b, err := json.Marshal(rows)
				if err != nil {
					return err
				}
				fmt.Fprintln(c.Out(), string(b))
				return nil
			}
			tw := tabwriter.NewWriter(c.Out(), 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER\tREPOSITORY\tTAG\tIMAGE ID\tSIZE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.ContainerName, r.Repository, r.Tag, truncateID(r.ID), units.HumanSizeWithPrecision(float64(r.Size), 3))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Only display IDs")
	cmd.Flags().StringVar(&format, "format", "table", "Format the output. Values: [table | json]")
	return cmd
}

func (c *cmds) newComposePortCommand(o *composeOptions) *cobra.Command {
	var (
		index    int
		protocol string
	)
	cmd := &cobra.Command{
		Use:   "port [OPTIONS] SERVICE PRIVATE_PORT",
		Short: "Print the public port for a port binding",
		Args:  cli.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			port, err := strconv.ParseUint(args[1], 10, 16)
			if err != nil {
				return fmt.Errorf("invalid port %q", args[1])
			}
			p, e, err := c.composeTarget(ctx, o, nil)
			if err != nil {
				return err
			}
			ctr, err := e.ServiceContainer(ctx, p, args[0], index)
			if err != nil {
				return err
			}
			for _, pp := range ctr.Ports {
				if uint64(pp.PrivatePort) == port && pp.Type == protocol && pp.PublicPort != 0 {
					ip := "0.0.0.0"
					if pp.IP.IsValid() {
						ip = pp.IP.String()
					}
					fmt.Fprintf(c.Out(), "%s:%d\n", ip, pp.PublicPort)
					return nil
				}
			}
			return fmt.Errorf("no port %d/%s for container %s", port, protocol, compose.ContainerDisplayName(ctr))
		},
	}
	cmd.Flags().IntVar(&index, "index", 0, "Index of the container if service has multiple replicas")
	cmd.Flags().StringVar(&protocol, "protocol", "tcp", "tcp or udp")
	return cmd
}

func (c *cmds) newComposeEventsCommand(o *composeOptions) *cobra.Command {
	var asJSON bool
	var since, until string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS] [SERVICE...]",
		Short: "Receive real time events from containers",
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := c.composeProjectOrName(ctx, o)
			if err != nil {
				return err
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			want := map[string]bool{}
			for _, s := range args {
				want[s] = true
			}
			ctx, stop := composeInterruptible(ctx)
			defer stop()
			res := api.Events(ctx, client.EventsListOptions{Since: since, Until: until,
				Filters: make(client.Filters).Add("type", "container").Add("label", compose.LabelProject+"="+p.Name)})
			for {
				select {
				case m, ok := <-res.Messages:
					if !ok {
						return nil
					}
					svc := m.Actor.Attributes[compose.LabelService]
					if len(want) > 0 && !want[svc] {
						continue
					}
					ts := time.Unix(0, m.TimeNano)
					attrs := map[string]string{}
					var keys []string
					for k, v := range m.Actor.Attributes {
						if strings.HasPrefix(k, "com.docker.compose.") {
							continue
						}
						attrs[k] = v
						keys = append(keys, k)
					}
					if asJSON {
						b, _ := json.Marshal(map[string]any{"time": ts.Format(time.RFC3339Nano), "type": "container",
							"action": string(m.Action), "id": m.Actor.ID, "service": svc, "attributes": attrs})
						fmt.Fprintln(c.Out(), string(b))
						continue
					}
					sort.Strings(keys)
					var kv []string
					for _, k := range keys {
						kv = append(kv, k+"="+attrs[k])
					}
					fmt.Fprintf(c.Out(), "%s container %s %s (%s)\n", ts.Format("2006-01-02 15:04:05.000000"), m.Action, m.Actor.ID, strings.Join(kv, ", "))
				case err := <-res.Err:
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "Output events as a stream of json objects")
	cmd.Flags().StringVar(&since, "since", "", "Show all events created since timestamp")
	cmd.Flags().StringVar(&until, "until", "", "Stream events until this timestamp")
	return cmd
}

func (c *cmds) newComposeLsCommand(o *composeOptions) *cobra.Command {
	var (
		all, quiet bool
		format     string
		filter     []string
	)
	cmd := &cobra.Command{
		Use:   "ls [OPTIONS]",
		Short: "List running compose projects",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			e := &compose.Engine{API: api}
			projects, err := e.Projects(cmd.Context(), all)
			if err != nil {
				return err
			}
			for _, f := range filter {
				k, v, _ := strings.Cut(f, "=")
				if k != "name" {
					return fmt.Errorf("invalid filter %q", k)
				}
				kept := projects[:0]
				for _, pr := range projects {
					if strings.Contains(pr.Name, v) {
						kept = append(kept, pr)
					}
				}
				projects = kept
			}
			if quiet {
				for _, pr := range projects {
					fmt.Fprintln(c.Out(), pr.Name)
				}
				return nil
			}
			if format == "json" {
				type js struct {
					Name        string
					Status      string
					ConfigFiles string
				}
				list := make([]js, 0, len(projects))
				for _, pr := range projects {
					list = append(list, js{pr.Name, pr.Status, pr.ConfigFiles})
				}
				b, err := json.Marshal(list)
				if err != nil {
					return err
				}
				fmt.Fprintln(c.Out(), string(b))
				return nil
			}
			tw := tabwriter.NewWriter(c.Out(), 10, 1, 3, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATUS\tCONFIG FILES")
			for _, pr := range projects {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", pr.Name, pr.Status, pr.ConfigFiles)
			}
			return tw.Flush()
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all stopped Compose projects")
	fs.StringArrayVar(&filter, "filter", nil, "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "table", "Format the output. Values: [table | json]")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display project names")
	return cmd
}

func (c *cmds) newComposeVersionCommand() *cobra.Command {
	var (
		short  bool
		format string
	)
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth compose version information",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := composeVersion()
			switch {
			case short:
				fmt.Fprintln(c.Out(), v)
			case format == "json":
				fmt.Fprintf(c.Out(), "{\"version\":%q}\n", "v"+v)
			default:
				fmt.Fprintln(c.Out(), "berth compose version v"+v)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&short, "short", false, "Shows only Compose's version number")
	cmd.Flags().StringVarP(&format, "format", "f", "pretty", "Format the output. Values: [pretty | json]")
	return cmd
}
