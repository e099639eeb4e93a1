package initproc

import (
	"fmt"
	"os"
	"time"
)

// TraceOn enables phase timing on stderr (BERTH_TRACE=1), used to budget
// the hot path; the child inherits it through the config, not the
// environment, so the container never sees it.
var TraceOn = os.Getenv("BERTH_TRACE") != ""

// traceOut is where Tracef writes: stderr, or for a container's init a
// file of its own in BERTH_TRACE_DIR (its stderr is the container's).
var traceOut = os.Stderr

func Tracef(format string, args ...any) {
	if TraceOn {
		now := time.Now()
		fmt.Fprintf(traceOut, "[trace %d.%06d %d] %s\n", now.Unix()%100, now.Nanosecond()/1000, os.Getpid(), fmt.Sprintf(format, args...))
	}
}
