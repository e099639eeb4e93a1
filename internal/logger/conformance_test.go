package logger

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestLoggerConformance runs every Logger, fakes included, through the
// contract in the Logger doc: concurrent Log is safe, Log does not keep
// the message (the caller reuses it at once), Close is idempotent, and
// Log after Close fails (none excepted: it discards everything).
func TestLoggerConformance(t *testing.T) {
	cases := map[string]func(t *testing.T) Logger{
		"fake": func(t *testing.T) Logger { return &recLogger{} },
		"none": func(t *testing.T) Logger { return mustNew(t, Config{Type: None}) },
		"json-file": func(t *testing.T) Logger {
			return mustNew(t, testConfig(t, JSONFile, map[string]string{"max-size": "3k", "max-file": "3", "compress": "true"}))
		},
		"local": func(t *testing.T) Logger {
			return mustNew(t, testConfig(t, Local, map[string]string{"max-size": "3k"}))
		},
		"syslog": func(t *testing.T) Logger {
			addr, ch := fakeSyslog(t, "unixgram")
			go func() {
				for range ch {
				}
			}()
			return mustNew(t, Config{Type: Syslog, Opts: map[string]string{"syslog-address": addr}, ContainerID: "abc"})
		},
		"journald": func(t *testing.T) Logger {
			path, srv := fakeJournal(t)
			go func() {
				buf := make([]byte, 1<<16)
				for {
					if _, err := srv.Read(buf); err != nil {
						return
					}
				}
			}()
			return mustNew(t, Config{Type: Journald, JournalSocket: path, ContainerID: "abc"})
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			l := mk(t)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					m := &Message{Source: "stdout"}
					buf := make([]byte, 0, 64)
					for i := 0; i < 200; i++ {
						buf = fmt.Appendf(buf[:0], "g%d line %d", g, i)
						m.Line, m.Timestamp = buf, time.Now()
						if err := l.Log(m); err != nil {
							errs <- err
							return
						}
						for j := range buf { // the caller reuses its buffer at once
							buf[j] = 'X'
						}
					}
				}(g)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if err := l.Log(&Message{Line: []byte("late")}); (err == nil) != (name == "none" || name == "fake") {
				t.Fatalf("Log after Close = %v", err)
			}
		})
	}
}

func mustNew(t *testing.T, cfg Config) Logger {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
