package shim

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The warm spare at idle CPU priority (opt-in, see below). Everything a spare does
// before it is claimed (its own Go start, the pre-fork of its init: the
// cgroups, the clone, the init's exec and Go start, about 5 ms of CPU) is
// work ahead of time: on a small host it must not take CPU from the
// container being created and started meanwhile (a claim starts the next
// spare at once). So a spare shim puts every thread of its own under
// SCHED_IDLE first thing (goIdle); the init it clones, and the init's
// threads, inherit the policy. At claim every thread of both goes back to
// SCHED_OTHER (schedNormal: the shim's by the daemon before it sends the
// boot config, the init's by the shim before the runtime sends the init
// its config), with the nice value the thread had: a container's program,
// and every thread or process it makes after exec, runs with the policy
// and nice of an ordinary (cold) container's; process.scheduler, if the
// spec has one, is applied by the init afterwards as always.
//
// Only a process that may leave SCHED_IDLE again goes idle: root (an
// unprivileged thread may leave it only within RLIMIT_NICE).
//
// Opt-in (BERTH_SPARE_IDLE=1 in the daemon's environment; the shims get
// it): measured interleaved against the same build without it (2026-11-24,
// docs/benchmarks.md), it made no difference that stood out of the noise
// of this shared 2-CPU host (median per-pair ratio 1.005 over 7 runs of
// 150 pairs), so it is off until a measurement shows it pays.

// idleSpare says whether a warm spare runs at idle priority.
func idleSpare() bool {
	return os.Geteuid() == 0 && os.Getenv("BERTH_SPARE_IDLE") == "1"
}

// goIdle puts every thread of this process under SCHED_IDLE.
func goIdle() error {
	return schedAll(os.Getpid(), unix.SCHED_NORMAL, unix.SCHED_IDLE)
}

// schedNormal puts every SCHED_IDLE thread of process pid back under
// SCHED_OTHER (SCHED_NORMAL), its nice value unchanged.
func schedNormal(pid int) error {
	return schedAll(pid, unix.SCHED_IDLE, unix.SCHED_NORMAL)
}

// spareNormal is schedNormal for a spare's shim or init when spares run
// idle (idleSpare), else nothing.
func spareNormal(pid int) error {
	if !idleSpare() {
		return nil
	}
	return schedNormal(pid)
}

// schedAll moves every thread of pid under policy from to policy to (the
// nice value is kept; threads under another policy are left alone). A
// thread cloned meanwhile by one not yet moved has the old policy: the
// task list is walked again until a walk moves nothing.
func schedAll(pid int, from, to uint32) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	for range 8 {
		f, err := os.Open(dir)
		if err != nil {
			return err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return err
		}
		moved := false
		for _, n := range names {
			tid, err := strconv.Atoi(n)
			if err != nil {
				continue
			}
			a, err := unix.SchedGetAttr(tid, 0)
			if err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue // the thread exited
				}
				return fmt.Errorf("sched_getattr %d: %w", tid, err)
			}
			if a.Policy != from {
				continue
			}
			a.Policy, a.Flags = to, 0
			if err := unix.SchedSetAttr(tid, a, 0); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("sched_setattr %d: %w", tid, err)
			}
			moved = true
		}
		if !moved {
			return nil
		}
	}
	return fmt.Errorf("threads of %d: scheduling policy still changing", pid)
}
