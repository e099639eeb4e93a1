package memtrim

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// rssFile is this process's file-backed resident set, in KiB.
func rssFile(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// TestDropCleanText: the test binary's clean text leaves the resident set
// (what runs next faults back in) and the process keeps working.
func TestDropCleanText(t *testing.T) {
	before := rssFile(t)
	DropCleanText()
	after := rssFile(t)
	t.Logf("RssFile %d KiB -> %d KiB", before, after)
	if after >= before || before-after < 256 {
		t.Fatalf("RssFile %d KiB before, %d KiB after: the text was not dropped", before, after)
	}
	// Code and read-only data fault back in: formatting and a map still work.
	m := map[string]int{"a": 1}
	if s := strconv.Itoa(m["a"]) + strings.Repeat("x", 2); s != "1xx" {
		t.Fatal(s)
	}
}

// elfHeader builds the start of a 64-bit little-endian ELF file of type
// typ with the given program headers (type, flags, offset, vaddr, filesz).
func elfHeader(typ uint16, phdrs [][5]uint64) []byte {
	b := make([]byte, 64+56*len(phdrs))
	copy(b, "\x7fELF\x02\x01\x01")
	le := binary.LittleEndian
	le.PutUint16(b[16:], typ)
	le.PutUint64(b[32:], 64)
	le.PutUint16(b[54:], 56)
	le.PutUint16(b[56:], uint16(len(phdrs)))
	for i, p := range phdrs {
		h := b[64+56*i:]
		le.PutUint32(h, uint32(p[0]))
		le.PutUint32(h[4:], uint32(p[1]))
		le.PutUint64(h[8:], p[2])
		le.PutUint64(h[16:], p[3])
		le.PutUint64(h[32:], p[4])
		le.PutUint64(h[40:], p[4])
	}
	return b
}

// TestCleanSegments: only whole pages of read-only load segments; the
// writable segment (with its GNU_RELRO part, read-only once relocated) and
// partial pages are never candidates. The layout is berthd's (a static
// cgo binary linked by the external linker).
func TestCleanSegments(t *testing.T) {
	const load, relro, r, rx, rw = 1, 0x6474e552, 4, 5, 6
	b := elfHeader(2, [][5]uint64{
		{6, r, 64, 0x400040, 0x1c0}, // PT_PHDR: not a load segment
		{load, r, 0, 0x400000, 0x5f0},
		{load, rx, 0x1000, 0x401000, 0x89a9d1},
		{load, r, 0x89c000, 0xc9c000, 0x87502b},
		{load, rw, 0x1111f90, 0x1512f90, 0x72120},
		{relro, r, 0x1111f90, 0x1512f90, 0x4070},
	})
	var segs [16]segment
	n, pie, ok := cleanSegments(b, segs[:])
	if !ok || pie {
		t.Fatalf("ok %v pie %v", ok, pie)
	}
	want := []segment{{0x401000, 0xc9b000}, {0xc9c000, 0x1511000}}
	if n != len(want) || segs[0] != want[0] || segs[1] != want[1] {
		t.Fatalf("segments %x, want %x", segs[:n], want)
	}

	// Position-independent: the same, before the bias.
	if n, pie, ok := cleanSegments(elfHeader(3, [][5]uint64{{load, rx, 0, 0, 0x5000}, {load, rw, 0x5000, 0x6000, 0x100}}), segs[:]); !ok || !pie || n != 1 || segs[0] != (segment{0, 0x5000}) {
		t.Fatalf("PIE: n %d pie %v ok %v %x", n, pie, ok, segs[:n])
	}
	// Not understood: nothing is dropped.
	for name, b := range map[string][]byte{
		"short":       b[:40],
		"not ELF":     append([]byte("\x7fELG"), b[4:]...),
		"32-bit":      append([]byte("\x7fELF\x01"), b[5:]...),
		"headers cut": b[:64+56*2],
		"no segment":  elfHeader(2, [][5]uint64{{load, rw, 0, 0x400000, 0x3000}}),
		"object file": elfHeader(1, [][5]uint64{{load, rx, 0, 0x400000, 0x3000}}),
	} {
		if _, _, ok := cleanSegments(b, segs[:]); ok {
			t.Errorf("%s: understood", name)
		}
	}
}

func TestParseMapsLine(t *testing.T) {
	const exe = "/usr/bin/berth d"
	for _, c := range []struct {
		line string
		want mapping
		ok   bool
	}{
		{"00400000-00c9b000 r-xp 00001000 fe:01 1234 /usr/bin/berth d", mapping{0x400000, 0xc9b000, 0x1000, false, true}, true},
		{"01512000-01517000 rw-p 01111000 fe:01 1234 /usr/bin/berth d", mapping{0x1512000, 0x1517000, 0x1111000, true, true}, true},
		{"7f0000000000-7f0000001000 r--s 00000000 00:05 9 /usr/bin/berth d", mapping{0x7f0000000000, 0x7f0000001000, 0, false, false}, true},
		{"00400000-00c9b000 r-xp 00001000 fe:01 1234 /usr/bin/berth", mapping{}, false},
		{"00400000-00c9b000 r-xp 00001000 fe:01 1234 /usr/bin/xberth d", mapping{}, false},
		{"c000000000-c000400000 rw-p 00000000 00:00 0 ", mapping{}, false},
		{"00c9b000-00400000 r-xp 00001000 fe:01 1234 /usr/bin/berth d", mapping{}, false},
		{"0040g000-00c9b000 r-xp 00001000 fe:01 1234 /usr/bin/berth d", mapping{}, false},
		{"/usr/bin/berth d", mapping{}, false},
	} {
		got, ok := parseMapsLine([]byte(c.line), exe)
		if ok != c.ok || got != c.want {
			t.Errorf("%q: %+v %v, want %+v %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// TestEachLine: lines split across reads, a line longer than the buffer
// skipped, and the end when f says so.
func TestEachLine(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	in := "one\ntwo\n" + strings.Repeat("x", 40) + "\nthree\nstop\nafter\n"
	go func() {
		for i := 0; i < len(in); i += 5 { // short writes: lines cross reads
			_, _ = unix.Write(p[1], []byte(in[i:min(i+5, len(in))]))
		}
		unix.Close(p[1])
	}()
	var got []string
	eachLine(p[0], make([]byte, 16), func(l []byte) bool {
		got = append(got, string(l))
		return string(l) != "stop"
	})
	if strings.Join(got, ",") != "one,two,three,stop" {
		t.Fatalf("lines %q", got)
	}
}
