package shim

import (
	"bufio"
	"bytes"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
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
		if b, err := os.ReadFile("/proc/self/status"); err == nil {
			i := bytes.Index(b, []byte("RssAnon"))
			j := bytes.Index(b, []byte("RssShmem"))
			if i >= 0 && j > i {
				logf("after trim: %s", bytes.ReplaceAll(b[i:j], []byte("\n"), []byte(" ")))
			}
		}
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
// as their contents would otherwise revert to the file's. smaps is read
// through a small buffer, line by line, so that trimming does not itself
// leave garbage on the heap.
func dropCleanText() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
	defer f.Close()
	type region struct{ start, end uintptr }
	var cand [8]region
	n := 0
	cur := -1
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1024), 4096)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("Anonymous:")) {
			if cur >= 0 && string(bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(line[len("Anonymous:"):]), []byte("kB")))) != "0" {
				cand[cur] = region{} // has private copies: keep
			}
			cur = -1
			continue
		}
		// A mapping line: "start-end perms offset dev inode path".
		sp := bytes.IndexByte(line, ' ')
		dash := bytes.IndexByte(line, '-')
		if sp < 0 || dash < 0 || dash > sp || line[sp-1] == ':' {
			continue
		}
		cur = -1
		perms := line[sp+1:]
		if len(perms) < 4 || perms[1] == 'w' || perms[3] != 'p' || !bytes.HasSuffix(line, []byte(" "+exe)) || n == len(cand) {
			continue
		}
		a, err1 := strconv.ParseUint(string(line[:dash]), 16, 64)
		z, err2 := strconv.ParseUint(string(line[dash+1:sp]), 16, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		cand[n] = region{uintptr(a), uintptr(z)}
		cur = n
		n++
	}
	for _, r := range cand[:n] {
		if r.end > r.start {
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED)
		}
	}
}
