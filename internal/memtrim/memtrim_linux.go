// Package memtrim gives back memory an idle process does not need: the
// page-table entries of its executable's clean pages. Those pages stay in
// the page cache (shared with every other process of the same binary and
// reclaimable); the ones the process touches again fault back in as minor
// faults. A Go program maps most of its binary while it starts and runs a
// small part of it while idle, so this is most of an idle process's
// file-backed resident set. Used by berth-shim (after start and after
// each collection), berthd (idle), the container init (while it waits)
// and the berth CLI (while run waits for its container).
package memtrim

import (
	"bytes"
	"encoding/binary"
	"os"

	"golang.org/x/sys/unix"
)

// DropCleanText unmaps (MADV_DONTNEED) the pages of our executable's
// read-only load segments (text, read-only data): the ELF program
// headers' PT_LOAD entries without PF_W, at the addresses where
// /proc/self/maps shows them mapped private and not writable. Those pages
// are never written (Go does not patch its code or make a segment
// writable), so they hold no private copies and the advice only drops
// page-table entries. Pages of writable segments are left alone, also
// the ones made read-only after relocation (GNU_RELRO in the statically
// linked cgo binaries): their contents would revert to the file's.
//
// It costs two small reads (the program headers and /proc/self/maps, no
// page-table walk as /proc/self/smaps would do) and allocates nothing that
// outlives it: the berth CLI runs it beside a starting container.
func DropCleanText() {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return
	}
	// Raw system calls: os.File would register each file with the
	// runtime's poller first (four more system calls apiece).
	var hdr [4096]byte
	fd, err := unix.Open("/proc/self/exe", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	n, _ := unix.Pread(fd, hdr[:], 0)
	unix.Close(fd)
	var segs [16]segment
	ns, pie, ok := cleanSegments(hdr[:max(n, 0)], segs[:])
	if !ok {
		return
	}
	fd, err = unix.Open("/proc/self/maps", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	var drop [16]region
	nd := 0
	bias, biasKnown := uintptr(0), !pie
	eachLine(fd, hdr[:], func(line []byte) bool {
		mp, ok := parseMapsLine(line, exe)
		if !ok {
			return true
		}
		if !biasKnown {
			// A position-independent executable: its first mapping (file
			// offset 0) is the first load segment, at the load bias.
			if mp.offset != 0 {
				return false
			}
			bias, biasKnown = mp.start-segs[0].vaddr, true
		}
		if mp.writable || !mp.private {
			return true
		}
		for _, s := range segs[:ns] {
			a, z := max(mp.start, bias+s.vaddr), min(mp.end, bias+s.end)
			if a < z && nd < len(drop) {
				drop[nd] = region{a, z}
				nd++
			}
		}
		return nd < len(drop)
	})
	unix.Close(fd)
	for _, r := range drop[:nd] {
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED)
	}
}

// eachLine calls f with each line read from fd (without its newline),
// through buf, until f returns false. A line longer than buf is skipped.
func eachLine(fd int, buf []byte, f func([]byte) bool) {
	have, skipping := 0, false
	for {
		n, err := unix.Read(fd, buf[have:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		have += n
		rest := buf[:have]
		for {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			if !skipping && !f(rest[:i]) {
				return
			}
			skipping = false
			rest = rest[i+1:]
		}
		if len(rest) == len(buf) {
			rest, skipping = rest[:0], true // a line longer than buf
		}
		have = copy(buf, rest)
	}
}

type region struct{ start, end uintptr }

// segment is a read-only PT_LOAD entry's page range, as linked (before
// the load bias of a position-independent executable).
type segment struct{ vaddr, end uintptr }

const pageSize = 4096

// cleanSegments reads the read-only load segments from the start of a
// 64-bit little-endian ELF file (its header and program headers, which
// the linkers put in the first page), sorted as in the file. pie reports
// a position-independent executable (ET_DYN): its segments are mapped at
// a load bias. ok is false for anything it does not understand, and then
// nothing is dropped.
func cleanSegments(b []byte, out []segment) (n int, pie, ok bool) {
	le := binary.LittleEndian
	if len(b) < 64 || string(b[:4]) != "\x7fELF" || b[4] != 2 || b[5] != 1 {
		return 0, false, false
	}
	switch le.Uint16(b[16:]) {
	case 2: // ET_EXEC
	case 3: // ET_DYN
		pie = true
	default:
		return 0, false, false
	}
	phoff, phentsize, phnum := le.Uint64(b[32:]), int(le.Uint16(b[54:])), int(le.Uint16(b[56:]))
	if phentsize < 56 || phoff > uint64(len(b)) || uint64(phnum*phentsize) > uint64(len(b))-phoff {
		return 0, false, false
	}
	first := true
	for i := 0; i < phnum; i++ {
		p := b[int(phoff)+i*phentsize:]
		if le.Uint32(p) != 1 { // PT_LOAD
			continue
		}
		flags, off, vaddr, filesz := le.Uint32(p[4:]), le.Uint64(p[8:]), le.Uint64(p[16:]), le.Uint64(p[32:])
		if pie && first && off != 0 {
			return 0, false, false // the bias is found from the mapping of offset 0
		}
		first = false
		if flags&2 != 0 || filesz == 0 { // PF_W, or nothing from the file
			continue
		}
		if n == len(out) {
			return 0, false, false
		}
		// Whole pages only: a partial page at either end may be shared
		// with a neighbouring (writable) segment's file contents.
		a := (vaddr + pageSize - 1) &^ (pageSize - 1)
		if off == 0 {
			a = vaddr &^ (pageSize - 1)
		}
		z := (vaddr + filesz) &^ (pageSize - 1)
		if a < z {
			out[n] = segment{uintptr(a), uintptr(z)}
			n++
		}
	}
	return n, pie, n > 0
}

// mapping is one line of /proc/self/maps.
type mapping struct {
	start, end, offset uintptr
	writable, private  bool
}

// parseMapsLine parses a /proc/self/maps line ("start-end perms offset
// dev inode path") of the file exe; ok is false for other files. It
// allocates nothing.
func parseMapsLine(line []byte, exe string) (mapping, bool) {
	k := len(line) - len(exe)
	if k < 1 || line[k-1] != ' ' || string(line[k:]) != exe {
		return mapping{}, false
	}
	var m mapping
	var ok1, ok2, ok3 bool
	m.start, line, ok1 = hexField(line, '-')
	m.end, line, ok2 = hexField(line, ' ')
	if !ok1 || !ok2 || m.end <= m.start || len(line) < 5 || line[4] != ' ' {
		return mapping{}, false
	}
	m.writable, m.private = line[1] == 'w', line[3] == 'p'
	m.offset, _, ok3 = hexField(line[5:], ' ')
	return m, ok3
}

// hexField parses the hexadecimal number at the start of b up to sep and
// returns it and what follows sep.
func hexField(b []byte, sep byte) (uintptr, []byte, bool) {
	var v uintptr
	for i, c := range b {
		switch {
		case c == sep && i > 0:
			return v, b[i+1:], true
		case i >= 16:
			return 0, nil, false
		case '0' <= c && c <= '9':
			v = v<<4 | uintptr(c-'0')
		case 'a' <= c && c <= 'f':
			v = v<<4 | uintptr(c-'a'+10)
		default:
			return 0, nil, false
		}
	}
	return 0, nil, false
}
