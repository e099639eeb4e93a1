package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
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
