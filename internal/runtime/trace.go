package runtime

import (
	"fmt"
	"os"
	"time"
)

// traceOn enables phase timing on stderr (BERTH_TRACE=1), used to budget
// the hot path; the child inherits it through the config, not the
// environment, so the container never sees it.
var traceOn = os.Getenv("BERTH_TRACE") != ""

func tracef(format string, args ...any) {
	if traceOn {
		fmt.Fprintf(os.Stderr, "[trace %d.%06d %d] %s\n", time.Now().Unix()%100, time.Now().Nanosecond()/1000, os.Getpid(), fmt.Sprintf(format, args...))
	}
}

// Tracef is tracef for the commands built on the runtime.
func Tracef(format string, args ...any) { tracef(format, args...) }
