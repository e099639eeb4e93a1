package composecli

import (
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/internal/cli"
)

// Main runs berth-compose with args (without the program name) and returns
// the exit code. berth runs it with its own argument list, global options
// first ("-H unix:///x compose up -d"); run by hand, the compose word may be
// left out ("berth-compose up -d").
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// cobra's hidden completion commands (__complete, __completeNoDesc),
	// which berth runs for `berth compose` completions, take berth's
	// argument list as it is.
	if len(args) > 0 && args[0] != "compose" && !strings.HasPrefix(args[0], "-") && !strings.HasPrefix(args[0], cobra.ShellCompRequestCmd) {
		args = append([]string{"compose"}, args...)
	}
	return cli.MainCommand(args, stdin, stdout, stderr, NewCommand)
}

// NewCommand builds `berth compose` and its subcommands on c.
func NewCommand(c *cli.Cli) *cobra.Command { return (&cmds{c}).newComposeCommand() }

// cmds carries the berth CLI the compose commands run on.
type cmds struct{ *cli.Cli }

// isTerminal reports whether stream (an *os.File) is a terminal.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// truncateID shortens an ID to docker's 12 characters, without the
// algorithm prefix.
func truncateID(id string) string {
	if _, hex, ok := strings.Cut(id, ":"); ok {
		id = hex
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}
