package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

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
	return &cobra.Command{
		Use:   "compose [OPTIONS] COMMAND",
		Short: "Define and run multi-container applications",
		// Flags, --help included, are berth-compose's to parse.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			exe, _ := os.Executable()
			path, err := findComposeBinary(exe, exec.LookPath)
			if err != nil {
				return err
			}
			argv := append([]string{path}, c.args...)
			if err := syscall.Exec(path, argv, os.Environ()); err != nil {
				return fmt.Errorf("berth: running %s: %w", path, err)
			}
			return nil // not reached
		},
	}
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
