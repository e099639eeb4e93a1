package shim

import (
	"bufio"
	"bytes"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/runtime/initproc"
	"golang.org/x/sys/unix"
)

// trimDelay is how long the shim must have been idle before it trims.
const trimDelay = time.Second

// scheduleTrim trims the shim's memory once it has been idle for
// trimDelay (each call pushes the trim back).
func (s *server) scheduleTrim() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.trimT == nil {
		s.trimT = time.AfterFunc(trimDelay, trim)
		return
	}
	s.trimT.Reset(trimDelay)
}

// trim gives back what an idle shim does not need: the free heap
// (FreeOSMemory) and the page-table entries of its executable's clean,
// read-only pages. Those pages stay in the page cache, shared with every
// other shim; the ones the shim touches again fault back in (minor
// faults). After start-up the shim had most of its binary mapped; idle, it
// runs only a few pages of it.
func trim() {
	debug.FreeOSMemory()
	dropCleanText()
	if initproc.TraceOn {
		var m goruntime.MemStats
		goruntime.ReadMemStats(&m)
		logf("trimmed: heap alloc %d KiB in use %d KiB sys %d KiB; stacks %d KiB; spans %d KiB; gc %d KiB; other %d KiB; goroutines %d",
			m.HeapAlloc>>10, m.HeapInuse>>10, m.HeapSys>>10, m.StackSys>>10, m.MSpanSys>>10, m.GCSys>>10, m.OtherSys>>10, goruntime.NumGoroutine())
	}
}

// dropCleanText unmaps (MADV_DONTNEED) the pages of the non-writable
// private mappings of our executable that hold no private copy (smaps
// "Anonymous: 0 kB"): for those the advice only drops page-table entries.
// Mappings with private copies (relocated read-only data) are left alone,
// as their contents would otherwise revert to the file's.
func dropCleanText() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return
	}
	type region struct{ start, end uintptr }
	var cand []region
	var cur *region
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			cur = nil
			if len(f) < 6 || f[5] != exe || len(f[1]) < 4 || f[1][1] == 'w' || f[1][3] != 'p' {
				continue
			}
			lo, hi, ok := strings.Cut(f[0], "-")
			if !ok {
				continue
			}
			a, err1 := strconv.ParseUint(lo, 16, 64)
			z, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			cand = append(cand, region{uintptr(a), uintptr(z)})
			cur = &cand[len(cand)-1]
			continue
		}
		if cur != nil && strings.HasPrefix(line, "Anonymous:") {
			if strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(line, "Anonymous:"), "kB")) != "0" {
				cur.start, cur.end = 0, 0 // has private copies: keep
			}
			cur = nil
		}
	}
	for _, r := range cand {
		if r.end > r.start {
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED)
		}
	}
}
