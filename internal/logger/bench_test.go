package logger

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The benchmarks read a log of benchMB megabytes (200 by default, env
// BERTH_LOGGER_BENCH_MB) in json-file format: Tail and Since must cost
// about the same for any size, the full scan grows with the file.
//
//	go test -run '^$' -bench . -benchtime 20x ./internal/logger

var (
	benchOnce sync.Once
	benchDir  string
	benchN    int
	benchErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		_ = os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchLog writes the fixture once per process: one unbounded file, and
// the same records rotated into 20 MB files.
func benchLog(b *testing.B) (single, rotated Config) {
	benchOnce.Do(func() {
		mb := 200
		if s := os.Getenv("BERTH_LOGGER_BENCH_MB"); s != "" {
			mb, _ = strconv.Atoi(s)
		}
		benchDir, benchErr = os.MkdirTemp("", "berth-logger-bench-")
		if benchErr != nil {
			return
		}
		single = Config{Dir: filepath.Join(benchDir, "single"), ContainerID: "bench", Opts: map[string]string{"max-size": "-1"}}
		rotated = Config{Dir: filepath.Join(benchDir, "rotated"), ContainerID: "bench", Opts: map[string]string{"max-size": "20m", "max-file": "100"}}
		_ = os.MkdirAll(single.Dir, 0o700)
		f, err := os.Create(filePath(single))
		if err != nil {
			benchErr = err
			return
		}
		w := bufio.NewWriterSize(f, 1<<20)
		rl, err := New(rotated)
		if err != nil {
			benchErr = err
			return
		}
		var buf []byte
		size := 0
		for i := 0; size < mb<<20; i++ {
			m := testMessage(i)
			buf = jsonFormat{}.appendRecord(buf[:0], m, nil)
			_, _ = w.Write(buf)
			size += len(buf)
			if err := rl.Log(m); err != nil {
				benchErr = err
				return
			}
			benchN = i + 1
		}
		if err := w.Flush(); err != nil {
			benchErr = err
		}
		_ = f.Close()
		_ = rl.Close()
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	single = Config{Dir: filepath.Join(benchDir, "single"), ContainerID: "bench", Opts: map[string]string{"max-size": "-1"}}
	rotated = Config{Dir: filepath.Join(benchDir, "rotated"), ContainerID: "bench", Opts: map[string]string{"max-size": "20m", "max-file": "100"}}
	return single, rotated
}

func benchRead(b *testing.B, cfg Config, rc ReadConfig, want int) {
	r, err := NewReader(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := 0
		if err := r.ReadLogs(context.Background(), rc, func(*Message) error { n++; return nil }); err != nil {
			b.Fatal(err)
		}
		if want >= 0 && n != want {
			b.Fatalf("read %d records, want %d", n, want)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	single, rotated := benchLog(b)
	last10 := t0.Add(time.Duration(benchN-10) * time.Millisecond)
	mid := t0.Add(time.Duration(benchN/2) * time.Millisecond)
	for _, c := range []struct {
		name string
		cfg  Config
		rc   ReadConfig
		want int
	}{
		{"tail10/single", single, ReadConfig{Tail: 10}, 10},
		{"tail10/rotated", rotated, ReadConfig{Tail: 10}, 10},
		{"since-last10/single", single, ReadConfig{Tail: -1, Since: last10}, 10},
		{"since-last10/rotated", rotated, ReadConfig{Tail: -1, Since: last10}, 10},
		{"until-mid-tail10/rotated", rotated, ReadConfig{Tail: 10, Until: mid}, 10},
		{"fullscan/single", single, ReadConfig{Tail: -1}, benchN},
	} {
		b.Run(fmt.Sprintf("%s/%dMB", c.name, fileSizeMB(c.cfg)), func(b *testing.B) { benchRead(b, c.cfg, c.rc, c.want) })
	}
}

func fileSizeMB(cfg Config) int64 {
	var total int64
	matches, _ := filepath.Glob(filePath(cfg) + "*")
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil {
			total += st.Size()
		}
	}
	return total >> 20
}

// BenchmarkLog is the shim's per-record cost of json-file.
func BenchmarkLog(b *testing.B) {
	for _, typ := range []string{JSONFile, Local} {
		b.Run(typ, func(b *testing.B) {
			l, err := New(Config{Type: typ, Dir: b.TempDir(), ContainerID: "bench", Opts: map[string]string{"max-size": "10m", "max-file": "2", "compress": "false"}})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			m := testMessage(1)
			b.ReportAllocs()
			b.SetBytes(int64(len(m.Line)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := l.Log(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
