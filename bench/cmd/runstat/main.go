// Command runstat is bench/compare.sh's helper. It has two subcommands:
//
//	runstat bundle DIR SPECTOOL [BUSYBOX]
//	    create the /bin/true bundle in DIR (see bench.MakeBundle)
//	runstat run CMD [ARG...]
//	    run CMD once and print "<wall-ns> <peak-rss-KiB> <launcher-rss-KiB>"
//
// Timing here rather than in the shell keeps the cost of a timing tool
// (such as /usr/bin/time's own fork and exec) out of the measured interval
// and gives nanosecond resolution. The third number is runstat's own peak
// RSS, the floor under the second (see bench.Result).
package main

import (
	"fmt"
	"os"

	"github.com/berth-dev/berth/bench"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "runstat:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: runstat bundle DIR SPECTOOL [BUSYBOX] | runstat run CMD [ARG...]")
	}
	switch args[0] {
	case "bundle":
		if len(args) != 3 && len(args) != 4 {
			return fmt.Errorf("usage: runstat bundle DIR SPECTOOL [BUSYBOX]")
		}
		busybox := bench.DefaultBusybox
		if len(args) == 4 {
			busybox = args[3]
		}
		if err := os.MkdirAll(args[1], 0o755); err != nil {
			return err
		}
		rootfs, err := bench.MakeBundle(args[1], busybox, args[2])
		if err != nil {
			return err
		}
		fmt.Println(rootfs)
		return nil
	case "run":
		if len(args) < 2 {
			return fmt.Errorf("usage: runstat run CMD [ARG...]")
		}
		r, err := bench.RunOnce(args[1:])
		if err != nil {
			return err
		}
		fmt.Println(r.Wall.Nanoseconds(), r.MaxRSSKiB, r.LauncherRSSKiB)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}
