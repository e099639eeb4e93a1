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

func Tracef(format string, args ...any) {
	if TraceOn {
		fmt.Fprintf(os.Stderr, "[trace %d.%06d %d] %s\n", time.Now().Unix()%100, time.Now().Nanosecond()/1000, os.Getpid(), fmt.Sprintf(format, args...))
	}
}
