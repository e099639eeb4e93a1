// Command berth-runtime-init is the process berth-runtime starts inside a
// new container: it sets up the container from the inside and then
// becomes the container's program through execve. It is kept small on
// purpose (it is loaded once per container start): it links only package
// initproc and the nsenter constructor, not the runtime's CLI or cgroup
// manager. It is not meant to be run by hand.
package main

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/internal/runtime/initproc"
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
)

func main() {
	initproc.Main()
	fmt.Fprintln(os.Stderr, "berth-runtime-init: this is the container init of berth-runtime; it is started by berth-runtime, not by hand")
	os.Exit(2)
}
