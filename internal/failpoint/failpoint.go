// Package failpoint lets tests kill the process at a named point, to
// prove what a crash there leaves behind (a kill -9 at the worst moment).
// It owns nothing else; berthd's code calls Crash at the points where a
// crash matters (between two writes, just before an answer).
//
// The point is chosen by the environment: BERTH_FAILPOINT=<name> makes
// Crash(<name>) send the process SIGKILL. Unset (always, outside tests),
// Crash is one string comparison.
package failpoint

import (
	"os"
	"syscall"
)

// active is the point named by BERTH_FAILPOINT, read once.
var active = os.Getenv("BERTH_FAILPOINT")

// Crash kills the process with SIGKILL when name is the active point.
func Crash(name string) {
	if active == "" || active != name {
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // SIGKILL is delivered before anything else runs
}
