package composecli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	cgerrdefs "github.com/compose-spec/compose-go/v2/errdefs"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/compose"
)

// composeOptions are the global options of `berth compose`, given before
// the subcommand as with `docker compose`.
type composeOptions struct {
	files      []string
	project    string
	projectDir string
	envFiles   []string
	profiles   []string
	ansi       string
	progress   string
	parallel   int
	dryRun     bool
	compat     bool
}

func (c *cmds) newComposeCommand() *cobra.Command {
	o := &composeOptions{}
	cmd := &cobra.Command{
		Use:   "compose [OPTIONS] COMMAND",
		Short: "Define and run multi-container applications",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	// Global options are the compose command's own flags, parsed before
	// the subcommand (the root traverses children): -f and -p do not
	// clash with logs -f and run -p.
	fs := cmd.Flags()
	fs.StringArrayVarP(&o.files, "file", "f", nil, "Compose configuration files")
	fs.StringVarP(&o.project, "project-name", "p", "", "Project name")
	fs.StringVar(&o.projectDir, "project-directory", "", "Specify an alternate working directory\n(default: the path of the, first specified, Compose file)")
	fs.StringArrayVar(&o.envFiles, "env-file", nil, "Specify an alternate environment file")
	fs.StringArrayVar(&o.profiles, "profile", nil, "Specify a profile to enable")
	fs.StringVar(&o.ansi, "ansi", "auto", `Control when to print ANSI control characters ("never"|"always"|"auto")`)
	fs.StringVar(&o.progress, "progress", "auto", `Set type of progress output (auto, tty, plain, json, quiet)`)
	fs.IntVar(&o.parallel, "parallel", -1, "Control max parallelism, -1 for unlimited")
	fs.BoolVar(&o.dryRun, "dry-run", false, "Execute command in dry run mode")
	fs.BoolVar(&o.compat, "compatibility", false, "Run compose in backward compatibility mode")
	cmd.AddCommand(
		c.newComposeUpCommand(o), c.newComposeDownCommand(o), c.newComposePsCommand(o),
		c.newComposeLogsCommand(o), c.newComposeBuildCommand(o), c.newComposePullCommand(o),
		c.newComposePushCommand(o), c.newComposeConfigCommand(o), c.newComposeExecCommand(o),
		c.newComposeRunCommand(o), c.newComposeCreateCommand(o),
		c.newComposeLifecycleCommand(o, "start", "Start services"),
		c.newComposeLifecycleCommand(o, "stop", "Stop services"),
		c.newComposeLifecycleCommand(o, "restart", "Restart service containers"),
		c.newComposeLifecycleCommand(o, "pause", "Pause services"),
		c.newComposeLifecycleCommand(o, "unpause", "Unpause services"),
		c.newComposeKillCommand(o), c.newComposeRmCommand(o), c.newComposeTopCommand(o),
		c.newComposeImagesCommand(o), c.newComposePortCommand(o), c.newComposeEventsCommand(o),
		c.newComposeCpCommand(o), c.newComposeLsCommand(o), c.newComposeVersionCommand(),
		c.newComposeScaleCommand(o), c.newComposeWaitCommand(o),
	)
	return cmd
}

// composeVersion is what `berth compose version` reports and what the
// com.docker.compose.version label records.
func composeVersion() string { return cli.Version }

// engine builds the compose engine on the CLI's API client; progress
// lines go to stderr, as Docker Compose prints them.
func (c *cmds) composeEngine(o *composeOptions) (*compose.Engine, error) {
	if o.dryRun {
		return nil, errors.New("--dry-run is not supported by berth compose")
	}
	api, err := c.Client()
	if err != nil {
		return nil, err
	}
	e := &compose.Engine{API: api, Version: composeVersion(), RegistryAuth: c.EncodedAuth, MaxConcurrency: o.parallel}
	if v, err := strconv.Atoi(os.Getenv("COMPOSE_PARALLEL_LIMIT")); err == nil && o.parallel < 0 {
		e.MaxConcurrency = v
	}
	if o.progress != "quiet" {
		e.Progress = c.Err()
	}
	return e, nil
}

// load reads the project, restricted to services (and what they depend
// on) when given.
func (c *cmds) composeLoad(ctx context.Context, o *composeOptions, services ...string) (*types.Project, error) {
	return compose.Load(ctx, compose.LoadOptions{
		ConfigPaths: o.files, ProjectName: o.project, WorkingDir: o.projectDir,
		EnvFiles: o.envFiles, Profiles: o.profiles, Services: services, Version: composeVersion(),
	})
}

// composeLoadWith loads with extra options (config's --no-* flags).
func (c *cmds) composeLoadWith(ctx context.Context, o *composeOptions, lo compose.LoadOptions, services ...string) (*types.Project, error) {
	lo.ConfigPaths, lo.ProjectName, lo.WorkingDir = o.files, o.project, o.projectDir
	lo.EnvFiles, lo.Profiles, lo.Services, lo.Version = o.envFiles, o.profiles, services, composeVersion()
	return compose.Load(ctx, lo)
}

// composeProjectOrName loads the project, or, for commands that work on
// what the engine has (down, ps, logs, ...), falls back to an empty
// project named by -p or COMPOSE_PROJECT_NAME when there is no compose
// file.
// composeTarget is what most compose commands start with: the project
// (loaded, or only its name when no file is found), every named service
// checked against it, and the engine.
func (c *cmds) composeTarget(ctx context.Context, o *composeOptions, services []string) (*types.Project, *compose.Engine, error) {
	p, err := c.composeProjectOrName(ctx, o)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range services {
		if _, ok := p.Services[s]; !ok && len(p.Services) > 0 {
			return nil, nil, fmt.Errorf("no such service: %s", s)
		}
	}
	e, err := c.composeEngine(o)
	if err != nil {
		return nil, nil, err
	}
	return p, e, nil
}

func (c *cmds) composeProjectOrName(ctx context.Context, o *composeOptions, services ...string) (*types.Project, error) {
	p, err := c.composeLoad(ctx, o, services...)
	if err == nil {
		return p, nil
	}
	name := o.project
	if name == "" {
		name = os.Getenv("COMPOSE_PROJECT_NAME")
	}
	if name != "" && errors.Is(err, cgerrdefs.ErrNotFound) {
		return &types.Project{Name: name, Services: types.Services{}}, nil
	}
	return nil, err
}

// composeColorOutput reports whether output to w gets ANSI colours (--ansi).
func composeColorOutput(o *composeOptions, w io.Writer) bool {
	switch o.ansi {
	case "never":
		return false
	case "always":
		return true
	}
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	tty := isTerminal(w)
	return tty
}

// composeInterruptible returns a context cancelled on the first SIGINT/SIGTERM.
func composeInterruptible(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		select {
		case <-ch:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// composeTimeoutFlag returns -t's value as a pointer, nil when not given.
func composeTimeoutFlag(cmd *cobra.Command, name string, v int) *int {
	if cmd.Flags().Changed(name) {
		return &v
	}
	return nil
}

// composeParseScale parses --scale SERVICE=NUM values.
func composeParseScale(p *types.Project, specs []string) error {
	for _, spec := range specs {
		name, num, ok := strings.Cut(spec, "=")
		var n int
		if _, err := fmt.Sscanf(num, "%d", &n); !ok || err != nil || n < 0 {
			return fmt.Errorf("invalid --scale value %q: expected SERVICE=NUM", spec)
		}
		s, ok := p.Services[name]
		if !ok {
			return fmt.Errorf("no such service: %s", name)
		}
		s.SetScale(n)
		p.Services[name] = s
	}
	return nil
}
