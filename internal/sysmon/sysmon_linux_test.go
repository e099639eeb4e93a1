package sysmon

import (
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func slackOf(t *testing.T, tid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(tid) + "/timerslack_ns")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSlacken: the first thread the runtime created after the main thread
// (sysmon) gets the slack; no other thread's changes.
func TestSlacken(t *testing.T) {
	names, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var tids []int
	for _, e := range names {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			t.Fatal(err)
		}
		tids = append(tids, tid)
	}
	sort.Ints(tids)
	pid := os.Getpid()
	if len(tids) < 2 || tids[0] != pid {
		t.Fatalf("threads %v of process %d: not in creation order", tids, pid)
	}
	before := map[int]int64{}
	for _, tid := range tids {
		before[tid] = slackOf(t, tid)
	}
	want := before[tids[1]] + 12345
	Slacken(want)
	defer Slacken(before[tids[1]])
	for _, tid := range tids {
		got := slackOf(t, tid)
		switch {
		case tid == tids[1] && got != want:
			t.Errorf("sysmon (thread %d): slack %d, want %d", tid, got, want)
		case tid != tids[1] && got != before[tid]:
			t.Errorf("thread %d: slack %d, was %d", tid, got, before[tid])
		}
	}
}
