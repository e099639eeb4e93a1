//go:build cgo

package seccomp

import (
	"os"
	"path/filepath"
	"testing"
)

// TestWarm: Warm reads the programs of the file cache into the process's
// map, so the next Compile of their configs finds them there; a file that
// does not check out (here: another program under the key's name) is not
// read.
func TestWarm(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	s := dockerDefault(t)
	clearMem := func() {
		memCache.Lock()
		clear(memCache.m)
		memCache.Unlock()
	}
	clearMem() // so that Compile writes the file
	want, err := Compile(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyOf(s)
	if err != nil {
		t.Fatal(err)
	}
	clearMem()
	t.Cleanup(clearMem)
	Warm(dir)
	if got := memGet(k); got == nil || string(got) != string(want.Filter) {
		t.Fatalf("after Warm the program is not in the process's cache (%d bytes)", len(got))
	}
	// Compile finds it in the map now: the file can even be gone.
	if err := os.Remove(cacheFile(dir, k)); err != nil {
		t.Fatal(err)
	}
	before := compiles.Load()
	if p, err := Compile(s, dir); err != nil || string(p.Filter) != string(want.Filter) || compiles.Load() != before {
		t.Errorf("compile after Warm: %v, compiled %d times", err, compiles.Load()-before)
	}

	// A file whose contents are not the key's program is not taken.
	clearMem()
	bad := encodeCacheFile(k, want.Filter)
	bad[len(bad)-1] ^= 0xff
	if err := os.WriteFile(cacheFile(dir, k), bad, 0o600); err != nil {
		t.Fatal(err)
	}
	Warm(dir)
	if memGet(k) != nil {
		t.Error("Warm read a cache file that does not check out")
	}
	Warm(filepath.Join(dir, "missing")) // nothing there: no error, nothing read
}
