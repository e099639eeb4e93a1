// Package memtrim gives back memory an idle process does not need: the
// page-table entries of its executable's clean pages. Those pages stay in
// the page cache (shared with every other process of the same binary and
// reclaimable); the ones the process touches again fault back in as minor
// faults. A Go program maps most of its binary while it starts and runs a
// small part of it while idle, so this is most of an idle process's
// file-backed resident set. Used by berth-shim (after start and after
// each collection) and berthd (idle).
package memtrim

import (
	"bufio"
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// DropCleanText unmaps (MADV_DONTNEED) the pages of the non-writable
// private mappings of our executable that hold no private copy (smaps
// "Anonymous: 0 kB"): for those the advice only drops page-table entries.
// Mappings with private copies (relocated read-only data) are left alone,
// as their contents would otherwise revert to the file's. smaps is read
// through a small buffer, line by line, so that trimming does not itself
// leave garbage on the heap.
func DropCleanText() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return
	}
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
	// Everything else first: what runs after the advice faults its pages
	// back in.
	f.Close()
	for _, r := range cand[:n] {
		if r.end > r.start {
			_, _, _ = unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED)
		}
	}
}
