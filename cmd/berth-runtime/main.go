// Command berth-runtime is berth's OCI runtime with runc's command-line
// interface: a thin layer over package runtime. Each command parses its
// flags, calls one library function and prints the result.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type globals struct {
	root      string
	log       string
	logFormat string
	debug     bool
	systemd   bool
	rootless  string
}

func main() {
	// Without berth-runtime-init beside it, the container init and exec
	// processes are this binary re-executed: they branch off here.
	initproc.Main()
	code := run(os.Args[1:])
	initproc.Tracef("exit %d", code)
	os.Exit(code)
}

func run(args []string) int {
	g := &globals{}
	exitCode := 0
	root := &cobra.Command{
		Use:           "berth-runtime",
		Short:         "berth's OCI container runtime (runc-compatible command line)",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.setupLog()
		},
	}
	root.SetVersionTemplate("berth-runtime version {{.Version}}\nspec: 1.2.1\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.root, "root", runtime.DefaultRoot, "root directory for storage of container state")
	pf.StringVar(&g.log, "log", "", "log file path (default: stderr)")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.BoolVar(&g.debug, "debug", false, "enable debug logging")
	pf.BoolVar(&g.systemd, "systemd-cgroup", false, "use systemd for cgroups (not supported: berth uses cgroupfs)")
	pf.StringVar(&g.rootless, "rootless", "auto", "ignore cgroup permission errors (not supported)")
	root.AddCommand(
		createCmd(g), startCmd(g), runCmd(g, &exitCode), stateCmd(g), killCmd(g), deleteCmd(g),
		execCmd(g, &exitCode), psCmd(g), listCmd(g), pauseCmd(g), resumeCmd(g), updateCmd(g),
		specCmd(), featuresCmd(),
	)
	root.SetArgs(args)
	if err := root.ExecuteContext(context.Background()); err != nil {
		slog.Error(err.Error())
		if g.log != "" {
			// The log went to a file; the caller still needs the reason.
			fmt.Fprintln(os.Stderr, "berth-runtime:", err)
		}
		return 1
	}
	return exitCode
}

func (g *globals) setupLog() error {
	var w io.Writer = os.Stderr
	if g.log != "" {
		f, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return fmt.Errorf("open log file: %w", err)
		}
		w = f
	}
	level := slog.LevelInfo
	if g.debug {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch g.logFormat {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return fmt.Errorf("unknown log-format %q", g.logFormat)
	}
	slog.SetDefault(slog.New(h))
	if g.systemd {
		return errors.New("--systemd-cgroup is not supported: berth-runtime manages cgroups through cgroupfs")
	}
	return nil
}

func (g *globals) runtime() (*runtime.Runtime, error) {
	r, err := runtime.New(g.root)
	if err != nil {
		return nil, err
	}
	r.Log = slog.Default()
	return r, nil
}

// exactArgs is cobra.ExactArgs with runc's wording.
func idArg(cmd *cobra.Command, args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("%q requires a container id", cmd.CommandPath())
	}
	return nil
}
