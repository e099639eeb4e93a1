// Command berth-compose is berth's Compose CLI. `berth compose ...` execs it
// (found beside the berth executable, then on PATH) with berth's own
// argument list, so it takes berth's global options (-H, --context,
// --config, --log-level, TLS) before "compose"; run by hand, "compose" may
// be left out. It is a binary of its own so that the Compose loader is not
// linked into berth. All of its logic lives in internal/cli/composecli.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/cli/composecli"
)

func main() {
	os.Exit(composecli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
