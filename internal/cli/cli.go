package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// Version is the version of the berth CLI reported by "berth version".
var Version = "0.1.0-dev"

// StatusError carries the exit status of a command. Status, when set, is
// printed on stderr by Main; StatusCode is the process exit code.
type StatusError struct {
	Status     string
	StatusCode int
}

func (e StatusError) Error() string {
	if e.Status == "" {
		return fmt.Sprintf("exit status %d", e.StatusCode)
	}
	return e.Status
}

// Cli holds the streams, global options and the (lazily built) API client
// shared by all commands of one invocation.
type Cli struct {
	in       io.Reader
	out, err io.Writer

	hosts      []string
	contextArg string
	configDir  string
	logLevel   string
	debug      bool
	tls        tlsOptions

	// args are (a copy of) the arguments Main was given, which
	// `berth compose` passes on to berth-compose.
	args []string

	api *client.Client
	// config is config.json as read once for the commands that only read
	// it (readConfig).
	config *configFile
	// early is the client being prepared while the command line is
	// parsed (startup.go), nil once taken or when there is none.
	early *earlyClient
	// assumedVersion is set while api is the early client of run or
	// create, which sends the client's own API version without asking
	// the daemon first (startup.go: renegotiate).
	assumedVersion bool
	// pre holds connections dialed ahead for the early client of run and
	// create that no request took yet (startup.go).
	pre *predialed
	// headers are extra request headers (set by a command before it
	// asks for the client: build's secrets).
	headers map[string]string
}

// Main runs the berth CLI with args (without the program name) and returns
// the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// A copy: cobra rewrites the slice it parses (completion requests).
	c := &Cli{in: stdin, out: stdout, err: stderr, args: append([]string(nil), args...)}
	defer c.close()
	oneProc(args)
	c.startEarlyClient(args)
	return c.execute(c.newRootCommandFor(args), args)
}

// execute runs root with args on the invocation's streams and returns the
// exit code.
func (c *Cli) execute(root *cobra.Command, args []string) int {
	root.SetArgs(args)
	root.SetIn(c.in)
	root.SetOut(c.out)
	root.SetErr(c.err)
	return exitStatus(c.err, root.Execute())
}

// exitStatus maps an error to the exit code and prints its message: the one
// place where errors become exit statuses.
func exitStatus(stderr io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var se StatusError
	if errors.As(err, &se) {
		if se.Status != "" {
			fmt.Fprintln(stderr, se.Status)
		}
		if se.StatusCode == 0 {
			return 1
		}
		return se.StatusCode
	}
	fmt.Fprintln(stderr, err)
	return 1
}

func (c *Cli) close() {
	c.stopEarlyClient()
	if c.api != nil {
		_ = c.api.Close()
	}
	c.pre.close()
}

// Client returns the Engine API client for the selected endpoint.
func (c *Cli) Client() (*client.Client, error) {
	if c.api != nil {
		return c.api, nil
	}
	if api, ok := c.takeEarlyClient(); ok {
		c.api = api
		return api, nil
	}
	host, err := c.resolveHost()
	if err != nil {
		return nil, err
	}
	opts, err := c.tls.clientOpts(c.configDir)
	if err != nil {
		return nil, err
	}
	api, err := newAPIClient(host, opts, c.headers)
	if err != nil {
		return nil, err
	}
	c.api = api
	return api, nil
}

// newAPIClient builds the client for host with opts (TLS) and extra
// request headers.
func newAPIClient(host string, opts []client.Opt, headers map[string]string, late ...client.Opt) (*client.Client, error) {
	// DOCKER_API_VERSION pins the API version, as with docker; otherwise
	// the client negotiates it with the daemon.
	opts = append(opts, client.WithHost(host), client.WithUserAgent("berth-cli/"+Version), client.WithAPIVersionFromEnv(),
		client.WithHTTPResponseHook(noteExtensions))
	if len(headers) > 0 {
		opts = append(opts, client.WithHTTPHeaders(headers))
	}
	// After WithHost, which sets the transport's dialer.
	opts = append(opts, late...)
	return client.New(opts...)
}

// newBareRootCommand is the root command with berth's global options and
// no subcommands (berth-compose adds only compose to it).
func (c *Cli) newBareRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:              "berth [OPTIONS] COMMAND [ARG...]",
		Short:            "A self-sufficient runtime for containers",
		SilenceUsage:     true,
		SilenceErrors:    true,
		TraverseChildren: true,
		Args:             noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
		Version: Version,
		CompletionOptions: cobra.CompletionOptions{
			DisableDefaultCmd: true,
		},
	}
	root.SetVersionTemplate("berth version {{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.SetHelpTemplate("{{.UsageString}}")
	root.SetFlagErrorFunc(flagErrorFunc)
	root.SetContext(context.Background())
	// Global options precede the command (docker parses them on the root
	// only), so their shorthands do not clash with run's -h, -c and -l.
	fl := root.Flags()
	fl.StringSliceVarP(&c.hosts, "host", "H", nil, "Daemon socket to connect to")
	fl.StringVarP(&c.contextArg, "context", "c", "", `Name of the context to use to connect to the daemon (overrides DOCKER_HOST env var and default context set with "docker context use")`)
	fl.StringVar(&c.configDir, "config", defaultConfigDir(), "Location of client config files")
	fl.BoolVarP(&c.debug, "debug", "D", false, "Enable debug mode")
	fl.StringVarP(&c.logLevel, "log-level", "l", "info", `Set the logging level ("debug", "info", "warn", "error", "fatal")`)
	c.tls.addFlags(fl)
	fl.BoolP("version", "v", false, "Print version information and quit")
	return root
}

func (c *Cli) newRootCommand() *cobra.Command {
	root := c.newBareRootCommand()
	for _, tc := range topCommands {
		root.AddCommand(tc.build(c))
	}
	setFlagErrorFunc(root)
	c.addCompletions(root)
	return root
}

// setFlagErrorFunc prepares every command the way docker does: flag errors
// exit 125, "--help" has no -h shorthand (run uses -h for --hostname) and
// the usage line does not end in "[flags]".
func setFlagErrorFunc(cmd *cobra.Command) {
	cmd.SetFlagErrorFunc(flagErrorFunc)
	cmd.DisableFlagsInUseLine = true
	if cmd.HasParent() && cmd.Flags().Lookup("help") == nil {
		cmd.Flags().Bool("help", false, "Print usage")
	}
	for _, sub := range cmd.Commands() {
		setFlagErrorFunc(sub)
	}
}

// flagErrorFunc turns flag parsing errors into docker's message and status 125.
func flagErrorFunc(cmd *cobra.Command, err error) error {
	if err == nil {
		return nil
	}
	usage := ""
	if cmd.Runnable() {
		usage = "\n\nUsage:  " + cmd.UseLine()
	}
	return StatusError{
		Status:     fmt.Sprintf("%s%s\n\nRun '%s --help' for more information", err, usage, cmd.CommandPath()),
		StatusCode: 125,
	}
}

// Argument validators with docker's messages.

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return fmt.Errorf("%s: unknown command: %s %s\n\nRun '%s --help' for more information",
			rootName(cmd), cmd.CommandPath(), args[0], cmd.CommandPath())
	}
	return argError(cmd, "accepts no arguments", "See")
}

func rootName(cmd *cobra.Command) string { return cmd.Root().Name() }

func argError(cmd *cobra.Command, what, verb string) error {
	return fmt.Errorf("%s: '%s' %s\n\nUsage:  %s\n\n%s '%s --help' for more information",
		rootName(cmd), cmd.CommandPath(), what, cmd.UseLine(), verb, cmd.CommandPath())
}

func plural(n int) string {
	if n == 1 {
		return "argument"
	}
	return "arguments"
}

func requiresMinArgs(min int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min {
			return nil
		}
		return argError(cmd, fmt.Sprintf("requires at least %d %s", min, plural(min)), "See")
	}
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == n {
			return nil
		}
		return argError(cmd, fmt.Sprintf("requires %d %s", n, plural(n)), "Run")
	}
}

func requiresMaxArgs(max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) <= max {
			return nil
		}
		return argError(cmd, fmt.Sprintf("requires at most %d %s", max, plural(max)), "See")
	}
}

func requiresRangeArgs(min, max int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) >= min && len(args) <= max {
			return nil
		}
		return argError(cmd, fmt.Sprintf("requires at least %d and at most %d %s", min, max, plural(max)), "See")
	}
}

// managementCommand builds a command group such as "berth container".
func managementCommand(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{
		Use:   use + " COMMAND",
		Short: short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.SetOut(cmd.OutOrStdout())
			return cmd.Help()
		},
	}
	cmd.AddCommand(subs...)
	return cmd
}

// withAlias returns cmd with its name replaced by use (keeping the rest of the
// Use line) and the given aliases, for "container ls"/"ps" style pairs.
func withAlias(cmd *cobra.Command, name string, aliases ...string) *cobra.Command {
	_, rest, _ := strings.Cut(cmd.Use, " ")
	cmd.Use = strings.TrimSpace(name + " " + rest)
	cmd.Aliases = aliases
	return cmd
}

// isTerminalWriter reports whether w is a terminal, with its descriptor.
func isTerminalWriter(w io.Writer) (uintptr, bool) {
	if f, ok := w.(*os.File); ok {
		return f.Fd(), isTerminalFd(f.Fd())
	}
	return 0, false
}

// isTerminalReader reports whether r is a terminal, with its descriptor.
func isTerminalReader(r io.Reader) (uintptr, bool) {
	if f, ok := r.(*os.File); ok {
		return f.Fd(), isTerminalFd(f.Fd())
	}
	return 0, false
}

// hideFlag hides one of docker's deprecated or alias flags from the help
// while keeping it usable.
func hideFlag(fs *pflag.FlagSet, name string) {
	_ = fs.MarkHidden(name)
}

// usageTemplate lays help out as docker does: "Usage:  berth run ...", the
// description, aliases, subcommands and "Options:".
const usageTemplate = `Usage:  {{.UseLine}}
{{- if .Short}}

{{.Short}}
{{- end}}
{{- if gt (len .Aliases) 0}}

Aliases:
  {{.NameAndAliases}}
{{- end}}
{{- if .HasAvailableSubCommands}}

Commands:
{{- range .Commands}}{{if .IsAvailableCommand}}
  {{rpad .Name .NamePadding }} {{.Short}}
{{- end}}{{end}}
{{- end}}
{{- if .HasAvailableLocalFlags}}

Options:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}
{{- end}}
{{- if .HasAvailableSubCommands}}

Run '{{.CommandPath}} COMMAND --help' for more information on a command.
{{- end}}
`

// confirm asks a yes/no question on the terminal, as docker's prune does.
func (c *Cli) confirm(msg string) bool {
	fmt.Fprintf(c.out, "%s\nAre you sure you want to continue? [y/N] ", msg)
	line, _ := bufio.NewReader(c.in).ReadString('\n')
	line = strings.ToLower(strings.TrimSpace(line))
	return line == "y" || line == "yes"
}

// oneProc runs run and create on one P (unless GOMAXPROCS is set): they
// mostly wait on the daemon, and every extra OS thread the Go scheduler
// starts for a second P (a clone and an 8 MiB stack mapping at start-up,
// a thread to kill at exit, on a CPU the daemon and the container's init
// are busy on) cost more than the parallel start-up saved: through the
// berth CLI, run --rm 12.56 -> 12.19 and 12.56 -> 12.40 ms with
// GOMAXPROCS=1 (2026-11-24, 100 pairs each, docs/benchmarks.md).
func oneProc(args []string) {
	if createsContainer(args) && os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
}
