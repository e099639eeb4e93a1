//go:build cgo

package seccomp

// The compiled-filter cache. libseccomp takes about 10 ms to compile
// Docker's default profile (~350 syscalls with argument rules) on this
// kind of host; a container start is budgeted at 12 ms in all. Every
// distinct config is therefore compiled once per host and its exported
// program reused.
//
// Key: SHA-256 over
//
//   - cacheFormat (bump it whenever convert or buildFilter change what they
//     build for a given config),
//   - the facts outside the config that can change the program: the
//     libseccomp version and API level, its native architecture, the
//     kernel (uname release, version, machine), and the identity of the
//     running binary (device, inode, size, mtime and ctime of
//     /proc/self/exe), so a rebuilt or upgraded berth never reads what an
//     older build compiled;
//   - the config's JSON (encoding/json of specs.LinuxSeccomp is
//     deterministic: fields in declaration order, no maps) with
//     listenerPath and listenerMetadata cleared: they never reach the
//     filter, and keeping them out lets configs that differ only there
//     share it. The flags are not cached: they are worked out from the
//     config and the running kernel on every Compile (a few µs).
//
// Levels: a map in the process (a runtime that creates several containers,
// and Validate followed by Load), then a file <cacheDir>/<hex key>.bpf
// for the other processes on the host (berth-shim serves one container, a
// berth-runtime command one operation). A file is used only if everything
// checks: not a symlink, a regular file owned by this user and not
// writable by others, in a directory of the same kind; the right size; the
// magic, the key and the SHA-256 of the program stored in it. Anything
// else is a miss: the config is compiled again and the file replaced
// (written to a temporary file, then renamed over it). Failing to read or
// write the cache is never an error: it only costs the compile. After a
// write the directory is trimmed to maxFiles entries, oldest first.
//
// File layout:
//
//	[0:8]   magic "BSCMPBPF"
//	[8:40]  the key
//	[40:44] number of instructions n, little endian
//	[44:76] SHA-256 of the program
//	[76:]   the program, n struct sock_filter (8 bytes each, native order)

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/internal/runtime/seccomp/bpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// cacheFormat names the way this package turns a config into a program
// and the file layout. Change it whenever either changes.
const cacheFormat = "berth seccomp bpf cache v2 (binary tree)"

const (
	fileMagic  = "BSCMPBPF"
	headerSize = 8 + sha256.Size + 4 + sha256.Size
	// memEntries bounds the in-process cache (a long-lived process may
	// see many configs; each entry is a few KiB).
	memEntries = 64
	// maxFiles bounds the file cache: entries of configs no longer used,
	// or written by an older binary, are never read again. When a write
	// takes it past this, the least recently written files go.
	maxFiles = 256
)

type cacheKey [sha256.Size]byte

// compiles counts the filters compiled with libseccomp (tests use it to
// tell a cache hit from a compile).
var compiles atomic.Int64

var memCache = struct {
	sync.Mutex
	m map[cacheKey][]byte
}{m: map[cacheKey][]byte{}}

var hostFacts struct {
	once sync.Once
	// facts is hashed before the config; binaryKnown is false when the
	// running binary could not be identified, and then no file is read
	// or written (the process's own map is still safe).
	facts       []byte
	binaryKnown bool
}

// environment returns the facts outside the config that go into the key.
func environment() ([]byte, bool) {
	hostFacts.once.Do(func() {
		var b bytes.Buffer
		b.WriteString(cacheFormat + "\n")
		maj, minor, micro := libseccomp.GetLibraryVersion()
		api, apiErr := libseccomp.GetAPI()
		fmt.Fprintf(&b, "libseccomp %d.%d.%d api %d %v\n", maj, minor, micro, api, apiErr)
		native, archErr := libseccomp.GetNativeArch()
		fmt.Fprintf(&b, "native %d %v\n", native, archErr)
		var u unix.Utsname
		if err := unix.Uname(&u); err == nil {
			fmt.Fprintf(&b, "kernel %s %s %s\n", unix.ByteSliceToString(u.Release[:]), unix.ByteSliceToString(u.Version[:]), unix.ByteSliceToString(u.Machine[:]))
		}
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/exe", &st); err == nil {
			fmt.Fprintf(&b, "binary %d %d %d %d.%d %d.%d\n", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
			hostFacts.binaryKnown = true
		}
		b.WriteString("config\n")
		hostFacts.facts = b.Bytes()
	})
	return hostFacts.facts, hostFacts.binaryKnown
}

// keyOf is the cache key of s (see the top of this file).
func keyOf(s *specs.LinuxSeccomp) (cacheKey, error) {
	facts, _ := environment()
	c := *s
	c.ListenerPath, c.ListenerMetadata = "", ""
	j, err := json.Marshal(&c)
	if err != nil {
		return cacheKey{}, err
	}
	h := sha256.New()
	h.Write(facts)
	h.Write(j)
	var k cacheKey
	h.Sum(k[:0])
	return k, nil
}

// useFiles reports whether the file cache in dir may be used: a directory
// is given and the running binary is known (it is part of the key).
func useFiles(dir string) bool {
	_, binaryKnown := environment()
	return dir != "" && binaryKnown
}

// lookupFilter returns a copy of the compiled program cached under k: from
// the process's map, else from the file in dir (when not empty); nil when
// neither has it.
func lookupFilter(k cacheKey, dir string) []byte {
	if f := memGet(k); f != nil {
		return f
	}
	if useFiles(dir) {
		if f := readCacheFile(dir, k); f != nil {
			memPut(k, f)
			return bytes.Clone(f)
		}
	}
	return nil
}

// storeFilter caches the freshly compiled f under k in the process's map
// and in dir (when not empty), and returns the caller's own copy of it.
// Failing to write the file only means the next process compiles again.
func storeFilter(k cacheKey, dir string, f []byte) []byte {
	memPut(k, f)
	if useFiles(dir) {
		_ = writeCacheFile(dir, k, f)
	}
	return bytes.Clone(f)
}

func memGet(k cacheKey) []byte {
	memCache.Lock()
	defer memCache.Unlock()
	if f, ok := memCache.m[k]; ok {
		return bytes.Clone(f)
	}
	return nil
}

// memPut keeps f (which the caller no longer modifies) under k.
func memPut(k cacheKey, f []byte) {
	memCache.Lock()
	defer memCache.Unlock()
	if len(memCache.m) >= memEntries {
		clear(memCache.m)
	}
	memCache.m[k] = f
}

// CachePath is the file that holds the compiled filter of s in cacheDir
// (it may not exist), for tests and diagnostics.
func CachePath(s *specs.LinuxSeccomp, cacheDir string) (string, error) {
	k, err := keyOf(s)
	if err != nil {
		return "", err
	}
	return cacheFile(cacheDir, k), nil
}

func cacheFile(dir string, k cacheKey) string {
	return filepath.Join(dir, hex.EncodeToString(k[:])+".bpf")
}

// trustedDir reports whether dir is a directory (not a symlink) owned by
// this user that nobody else may write to.
func trustedDir(dir string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && int(st.Uid) == os.Geteuid() && st.Mode&0o022 == 0
}

// readCacheFile returns the program stored for k in dir, or nil when there
// is none or it does not check out in every respect.
func readCacheFile(dir string, k cacheKey) []byte {
	if !trustedDir(dir) {
		return nil
	}
	fd, err := unix.Open(cacheFile(dir, k), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil
	}
	const maxSize = headerSize + bpf.MaxInstructions*bpf.InsnSize
	if st.Mode&unix.S_IFMT != unix.S_IFREG || int(st.Uid) != os.Geteuid() || st.Mode&0o022 != 0 ||
		st.Size <= headerSize || st.Size > maxSize {
		return nil
	}
	// One byte more than expected, to notice a file that grew.
	buf := make([]byte, st.Size+1)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil
		}
		if m == 0 {
			break
		}
		n += m
	}
	return decodeCacheFile(buf[:n], k)
}

// decodeCacheFile returns the program in b if b is a complete cache file
// for k, else nil.
func decodeCacheFile(b []byte, k cacheKey) []byte {
	if len(b) <= headerSize || string(b[:8]) != fileMagic || !bytes.Equal(b[8:40], k[:]) {
		return nil
	}
	count := binary.LittleEndian.Uint32(b[40:44])
	prog := b[headerSize:]
	if count == 0 || count > bpf.MaxInstructions || uint64(len(prog)) != uint64(count)*bpf.InsnSize {
		return nil
	}
	if sum := sha256.Sum256(prog); !bytes.Equal(sum[:], b[44:76]) {
		return nil
	}
	return prog
}

func encodeCacheFile(k cacheKey, prog []byte) []byte {
	b := make([]byte, headerSize, headerSize+len(prog))
	copy(b, fileMagic)
	copy(b[8:40], k[:])
	binary.LittleEndian.PutUint32(b[40:44], uint32(len(prog)/bpf.InsnSize))
	sum := sha256.Sum256(prog)
	copy(b[44:76], sum[:])
	return append(b, prog...)
}

// writeCacheFile stores prog for k in dir (created, mode 0700, if
// missing): a temporary file (0600) renamed into place, so that a reader
// sees either the old file or the whole new one.
func writeCacheFile(dir string, k cacheKey, prog []byte) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if !trustedDir(dir) {
		return fmt.Errorf("seccomp cache %s: not a private directory of this user", dir)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*.bpf")
	if err != nil {
		return err
	}
	_, err = tmp.Write(encodeCacheFile(k, prog))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), cacheFile(dir, k))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	pruneCache(dir, maxFiles)
	return nil
}

// pruneCache removes the oldest files of the cache in dir until at most
// keep remain, and temporary files left by a writer that died (older than
// a minute). It runs after a compile, never on a hit.
func pruneCache(dir string, keep int) {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) <= keep {
		return
	}
	type file struct {
		name string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		if strings.HasPrefix(e.Name(), ".tmp-") {
			if time.Since(info.ModTime()) > time.Minute {
				os.Remove(filepath.Join(dir, e.Name()))
			}
			continue
		}
		files = append(files, file{e.Name(), info.ModTime()})
	}
	if len(files) <= keep {
		return
	}
	slices.SortFunc(files, func(a, b file) int { return b.mod.Compare(a.mod) })
	for _, f := range files[keep:] {
		os.Remove(filepath.Join(dir, f.name))
	}
}
