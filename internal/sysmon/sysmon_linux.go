// Package sysmon widens the timer slack of the Go runtime's system
// monitor thread in berthd and the shims. While a process is busy, sysmon
// sleeps 20 us at a time (it retakes processors from goroutines blocked in
// system calls and preempts long-running ones); with the kernel's default
// slack of 50 us it wakes every ~90 us and preempts whatever runs on its
// CPU: berthd's sysmon alone switched in ~86 times during one
// `run --rm` here, and each retake it makes from a short blocking system
// call on the path (a mount, a read of the init's sync socket) sends the
// goroutine that made it through the scheduler's slow path when the call
// returns. With a wider slack the kernel batches those wake-ups with other
// timers: sysmon still runs, later by at most the slack, so a goroutine
// waiting for a processor held in a system call may wait that much longer.
// Measured (docs/benchmarks.md, "Sixth pass"): run --rm through the berth
// CLI 0.95 with 1 ms in berthd and the shims; 250 us did as well (1 ms vs
// 250 us: 1.012, 1.014, 1.022), with a quarter of the added latency, so
// that is the default. The CLI's own sysmon made no difference and is left
// alone.
package sysmon

import (
	"os"
	"strconv"
)

// Slacken sets the timer slack of this process's sysmon thread to ns
// nanoseconds. sysmon is the first thread the Go runtime creates after
// the main thread (runtime.main, before any package initialisation), so
// it is the thread with the lowest id above the process id; if thread
// ids wrapped around (one below the process id), nothing is changed.
// Errors are ignored: the slack is only a tuning.
func Slacken(ns int64) {
	// The process id as /proc sees it (in a new pid namespace whose /proc
	// is not mounted yet, os.Getpid is another number).
	self, err := os.Readlink("/proc/self")
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(self)
	if err != nil {
		return
	}
	d, err := os.Open("/proc/self/task")
	if err != nil {
		return
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return
	}
	first := 0
	for _, n := range names {
		tid, err := strconv.Atoi(n)
		if err != nil || tid < pid {
			return
		}
		if tid > pid && (first == 0 || tid < first) {
			first = tid
		}
	}
	if first == 0 {
		return
	}
	f, err := os.OpenFile("/proc/"+strconv.Itoa(first)+"/timerslack_ns", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	_, _ = f.WriteString(strconv.FormatInt(ns, 10))
	f.Close()
}

// EnvSlack, in berthd's environment, sets the slack of berthd's and its
// shims' sysmon in nanoseconds (for measurements; 50000 is the kernel's
// default).
const EnvSlack = "BERTH_SYSMON_SLACK_NS"

// DefaultSlack is the slack berthd and the shims give their sysmon:
// 250 us (the kernel's default is 50 us).
var DefaultSlack = func() int64 {
	if v, err := strconv.ParseInt(os.Getenv(EnvSlack), 10, 64); err == nil && v > 0 {
		return v
	}
	return 250_000
}()
