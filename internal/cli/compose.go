package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// ComposeBinary is the program that implements `berth compose`
// (cmd/berth-compose). It lives in its own binary, as Docker Compose is a
// CLI plugin, so that the compose-go loader and its JSON schema validator
// are not linked into, nor initialised by, every berth command.
const ComposeBinary = "berth-compose"

// newComposeCommand is `berth compose`: it replaces the process with
// berth-compose, passing berth's whole argument list (global options
// included) on, so stdio, signals and the exit status are berth-compose's
// own and need no relaying.
func (c *Cli) newComposeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compose [OPTIONS] COMMAND",
		Short: "Define and run multi-container applications",
		// Flags, --help included, are berth-compose's to parse.
		DisableFlagParsing: true,
		// Completions are berth-compose's too: it gets the same
		// `__complete ...` argument list (see composeCompletions).
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return c.composeCompletions()
		},
		RunE: func(*cobra.Command, []string) error {
			// berth-compose inherits the process's descriptors: a caller
			// of Main with other streams (a test) must not lose its
			// process to it.
			if c.in != io.Reader(os.Stdin) || c.out != io.Writer(os.Stdout) || c.err != io.Writer(os.Stderr) {
				return errors.New("berth: 'compose' runs berth-compose in place of this process and needs the process's own stdin, stdout and stderr")
			}
			return execCompose(c.args)
		},
	}
	// `berth help compose` is berth-compose's help too.
	cmd.SetHelpFunc(func(cmd *cobra.Command, _ []string) {
		if err := execCompose([]string{"compose", "--help"}); err != nil {
			_ = exitStatus(cmd.ErrOrStderr(), err)
		}
	})
	return cmd
}

// execCompose replaces the process with berth-compose run with args.
func execCompose(args []string) error {
	exe, _ := os.Executable()
	path, err := findComposeBinary(exe, exec.LookPath)
	if err != nil {
		return err
	}
	argv := append([]string{path}, args...)
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("berth: running %s: %w", path, err)
	}
	return nil // not reached
}

// findComposeBinary looks for berth-compose beside the berth executable exe
// (os.Executable, symlinks resolved), then on PATH with lookPath.
func findComposeBinary(exe string, lookPath func(string) (string, error)) (string, error) {
	var beside string
	if exe != "" {
		beside = filepath.Join(filepath.Dir(exe), ComposeBinary)
		if st, err := os.Stat(beside); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return beside, nil
		}
	}
	p, err := lookPath(ComposeBinary)
	if err == nil {
		return p, nil
	}
	where := "on PATH"
	if beside != "" {
		where = fmt.Sprintf("beside berth (%s) or on PATH", beside)
	}
	if !errors.Is(err, exec.ErrNotFound) {
		where += " (" + err.Error() + ")"
	}
	return "", StatusError{
		Status:     fmt.Sprintf("berth: 'compose' needs the %s binary, not found %s", ComposeBinary, where),
		StatusCode: 1,
	}
}

// composeCompletions answers a shell completion request (`berth __complete
// ... compose ...`) by running berth-compose with the same arguments, as
// the docker CLI asks its plugins, and returning what it printed.
func (c *Cli) composeCompletions() ([]cobra.Completion, cobra.ShellCompDirective) {
	exe, _ := os.Executable()
	path, err := findComposeBinary(exe, exec.LookPath)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, c.args...).Output()
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	return parseCompletions(out)
}

// parseCompletions reads cobra's __complete output: one completion a line,
// then ":<directive>".
func parseCompletions(out []byte) ([]cobra.Completion, cobra.ShellCompDirective) {
	var comps []cobra.Completion
	directive := cobra.ShellCompDirectiveDefault
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, ":"); ok {
			if n, err := strconv.Atoi(d); err == nil {
				directive = cobra.ShellCompDirective(n)
				continue
			}
		}
		if line != "" {
			comps = append(comps, line)
		}
	}
	return comps, directive
}
