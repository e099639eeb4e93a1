package metadata

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The crash test re-executes the test binary as a writer that commits
// transactions in a loop, SIGKILLs it at a random moment (nearly always in
// the middle of a transaction, since that is where it spends its time),
// and checks that the database opens, passes bbolt's structural check and
// holds whole transactions only: every key written by one transaction
// carries the same generation, which is the last committed one.

const (
	crashChildEnv = "BERTH_METADATA_CRASH_WRITER"
	crashKeys     = 1000 // values of 512 bytes: ~500 KiB rewritten per transaction
)

func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		crashWriter(path)
		return
	}
	os.Exit(m.Run())
}

func genBytes(gen uint64) []byte { return binary.BigEndian.AppendUint64(nil, gen) }

func crashKey(i int) []byte { return []byte(fmt.Sprintf("key-%05d", i)) }

// crashWriter is the child: it prints "b N" before and "c N" after
// committing generation N, forever (or for a minute, should the parent
// vanish without killing it).
func crashWriter(path string) {
	db, err := Open(path, WithLockTimeout(10*time.Second))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var gen uint64
		err := db.Update(ctx, func(tx *Tx) error {
			b, err := tx.Bucket("crash")
			if err != nil {
				return err
			}
			if v := b.Get([]byte("gen")); v != nil {
				gen = binary.BigEndian.Uint64(v)
			}
			gen++
			fmt.Printf("b %d\n", gen)
			val := bytes.Repeat(genBytes(gen), 64)
			for i := 0; i < crashKeys; i++ {
				if err := b.Put(crashKey(i), val); err != nil {
					return err
				}
			}
			// A nested bucket rebuilt with a size that varies by
			// generation, so pages are freed and reallocated.
			if err := b.DeleteBucket("scratch"); err != nil {
				return err
			}
			s, err := b.Bucket("scratch")
			if err != nil {
				return err
			}
			n := int(gen%97) + 1
			for j := 0; j < n; j++ {
				if err := s.Put(crashKey(j), val[:16]); err != nil {
					return err
				}
			}
			if err := b.Put([]byte("scratch_n"), genBytes(uint64(n))); err != nil {
				return err
			}
			// Reference records move from holder g<N-1> to g<N>.
			if err := IncRef(tx, "blob", "current", fmt.Sprintf("g%d", gen)); err != nil {
				return err
			}
			if err := DecRef(tx, "blob", "current", fmt.Sprintf("g%d", gen-1)); err != nil {
				return err
			}
			return b.Put([]byte("gen"), genBytes(gen))
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		fmt.Printf("c %d\n", gen)
	}
	os.Exit(3)
}

func TestCrashMidTransaction(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "metadata.db")
	var lastGen uint64
	midTx := 0
	const rounds = 20
	for round := 0; round < rounds; round++ {
		committed, inTx := killWriter(t, path, 1+rand.IntN(4), time.Duration(rand.IntN(8000))*time.Microsecond)
		if inTx {
			midTx++
		}
		gen := verifyCrashDB(t, path)
		// Every commit the writer reported survives; at most one more
		// (committed, then killed before it could say so) may exist.
		if gen < committed || gen > committed+1 {
			t.Fatalf("round %d: database at generation %d, writer reported %d committed", round, gen, committed)
		}
		if gen <= lastGen {
			t.Fatalf("round %d: no progress (generation %d, before %d)", round, gen, lastGen)
		}
		lastGen = gen
	}
	t.Logf("%d rounds, %d killed inside a transaction, final generation %d", rounds, midTx, lastGen)
	if midTx == 0 {
		t.Errorf("no kill landed inside a transaction: the test did not test anything")
	}
}

// killWriter runs the writer on path, lets it commit `commits` transactions,
// waits `delay`, SIGKILLs it and returns the last generation it reported
// committed and whether it was inside a transaction when killed.
func killWriter(t *testing.T, path string, commits int, delay time.Duration) (committed uint64, inTx bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // in case of t.Fatal below
	lines := bufio.NewScanner(out)
	var last string
	seen := 0
	for seen < commits && lines.Scan() {
		last = lines.Text()
		if strings.HasPrefix(last, "c ") {
			seen++
		}
	}
	if seen < commits {
		_ = cmd.Wait()
		t.Fatalf("writer stopped after %d commits: %s", seen, stderr.String())
	}
	time.Sleep(delay)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Lines written before the kill are still in the pipe.
	for lines.Scan() {
		last = lines.Text()
		if strings.HasPrefix(last, "c ") {
			seen++
		}
	}
	err = cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("writer did not die of SIGKILL: %v; stderr: %s", err, stderr.String())
	}
	// Find the last committed generation from the last line.
	kind, num, _ := strings.Cut(last, " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		t.Fatalf("bad writer line %q", last)
	}
	if kind == "b" {
		return n - 1, true
	}
	return n, false
}

// verifyCrashDB opens the database left by a killed writer and checks it
// holds exactly one whole generation; it returns that generation.
func verifyCrashDB(t *testing.T, path string) uint64 {
	t.Helper()
	db, err := Open(path, WithLockTimeout(5*time.Second))
	if err != nil {
		t.Fatalf("open after crash: %v", err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.Check(ctx); err != nil {
		t.Fatal(err)
	}
	var gen uint64
	err = db.View(ctx, func(tx *Tx) error {
		b, err := tx.Bucket("crash")
		if err != nil {
			return err
		}
		v := b.Get([]byte("gen"))
		if v == nil {
			return errors.New("no generation recorded")
		}
		gen = binary.BigEndian.Uint64(v)
		want := bytes.Repeat(genBytes(gen), 64)
		for i := 0; i < crashKeys; i++ {
			if got := b.Get(crashKey(i)); !bytes.Equal(got, want) {
				return fmt.Errorf("%s holds generation %x, database is at %d: a partial transaction", crashKey(i), got[:min(8, len(got))], gen)
			}
		}
		s, _ := b.Bucket("scratch")
		n := int(binary.BigEndian.Uint64(b.Get([]byte("scratch_n"))))
		if n != int(gen%97)+1 || s.Len() != n {
			return fmt.Errorf("scratch has %d entries, scratch_n %d, generation %d wants %d", s.Len(), n, gen, gen%97+1)
		}
		holders, err := Refs(tx, "blob", "current")
		if err != nil {
			return err
		}
		if want := []string{fmt.Sprintf("g%d", gen)}; !slices.Equal(holders, want) {
			return fmt.Errorf("holders %v, want %v", holders, want)
		}
		if held, _ := Held(tx, fmt.Sprintf("g%d", gen-1)); held != nil {
			return fmt.Errorf("previous generation still holds %v", held)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after crash: %v", err)
	}
	return gen
}
