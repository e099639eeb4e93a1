// Command berth is the command-line client of berthd. It speaks the Docker
// Engine API and mirrors the docker CLI; all of its logic lives in
// internal/cli.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
