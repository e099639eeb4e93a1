package shim

import (
	"bytes"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/memtrim"
	"github.com/berth-dev/berth/internal/runtime/initproc"
)

// trimDelay is how long the shim must have been idle before it trims.
const trimDelay = time.Second

// scheduleTrim trims the shim's memory once it has been idle for
// trimDelay (each call pushes the trim back).
func (s *server) scheduleTrim() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.trimT == nil {
		s.trimT = time.NewTimer(trimDelay)
		watchGC()
		go trimLoop(s.trimT.C)
		return
	}
	s.trimT.Reset(trimDelay)
}

// trimLoop trims when asked (trim) and after collections (text only). It
// is one goroutine for the shim's life, not a timer's goroutine per trim:
// a goroutine's creation and exit look its function up in the binary's
// function tables (read-only data), which would fault a few of the pages
// just dropped straight back in.
func trimLoop(trimC <-chan time.Time) {
	for {
		select {
		case <-trimC:
			trim(true)
		case <-gcTextT.C:
			dropCleanText()
		}
	}
}

// trimAfter trims once after d unless stop is called first (a warm spare
// waiting for its container). The goroutine that trims stays until stop,
// as trimLoop does.
func trimAfter(d time.Duration) (stop func()) {
	t := time.NewTimer(d)
	done := make(chan struct{})
	go func() {
		select {
		case <-t.C:
			trim(false)
			<-done
		case <-done:
		}
	}()
	return func() {
		t.Stop()
		close(done)
	}
}

// trimMu serialises trims (timers may fire together); trimGCs is the
// number of GC cycles there had been after the last trim.
var (
	trimMu   sync.Mutex
	trimGCs  int64
	trimStat debug.GCStats // reused: its Pause slices are allocated once
)

// numGC is the number of completed GC cycles. (Not ReadMemStats: it
// flushes every span cache, which allocates span-set blocks, ~400 KiB
// resident in a shim that has never collected, measured.)
func numGC() int64 {
	debug.ReadGCStats(&trimStat)
	return trimStat.NumGC
}

// trim gives back what an idle shim does not need: the free heap, if a
// garbage collection ran since the last trim (FreeOSMemory), and the
// page-table entries of its executable's clean, read-only pages. Those
// pages stay in the page cache, shared with every other shim; the ones
// the shim touches again fault back in (minor faults). After start-up the
// shim had most of its binary mapped; idle, it runs only a few pages of
// it.
//
// A shim that has never collected does not start now: creating a
// container allocates less than the first heap goal (GOGC 50: 2 MB), and
// the first cycle would cost more than the garbage it frees (its mark
// bits and span sets stay allocated: ~300 KiB more resident, measured),
// and it would start the runtime's forced collection every 2 minutes,
// which the runtime skips in a process that never collected. So an idle
// shim that serves no requests never runs the collector at all.
//
// cHeap: give glibc's free C heap back too (malloc_trim) — a shim that
// created its container cold kept ~1.1 MiB of it. Not in a warm spare
// waiting for its container: the create would grow the heap again, paying
// page faults on its path (run --rm 1.01 slower with it).
func trim(cHeap bool) {
	trimMu.Lock()
	// gcSeen: no ReadGCStats (its buffers, ~10 KiB) while no collection
	// was ever seen.
	if gcSeen.Load() > 0 {
		if numGC() != trimGCs {
			debug.FreeOSMemory()
		}
		trimGCs = numGC()
	}
	trimMu.Unlock()
	if cHeap {
		memtrim.TrimCHeap()
	}
	dropCleanText()
	if initproc.TraceOn {
		if b, err := os.ReadFile("/proc/self/status"); err == nil {
			i := bytes.Index(b, []byte("RssAnon"))
			j := bytes.Index(b, []byte("RssShmem"))
			if i >= 0 && j > i {
				logf("after trim: %s", bytes.ReplaceAll(b[i:j], []byte("\n"), []byte(" ")))
			}
		}
		// (Tracing only: ReadMemStats flushes the span caches, which makes
		// a traced shim larger than an untraced one.)
		var m goruntime.MemStats
		goruntime.ReadMemStats(&m)
		logf("trimmed: heap alloc %d KiB in use %d KiB sys %d KiB; stacks %d KiB; spans %d KiB; gc %d KiB; other %d KiB; goroutines %d",
			m.HeapAlloc>>10, m.HeapInuse>>10, m.HeapSys>>10, m.StackSys>>10, m.MSpanSys>>10, m.GCSys>>10, m.OtherSys>>10, goruntime.NumGoroutine())
	}
}

// gcTextT drops the executable's pages again a trimDelay after a
// collection: a cycle walks every goroutine's stack (function tables) and
// runs the collector's code, and a forced one (every 2 minutes once the
// shim has collected) would otherwise leave ~2 MiB of the binary mapped
// in every idle shim until its next request.
var (
	gcWatchOnce sync.Once
	gcTextT     *time.Timer
	gcSeen      atomic.Int64 // collections seen (finalizers run)
)

// watchGC arms the collection watch (once per process, before trimLoop).
func watchGC() {
	gcWatchOnce.Do(func() {
		gcTextT = time.NewTimer(time.Hour)
		gcTextT.Stop()
		armGCSentinel()
	})
}

// gcSentinel is garbage whose finalizer runs after the cycle that found
// it (it holds a pointer, so it is not in a tiny-allocator block, whose
// finalizers can be late).
type gcSentinel struct{ _ *byte }

func armGCSentinel() {
	goruntime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		gcSeen.Add(1)
		gcTextT.Reset(trimDelay)
		armGCSentinel()
	})
}

// dropCleanText drops the page-table entries of the executable's clean,
// read-only pages (package memtrim).
func dropCleanText() { memtrim.DropCleanText() }
