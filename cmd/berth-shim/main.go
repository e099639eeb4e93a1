//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0

// Command berth-shim supervises one container: berthd starts it (package
// shim's Spawn), it creates the container through the runtime library,
// stays its parent, holds its stdio and logs, and outlives berthd. It is not
// meant to be run by hand; everything is in package internal/shim.
//
// The Go runtime's cgroup-aware GOMAXPROCS is off: it would keep cgroup
// files open and re-read them periodically in every shim.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/shim"
	"github.com/berth-dev/berth/internal/sysmon"
)

func main() {
	sysmon.Slacken(sysmon.DefaultSlack)
	os.Exit(shim.Main())
}
