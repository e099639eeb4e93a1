package logger

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// fileCases is the conformance suite's list of file driver setups.
var fileCases = []struct {
	name string
	typ  string
	opts map[string]string
}{
	{"json-file", JSONFile, map[string]string{"max-size": "2k", "max-file": "1000"}},
	{"json-file-compress", JSONFile, map[string]string{"max-size": "2k", "max-file": "1000", "compress": "true"}},
	{"json-file-unbounded", JSONFile, map[string]string{"max-size": "-1"}},
	{"json-file-dropping", JSONFile, map[string]string{"max-size": "2k", "max-file": "3", "compress": "true"}},
	{"local", Local, map[string]string{"max-size": "2k", "max-file": "1000"}},
	{"local-plain", Local, map[string]string{"max-size": "2k", "max-file": "1000", "compress": "false"}},
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func testConfig(t testing.TB, typ string, opts map[string]string) Config {
	return Config{Type: typ, Opts: opts, Dir: t.TempDir(), ContainerID: "c0ffee0123456789", ContainerName: "/t"}
}

// testMessage is message i of the suite: time t0+i ms, some on stderr,
// some partial, some with characters that need escaping.
func testMessage(i int) *Message {
	m := &Message{Source: "stdout", Timestamp: t0.Add(time.Duration(i) * time.Millisecond)}
	if i%7 == 0 {
		m.Source = "stderr"
	}
	m.Partial = i%11 == 0
	m.Line = []byte(fmt.Sprintf("n=%06d %s \"<é>\t\x01 %s", i, strings.Repeat("x", i%50), string([]byte{0xff})))
	return m
}

func seqOf(t testing.TB, m *Message) int {
	t.Helper()
	n, err := strconv.Atoi(string(m.Line[2:8]))
	if err != nil {
		t.Fatalf("bad line %q", m.Line)
	}
	return n
}

func writeMessages(t testing.TB, l Logger, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := l.Log(testMessage(i)); err != nil {
			t.Fatal(err)
		}
	}
}

type got struct {
	seq     int
	line    string
	source  string
	partial bool
	ts      time.Time
}

func read(t testing.TB, r LogReader, rc ReadConfig) []got {
	t.Helper()
	var out []got
	err := r.ReadLogs(context.Background(), rc, func(m *Message) error {
		out = append(out, got{seqOf(t, m), string(m.Line), m.Source, m.Partial, m.Timestamp})
		return nil
	})
	if err != nil {
		t.Fatalf("ReadLogs(%+v): %v", rc, err)
	}
	return out
}

func seqs(g []got) []int {
	s := make([]int, len(g))
	for i := range g {
		s[i] = g[i].seq
	}
	return s
}

func span(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReaderSuite(t *testing.T) {
	const n = 600
	for _, tc := range fileCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, tc.typ, tc.opts)
			l, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			writeMessages(t, l, 0, n)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			checkFiles(t, cfg)
			r, err := NewReader(cfg)
			if err != nil {
				t.Fatal(err)
			}
			all := read(t, r, ReadConfig{Tail: -1})
			first := n - len(all)
			if tc.name != "json-file-dropping" && first != 0 {
				t.Fatalf("read %d of %d records", len(all), n)
			}
			if first == 0 && tc.name == "json-file-dropping" {
				t.Fatal("max-file=3 kept everything")
			}
			if !equalInts(seqs(all), span(first, n)) {
				t.Fatalf("records out of order or missing: %v", seqs(all))
			}
			for _, g := range all {
				w := testMessage(g.seq)
				want := strings.ToValidUTF8(string(w.Line), "\ufffd")
				if tc.typ == Local {
					want = string(w.Line)
				}
				if g.line != want || g.source != w.Source || g.partial != w.Partial || !g.ts.Equal(w.Timestamp) {
					t.Fatalf("record %d = %+v, want %q %s partial=%v %v", g.seq, g, want, w.Source, w.Partial, w.Timestamp)
				}
			}
			for _, k := range []int{0, 1, 5, 37, 120, len(all) - 1, len(all), len(all) + 10} {
				if s := seqs(read(t, r, ReadConfig{Tail: k})); !equalInts(s, span(max(first, n-k), n)) {
					t.Fatalf("tail %d = %v", k, s)
				}
			}
			at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }
			for _, c := range []struct {
				rc       ReadConfig
				from, to int
			}{
				{ReadConfig{Tail: -1, Since: at(n - 50)}, n - 50, n},
				{ReadConfig{Tail: -1, Since: at(n - 50).Add(-time.Microsecond)}, n - 50, n},
				{ReadConfig{Tail: -1, Since: at(n - 50).Add(time.Microsecond)}, n - 49, n},
				{ReadConfig{Tail: -1, Since: at(first + 3)}, first + 3, n},
				{ReadConfig{Tail: -1, Since: at(n + 3)}, 0, 0},
				{ReadConfig{Tail: -1, Since: at(-5)}, first, n},
				{ReadConfig{Tail: -1, Until: at(first + 20)}, first, first + 21},
				{ReadConfig{Tail: -1, Until: at(first + 20).Add(-time.Microsecond)}, first, first + 20},
				{ReadConfig{Tail: -1, Until: at(-1)}, 0, 0},
				{ReadConfig{Tail: -1, Since: at(n - 300), Until: at(n - 100)}, n - 300, n - 99},
				{ReadConfig{Tail: 10, Since: at(n - 300), Until: at(n - 100)}, n - 109, n - 99},
				{ReadConfig{Tail: 500, Since: at(n - 30)}, n - 30, n},
				{ReadConfig{Tail: 3, Until: at(n - 200)}, n - 202, n - 199},
			} {
				from, to := max(c.from, first), c.to
				want := span(from, to)
				if s := seqs(read(t, r, c.rc)); !equalInts(s, want) {
					t.Fatalf("read %+v = %v, want %v", c.rc, s, want)
				}
			}
		})
	}
}

// checkFiles asserts the rotation produced the expected file names.
func checkFiles(t *testing.T, cfg Config) {
	t.Helper()
	base := filePath(cfg)
	ents, _ := os.ReadDir(filepath.Dir(base))
	var names []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".lock") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	o, _ := fileOptions(cfg)
	has := func(n string) bool { return contains(names, n) }
	b := filepath.Base(base)
	if !has(b) {
		t.Fatalf("no current file %s in %v", b, names)
	}
	if o.maxSize < 0 {
		if len(names) != 1 {
			t.Fatalf("unbounded log rotated: %v", names)
		}
		return
	}
	if len(names) > o.maxFiles {
		t.Fatalf("%d files, max-file %d: %v", len(names), o.maxFiles, names)
	}
	if o.compress && (!has(b+".1.gz") || has(b+".1")) || !o.compress && !has(b+".1") {
		t.Fatalf("compress=%v, files %v", o.compress, names)
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			t.Fatalf("temporary file left: %v", names)
		}
	}
}

func TestReadMissingLog(t *testing.T) {
	r, err := NewReader(testConfig(t, JSONFile, nil))
	if err != nil {
		t.Fatal(err)
	}
	if g := read(t, r, ReadConfig{Tail: -1}); len(g) != 0 {
		t.Fatalf("read %v", g)
	}
}

func TestReadStopsOnCallbackError(t *testing.T) {
	cfg := testConfig(t, JSONFile, nil)
	l, _ := New(cfg)
	writeMessages(t, l, 0, 10)
	_ = l.Close()
	r, _ := NewReader(cfg)
	boom := errors.New("client went away")
	n := 0
	err := r.ReadLogs(context.Background(), ReadConfig{Tail: -1}, func(*Message) error { n++; return boom })
	if err != boom || n != 1 {
		t.Fatalf("err %v after %d records", err, n)
	}
}

// A record being written (a torn tail) is not returned and does not
// break tail or since.
func TestTornTail(t *testing.T) {
	for _, tc := range []struct{ typ string }{{JSONFile}, {Local}} {
		cfg := testConfig(t, tc.typ, map[string]string{"max-size": "-1"})
		l, _ := New(cfg)
		writeMessages(t, l, 0, 20)
		_ = l.Close()
		var f format = jsonFormat{}
		if tc.typ == Local {
			f = localFormat{}
		}
		rec := f.appendRecord(nil, testMessage(20), nil)
		fh, _ := os.OpenFile(filePath(cfg), os.O_WRONLY|os.O_APPEND, 0)
		_, _ = fh.Write(rec[:len(rec)/2])
		_ = fh.Close()
		r, _ := NewReader(cfg)
		if s := seqs(read(t, r, ReadConfig{Tail: 2})); !equalInts(s, []int{18, 19}) {
			t.Fatalf("%s tail over torn record = %v", tc.typ, s)
		}
		if s := seqs(read(t, r, ReadConfig{Tail: -1, Since: t0.Add(15 * time.Millisecond)})); !equalInts(s, span(15, 20)) {
			t.Fatalf("%s since over torn record = %v", tc.typ, s)
		}
	}
}

func TestFollowRotation(t *testing.T) {
	for _, tc := range fileCases {
		if tc.name == "json-file-dropping" {
			continue // a follower slower than 3 files may lose the oldest
		}
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, tc.typ, tc.opts)
			l, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			writeMessages(t, l, 0, 30)
			r, _ := NewReader(cfg)
			stopped := make(chan struct{})
			var mu sync.Mutex
			var out []int
			done := make(chan error, 1)
			go func() {
				done <- r.ReadLogs(context.Background(), ReadConfig{Tail: 10, Follow: true, Stopped: stopped}, func(m *Message) error {
					mu.Lock()
					out = append(out, seqOf(t, m))
					k := len(out)
					mu.Unlock()
					if k%200 == 0 {
						time.Sleep(30 * time.Millisecond) // let the writer rotate several times
					}
					return nil
				})
			}()
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				mu.Lock()
				k := len(out)
				mu.Unlock()
				if k == 10 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("tail delivered %d records", k)
				}
			}
			const n = 1500
			for i := 30; i < n; i++ {
				if err := l.Log(testMessage(i)); err != nil {
					t.Fatal(err)
				}
				if i%300 == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			close(stopped)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("follower did not stop after Stopped was closed")
			}
			if !equalInts(out, span(20, n)) {
				t.Fatalf("followed %d records, want 20..%d: first %v last %v", len(out), n, out[:min(len(out), 5)], out[max(0, len(out)-5):])
			}
		})
	}
}

func TestFollowCancelAndUntil(t *testing.T) {
	cfg := testConfig(t, JSONFile, nil)
	r, _ := NewReader(cfg) // the file does not exist yet
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var mu sync.Mutex
	var out []int
	go func() {
		done <- r.ReadLogs(ctx, ReadConfig{Tail: -1, Follow: true}, func(m *Message) error {
			mu.Lock()
			out = append(out, seqOf(t, m))
			mu.Unlock()
			return nil
		})
	}()
	l, _ := New(cfg)
	defer l.Close()
	writeMessages(t, l, 0, 5)
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		k := len(out)
		mu.Unlock()
		if k == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower saw %d of 5 records", k)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("follow after cancel: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follower ignored cancellation")
	}

	// Until in the future: the follow ends at the first later record.
	until := t0.Add(7 * time.Millisecond)
	errc := make(chan error, 1)
	var got2 []int
	go func() {
		errc <- r.ReadLogs(context.Background(), ReadConfig{Tail: -1, Follow: true, Until: until}, func(m *Message) error {
			got2 = append(got2, seqOf(t, m))
			return nil
		})
	}()
	// t0 is in the past, so Docker's rule applies: no follow at all.
	select {
	case err := <-errc:
		if err != nil || !equalInts(got2, span(0, 5)) {
			t.Fatalf("until in the past: %v %v", got2, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow with a past until did not return")
	}
}

func TestConcurrentWriteRead(t *testing.T) {
	for _, tc := range fileCases[:2] {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, tc.typ, map[string]string{"max-size": "4k", "max-file": "4", "compress": tc.opts["compress"]})
			if cfg.Opts["compress"] == "" {
				delete(cfg.Opts, "compress")
			}
			l, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			r, _ := NewReader(cfg)
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for g := 0; g < 2; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for ctx.Err() == nil {
						rc := ReadConfig{Tail: -1}
						if g == 1 {
							rc.Tail = 25
						}
						prev := -1
						err := r.ReadLogs(ctx, rc, func(m *Message) error {
							s, err := strconv.Atoi(string(m.Line[2:8]))
							if err != nil || (prev >= 0 && s != prev+1) {
								return fmt.Errorf("record %d after %d (%q)", s, prev, m.Line)
							}
							prev = s
							return nil
						})
						if err != nil && !errors.Is(err, context.Canceled) {
							errs <- err
							return
						}
					}
				}(g)
			}
			writeMessages(t, l, 0, 3000)
			cancel()
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

func TestReaderClass(t *testing.T) {
	if _, err := NewReader(Config{Type: "gelf"}); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("unknown driver: %v", err)
	}
}

// A record torn by a failed write and followed by more records is
// skipped; the records around it read.
func TestDamagedRecordSkipped(t *testing.T) {
	for _, typ := range []string{JSONFile, Local} {
		cfg := testConfig(t, typ, map[string]string{"max-size": "-1"})
		l, _ := New(cfg)
		writeMessages(t, l, 0, 5)
		_ = l.Close()
		var f format = jsonFormat{}
		if typ == Local {
			f = localFormat{}
		}
		rec := f.appendRecord(nil, testMessage(5), nil)
		fh, _ := os.OpenFile(filePath(cfg), os.O_WRONLY|os.O_APPEND, 0)
		_, _ = fh.Write(rec[:len(rec)-3])
		_ = fh.Close()
		l, err := New(cfg) // a restarted shim appends to the same file
		if err != nil {
			t.Fatal(err)
		}
		writeMessages(t, l, 6, 10)
		_ = l.Close()
		r, _ := NewReader(cfg)
		want := []int{0, 1, 2, 3, 4, 6, 7, 8, 9}
		if typ == JSONFile {
			want = []int{0, 1, 2, 3, 4, 7, 8, 9} // the torn line swallows the next
		}
		if s := seqs(read(t, r, ReadConfig{Tail: -1})); !equalInts(s, want) {
			t.Fatalf("%s: read %v, want %v", typ, s, want)
		}
		// tail walks backwards over the damage
		if s := seqs(read(t, r, ReadConfig{Tail: 7})); !equalInts(s, want[len(want)-6:]) && !equalInts(s, want[len(want)-7:]) {
			t.Fatalf("%s: tail 7 over damage = %v", typ, s)
		}
		for _, since := range []int{3, 7} {
			w := want[since:]
			if since == 7 {
				w = []int{7, 8, 9}
			}
			if s := seqs(read(t, r, ReadConfig{Tail: -1, Since: t0.Add(time.Duration(since) * time.Millisecond)})); !equalInts(s, w) {
				t.Fatalf("%s: since %d over damage = %v", typ, since, s)
			}
		}
	}
}

func TestFollowUntilFutureAndTruncation(t *testing.T) {
	cfg := testConfig(t, JSONFile, map[string]string{"max-size": "1k", "max-file": "1"})
	l, _ := New(cfg)
	defer l.Close()
	r, _ := NewReader(cfg)
	base := time.Now().UTC()
	errc := make(chan error, 1)
	var mu sync.Mutex
	var out []int
	go func() {
		errc <- r.ReadLogs(context.Background(), ReadConfig{Tail: -1, Follow: true, Until: base.Add(2 * time.Second)}, func(m *Message) error {
			mu.Lock()
			out = append(out, seqOf(t, m))
			mu.Unlock()
			return nil
		})
	}()
	// max-file=1 truncates at 1k: the follower restarts at offset 0.
	for i := 0; i < 40; i++ {
		m := testMessage(i)
		m.Timestamp = base.Add(time.Duration(i) * time.Millisecond)
		if err := l.Log(m); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	m := testMessage(99)
	m.Timestamp = base.Add(3 * time.Second) // after until: ends the follow
	_ = l.Log(m)
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("follow did not end at until")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(out) < 30 || out[len(out)-1] != 39 {
		t.Fatalf("followed %v", out)
	}
	for i := 1; i < len(out); i++ {
		if out[i] <= out[i-1] {
			t.Fatalf("not increasing: %v", out)
		}
	}
}

func TestNewNeedsDir(t *testing.T) {
	if _, err := New(Config{ContainerID: "x"}); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("New without Dir: %v", err)
	}
}

func TestAttrsRoundTrip(t *testing.T) {
	for _, typ := range []string{JSONFile, Local} {
		cfg := testConfig(t, typ, map[string]string{"labels": "app", "env": "LANG", "tag": "{{.Name}}"})
		cfg.Labels = map[string]string{"app": "shop", "other": "x"}
		cfg.Env = map[string]string{"LANG": "C"}
		l, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		writeMessages(t, l, 0, 3)
		_ = l.Close()
		if typ == JSONFile {
			b, _ := os.ReadFile(filePath(cfg))
			if !strings.Contains(string(b), `,"attrs":{"LANG":"C","app":"shop","tag":"t"},"time":"`) {
				t.Fatalf("json-file attrs: %s", b)
			}
		}
		r, _ := NewReader(cfg)
		n := 0
		err = r.ReadLogs(context.Background(), ReadConfig{Tail: -1}, func(m *Message) error {
			n++
			if len(m.Attrs) != 3 || m.Attrs["app"] != "shop" || m.Attrs["LANG"] != "C" || m.Attrs["tag"] != "t" || seqOf(t, m) != n-1 {
				return fmt.Errorf("%s record %d: attrs %v line %q", typ, n, m.Attrs, m.Line)
			}
			return nil
		})
		if err != nil || n != 3 {
			t.Fatalf("%s: %d records, %v", typ, n, err)
		}
	}
}

// TestReadCost proves without timing that tail and since read about what
// they return, not the file: bytes read from an 8 MB log are counted.
func TestReadCost(t *testing.T) {
	for _, typ := range []string{JSONFile, Local} {
		cfg := testConfig(t, typ, map[string]string{"max-size": "2m", "max-file": "10", "compress": "false"})
		l, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for size := int64(0); size < 8<<20; n++ {
			m := testMessage(n)
			if err := l.Log(m); err != nil {
				t.Fatal(err)
			}
			size += int64(len(m.Line) + 60)
		}
		_ = l.Close()
		rd, _ := NewReader(cfg)
		r := rd.(*fileReader)
		var read int64
		r.read = &read
		at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Millisecond) }
		for _, c := range []struct {
			name  string
			rc    ReadConfig
			want  int
			limit int64
		}{
			{"tail 10", ReadConfig{Tail: 10}, 10, 32 << 10},
			{"since last 10", ReadConfig{Tail: -1, Since: at(n - 10)}, 10, 128 << 10},
			{"until first 10", ReadConfig{Tail: -1, Until: at(9)}, 10, 128 << 10},
			{"tail 10 until middle", ReadConfig{Tail: 10, Until: at(n / 2)}, 10, 128 << 10},
			{"everything", ReadConfig{Tail: -1}, n, 1 << 40},
		} {
			read = 0
			if g := read2(t, r, c.rc); g != c.want {
				t.Fatalf("%s %s: %d records, want %d", typ, c.name, g, c.want)
			}
			if read > c.limit {
				t.Errorf("%s %s: read %d bytes of a %d-record log (limit %d)", typ, c.name, read, n, c.limit)
			}
			t.Logf("%s %s: %d bytes read", typ, c.name, read)
		}
	}
}

func read2(t *testing.T, r LogReader, rc ReadConfig) int {
	return len(read(t, r, rc))
}

// A follower that has read nothing yet (tail 0) must still recognise its
// file once it has been rotated and compressed, and not replay history.
// The rotation is done by hand under the log's lock, so the follower can
// only look once the old file exists as .1.gz alone.
func TestFollowTail0AcrossCompressedRotation(t *testing.T) {
	cfg := testConfig(t, JSONFile, map[string]string{"max-size": "-1"})
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeMessages(t, l, 0, 5)
	_ = l.Close()
	r, _ := NewReader(cfg)
	stopped := make(chan struct{})
	var out []int
	done := make(chan error, 1)
	go func() {
		done <- r.ReadLogs(context.Background(), ReadConfig{Tail: 0, Follow: true, Stopped: stopped}, func(m *Message) error {
			out = append(out, seqOf(t, m))
			return nil
		})
	}()
	time.Sleep(100 * time.Millisecond) // let it park on the current file

	path := filePath(cfg)
	unlock, err := lockLog(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Extra = gzipExtra(testMessage(0).Timestamp.UnixNano(), testMessage(4).Timestamp.UnixNano())
	_, _ = zw.Write(old)
	_ = zw.Close()
	if err := os.WriteFile(path+".1.gz", gz.Bytes(), 0o640); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(path + ".1")
	l, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeMessages(t, l, 5, 8)
	_ = l.Close()
	unlock()

	close(stopped)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !equalInts(out, span(5, 8)) {
		t.Fatalf("followed %v, want [5 6 7]", out)
	}
}

func TestZeroTimestampIsNow(t *testing.T) {
	cfg := testConfig(t, JSONFile, nil)
	l, _ := New(cfg)
	before := time.Now()
	_ = l.Log(&Message{Line: []byte("n=000001 x"), Source: "stdout"})
	_ = l.Close()
	r, _ := NewReader(cfg)
	g := read(t, r, ReadConfig{Tail: -1})
	if len(g) != 1 || g[0].ts.Before(before.Add(-time.Second)) || g[0].ts.After(time.Now()) {
		t.Fatalf("read %+v", g)
	}
}
