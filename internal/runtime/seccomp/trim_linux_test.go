//go:build cgo

package seccomp

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

func init() { scenarios["c-heap"] = scenarioCHeap }

// cHeapRSS is the resident size in KiB of this process's C heap (the
// [heap] mapping glibc grows with brk), 0 without one.
func cHeapRSS() int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return -1
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasSuffix(l, "[heap]") {
			in = true
			continue
		}
		if in && strings.HasPrefix(l, "Rss:") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// scenarioCHeap compiles Docker's default profile with libseccomp (no
// cache) in a fresh process and reports how much the C heap kept.
func scenarioCHeap(string) (result, error) {
	s, err := loadDockerDefault()
	if err != nil {
		return nil, err
	}
	before := cHeapRSS()
	p, err := convert(s)
	if err != nil {
		return nil, err
	}
	if _, err := compileFilter(p); err != nil {
		return nil, err
	}
	return result{"grown": strconv.Itoa(cHeapRSS() - before)}, nil
}

// TestCompileGivesBackCHeap: compiling Docker's profile leaves little of
// libseccomp's C heap resident (it grew ~1.1 MiB and glibc kept it: a
// shim that compiled its container's filter stayed ~1.1 MiB larger for
// the container's life).
func TestCompileGivesBackCHeap(t *testing.T) {
	res := runScenario(t, "c-heap")
	grown, err := strconv.Atoi(res["grown"])
	if err != nil {
		t.Fatalf("result %v", res)
	}
	t.Logf("C heap grew %d KiB", grown)
	if grown > 256 {
		t.Fatalf("the C heap kept %d KiB after the compile", grown)
	}
}
