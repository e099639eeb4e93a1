package container

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	bolt "go.etcd.io/bbolt"
)

// runTestService is a Service with only what the run-state code uses: a
// data root and a record store on a real bbolt file.
func runTestService(t *testing.T, root string) *Service {
	t.Helper()
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st, err := openStore(db, filepath.Join(root, "containers"))
	if err != nil {
		t.Fatal(err)
	}
	return &Service{cfg: Config{Root: root}, store: st, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// reopen is a restart: the store and the files are read again.
func reopen(t *testing.T, s *Service) (*Service, map[string]*Record) {
	t.Helper()
	db := s.store.db
	st, err := openStore(db, s.store.dir)
	if err != nil {
		t.Fatal(err)
	}
	s2 := &Service{cfg: s.cfg, store: st, log: s.log}
	recs, errs := st.all()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	out := map[string]*Record{}
	for _, r := range recs {
		c := newContainer(*r)
		if s2.restoreRun(r, c) {
			r.State.Status = "removed (tombstone)"
		}
		out[r.ID] = r
	}
	return s2, out
}

func newRunTestRecord(t *testing.T, s *Service, id string, policy container.RestartPolicyMode) (*Record, *Container) {
	t.Helper()
	r := &Record{ID: id, Name: "/" + id, Config: &container.Config{}, Host: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: policy}},
		State: State{Status: container.StateCreated}}
	if err := os.MkdirAll(s.dataDir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := s.store.create(r, nil); err != nil {
		t.Fatal(err)
	}
	return r, newContainer(*r)
}

func running(pid int) State {
	return State{Status: container.StateRunning, Pid: pid, StartedAt: time.Now().UTC()}
}

func exited(code int) State {
	return State{Status: container.StateExited, ExitCode: code, FinishedAt: time.Now().UTC()}
}

// TestRunStateRestore: a start and an exit written to the run-state file
// (not to bbolt) are what a restart finds; a later bbolt write wins over
// an older file; the write counter goes on past what was found.
func TestRunStateRestore(t *testing.T) {
	s := runTestService(t, t.TempDir())
	r, c := newRunTestRecord(t, s, "a1", container.RestartPolicyDisabled)

	r.State, r.HasBeenStartedBefore = running(42), true
	if err := s.saveRun(c, r, s.store.save); err != nil {
		t.Fatal(err)
	}
	s2, recs := reopen(t, s)
	if got := recs["a1"]; got.State.Status != container.StateRunning || got.State.Pid != 42 || !got.HasBeenStartedBefore {
		t.Fatalf("after start: %+v", got.State)
	}
	// bbolt itself still has the created state: nothing was synced.
	var inDB []*Record
	inDB, _ = s.store.all()
	if inDB[0].State.Status != container.StateCreated {
		t.Fatalf("bbolt has %q, want created (the run state is not written there)", inDB[0].State.Status)
	}

	r.State = exited(7)
	c2 := newContainer(*r)
	s2.restoreRun(r, c2) // sets c2's slot as Restore does
	r.State = exited(7)
	if err := s2.saveRun(c2, r, s2.store.save); err != nil {
		t.Fatal(err)
	}
	s3, recs := reopen(t, s2)
	if got := recs["a1"].State; got.Status != container.StateExited || got.ExitCode != 7 {
		t.Fatalf("after exit: %+v", got)
	}

	// A bbolt write (rename, pause, ...) after the file's: bbolt wins.
	r.Name = "/renamed"
	r.State = exited(9)
	if err := s3.store.save(r); err != nil {
		t.Fatal(err)
	}
	s4, recs := reopen(t, s3)
	if got := recs["a1"]; got.State.ExitCode != 9 || got.Name != "/renamed" {
		t.Fatalf("after a bbolt write: %+v %s", got.State, got.Name)
	}
	if s4.store.seq.Load() < r.Seq {
		t.Fatalf("write counter %d behind the record's %d", s4.store.seq.Load(), r.Seq)
	}
}

// TestRunStateTornAndGarbled: a torn last write leaves the previous
// state (the other slot); a file with nothing valid, or none at all,
// leaves the record's own state; neither keeps the record from loading.
func TestRunStateTornAndGarbled(t *testing.T) {
	s := runTestService(t, t.TempDir())
	r, c := newRunTestRecord(t, s, "b2", container.RestartPolicyDisabled)
	r.State, r.HasBeenStartedBefore = running(50), true
	if err := s.saveRun(c, r, s.store.save); err != nil {
		t.Fatal(err)
	}
	r.State = exited(3)
	if err := s.saveRun(c, r, s.store.save); err != nil {
		t.Fatal(err)
	}
	path := s.runStatePath("b2")
	// Tear the last write (slot 1): flip a byte of its data.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{'X'}, runSlotSize+runSlotHeader+5); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, recs := reopen(t, s)
	if got := recs["b2"].State; got.Status != container.StateRunning || got.Pid != 50 {
		t.Fatalf("with the last slot torn: %+v, want the previous (running, pid 50)", got)
	}

	// Garbage in both slots: the record's own state (created).
	if err := os.WriteFile(path, make([]byte, 2*runSlotSize), 0o600); err != nil {
		t.Fatal(err)
	}
	_, recs = reopen(t, s)
	if got := recs["b2"]; got.State.Status != container.StateCreated || got.Config == nil {
		t.Fatalf("with a garbled file: %+v", got.State)
	}
	// Cut short (a power loss during the first write of a new file).
	if err := os.WriteFile(path, []byte("brs1\x00\x00"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, recs = reopen(t, s)
	if got := recs["b2"]; got.State.Status != container.StateCreated {
		t.Fatalf("with a cut file: %+v", got.State)
	}
	// Missing.
	os.Remove(path)
	_, recs = reopen(t, s)
	if got := recs["b2"]; got.State.Status != container.StateCreated {
		t.Fatalf("without a file: %+v", got.State)
	}
	// Another container's file copied over: ignored.
	r2, c2 := newRunTestRecord(t, s, "c3", container.RestartPolicyDisabled)
	r2.State = running(60)
	if err := s.saveRun(c2, r2, s.store.save); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(s.runStatePath("c3"))
	os.WriteFile(path, b, 0o600)
	_, recs = reopen(t, s)
	if got := recs["b2"]; got.State.Status != container.StateCreated {
		t.Fatalf("with another container's file: %+v", got.State)
	}
}

// TestRunStateDurableWithRestartPolicy: a container with a restart policy
// keeps its run state in bbolt (its policy must see that it ran after a
// power loss too); a state too big for a slot goes there as well.
func TestRunStateDurableWithRestartPolicy(t *testing.T) {
	s := runTestService(t, t.TempDir())
	r, c := newRunTestRecord(t, s, "d4", container.RestartPolicyAlways)
	r.State, r.HasBeenStartedBefore = running(70), true
	if err := s.saveRun(c, r, s.store.save); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.runStatePath("d4")); !os.IsNotExist(err) {
		t.Fatalf("run-state file of a container with a restart policy: %v", err)
	}
	inDB, _ := s.store.all()
	if inDB[0].State.Status != container.StateRunning {
		t.Fatalf("bbolt has %q, want running", inDB[0].State.Status)
	}

	r2, c2 := newRunTestRecord(t, s, "e5", container.RestartPolicyDisabled)
	big := make([]byte, runSlotSize)
	for i := range big {
		big[i] = 'a'
	}
	r2.State = running(80)
	r2.State.Error = string(big)
	if err := s.saveRun(c2, r2, s.store.save); err != nil {
		t.Fatal(err)
	}
	_, recs := reopen(t, s)
	if got := recs["e5"].State; got.Pid != 80 || len(got.Error) != runSlotSize {
		t.Fatalf("a big state: pid %d, error of %d bytes", got.Pid, len(got.Error))
	}

	// A file that cannot be written: bbolt.
	r3, c3 := newRunTestRecord(t, s, "k11", container.RestartPolicyDisabled)
	if err := os.RemoveAll(s.dataDir("k11")); err != nil {
		t.Fatal(err)
	}
	r3.State = running(90)
	if err := s.saveRun(c3, r3, s.store.save); err != nil {
		t.Fatal(err)
	}
	_, recs = reopen(t, s)
	if got := recs["k11"].State; got.Pid != 90 {
		t.Fatalf("a state whose file cannot be written: %+v", got)
	}
}

// TestRemoveLater: a removal's tombstone is what a restart finds when the
// deletion was not committed; a committed one leaves nothing; a name held
// in bbolt by a pending deletion is free for a create.
func TestRemoveLater(t *testing.T) {
	s := runTestService(t, t.TempDir())
	r, c := newRunTestRecord(t, s, "f6", container.RestartPolicyDisabled)
	r.State = exited(0)
	if err := s.saveRun(c, r, s.store.save); err != nil {
		t.Fatal(err)
	}
	// The tombstone alone (berthd killed before the commit).
	if err := s.writeRun(c, r, true); err != nil {
		t.Fatal(err)
	}
	_, recs := reopen(t, s)
	if got := recs["f6"].State.Status; got != "removed (tombstone)" {
		t.Fatalf("a tombstone without its commit: %q, want the removal found", got)
	}
	// An exit recorded late does not overwrite it, and a bbolt write that
	// raced it does not undo it.
	r.State = exited(1)
	if err := s.saveRun(c, r, s.store.save); err != nil {
		t.Fatal(err)
	}
	if err := s.store.save(r); err != nil {
		t.Fatal(err)
	}
	_, recs = reopen(t, s)
	if got := recs["f6"].State.Status; got != "removed (tombstone)" {
		t.Fatalf("a tombstone after later writes: %q, want the removal found", got)
	}
	// The whole removal.
	committed, err := s.deleteRecord(c, r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := committed(); err != nil {
		t.Fatal(err)
	}
	if _, recs = reopen(t, s); len(recs) != 0 {
		t.Fatalf("records after a committed removal: %v", recs)
	}

	// A container with a restart policy is deleted before the answer.
	r2, c2 := newRunTestRecord(t, s, "g7", container.RestartPolicyAlways)
	if _, err := s.deleteRecord(c2, r2, nil); err != nil {
		t.Fatal(err)
	}
	if _, recs = reopen(t, s); len(recs) != 0 {
		t.Fatalf("a restart-policy container's removal was not committed at once: %v", recs)
	}

	// The name of a container whose deletion is pending is free.
	old, _ := newRunTestRecord(t, s, "h8", container.RestartPolicyDisabled)
	s.store.waitLater() // no flusher runs: the injected deletion stays pending
	s.store.later.mu.Lock()
	s.store.later.pending = map[string]*laterDelete{old.ID: {name: old.Name, done: make(chan error, 1)}}
	s.store.later.mu.Unlock()
	nr := &Record{ID: "i9", Name: old.Name, Config: &container.Config{}, Host: &container.HostConfig{}}
	if err := s.store.create(nr, nil); err != nil {
		t.Fatalf("create with the name of a pending deletion: %v", err)
	}
	_, recs = reopen(t, s)
	if _, ok := recs["h8"]; ok || recs["i9"] == nil {
		t.Fatalf("after the create: %v", recs)
	}
	// Not pending: a conflict as ever.
	s.store.later.mu.Lock()
	s.store.later.pending = nil
	s.store.later.mu.Unlock()
	if err := s.store.create(&Record{ID: "j10", Name: old.Name, Config: &container.Config{}, Host: &container.HostConfig{}}, nil); err == nil {
		t.Fatal("a name in use was taken")
	}
}

// TestRunFileEmpty: an empty run-state file (made ahead in a spare's
// data directory, never written) reads as none: no state, no error.
func TestRunFileEmpty(t *testing.T) {
	p := filepath.Join(t.TempDir(), runStateName)
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	rs, next, removed, err := readRunFile(p, "x")
	if rs != nil || next != 0 || removed || err != nil {
		t.Fatalf("empty run-state file: %v %d %v %v", rs, next, removed, err)
	}
}
