//go:build cgo

package seccomp

import (
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"time"
)

// warmFiles is how many of the newest cache files Warm reads.
const warmFiles = 4

// Warm does ahead, at idle time, what the first Compile of a fresh
// process does on a container's path: it works out the host facts of the
// key (libseccomp's version and architecture through cgo, uname, the
// running binary) and reads the newest programs of the file cache in
// cacheDir into the process's map, each checked as a lookup checks it
// (trusted directory, regular file of ours, header key, length, SHA-256).
// A warm spare shim calls it while it waits for its container (0.1 ms on
// the create path otherwise, with Docker's profile). Nothing is compiled.
func Warm(cacheDir string) {
	environment()
	if !useFiles(cacheDir) || !trustedDir(cacheDir) {
		return
	}
	ents, err := os.ReadDir(cacheDir)
	if err != nil {
		return
	}
	type file struct {
		k   cacheKey
		mod time.Time
	}
	var files []file
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".bpf")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		var k cacheKey
		if b, err := hex.DecodeString(name); err != nil || len(b) != len(k) {
			continue
		} else {
			copy(k[:], b)
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, file{k, info.ModTime()})
	}
	slices.SortFunc(files, func(a, b file) int { return b.mod.Compare(a.mod) })
	for _, f := range files[:min(len(files), warmFiles)] {
		if memGet(f.k) != nil {
			continue
		}
		if prog := readCacheFile(cacheDir, f.k); prog != nil {
			memPut(f.k, prog)
		}
	}
}
