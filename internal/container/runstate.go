package container

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
)

// The run state of a container (running, its pid, when it started and
// ended, its exit code) changes on every start and exit. It is written to
// a small file beside the container's other files, without an fsync,
// instead of a bbolt transaction (two fdatasyncs) on the path of start and
// of the remove that follows an exit:
//
//   - a kill -9 of berthd loses nothing that was written: the data is in
//     the page cache, and the file is read back at Restore, so every
//     container told to be running is found again (live restore) and an
//     exited one shows its exit code;
//   - only a power loss or a kernel crash can lose it, and after one every
//     container is dead anyway. The file is then old, torn or missing, and
//     the container comes back with the state of its last bbolt write
//     (created, or an earlier run's exit), its configuration whole: the
//     file holds no configuration and is never needed to read the record.
//
// Which of the two is newer: every write of a record, to bbolt or to this
// file, takes the next number of one counter (store.seq, carried on as
// the highest number found at Restore); Restore takes the file's state
// when its number is higher than the record's.
//
// The file has two slots; each write goes to the slot the previous one
// did not use, so a write torn by a crash (or a power loss) leaves the
// previous state readable in the other slot. A slot is
//
//	magic "brs1" | length (uint32 BE) | CRC-32C of the data (uint32 BE) | data (JSON runState)
//
// Containers with a restart policy keep writing their run state to bbolt:
// after a power loss their policy must see that they ran (restartAtBoot,
// and an exit found at Restore), as before.

const (
	runStateName   = "runstate"
	runSlotSize    = 64 << 10
	runSlotHeader  = 12
	runStateMagic  = "brs1"
	runSlotsInFile = 2
)

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// runState is what the run-state file holds: the fields of a record that
// a start or an exit changes.
type runState struct {
	ID                   string                  `json:"id"`
	Seq                  uint64                  `json:"seq"`
	State                State                   `json:"state"`
	Restarts             int                     `json:"restart_count"`
	HasBeenStartedBefore bool                    `json:"has_been_started_before"`
	ManuallyStopped      bool                    `json:"manually_stopped"`
	Networks             map[string]*NetworkInfo `json:"networks,omitempty"`
	Sandbox              *SandboxState           `json:"sandbox,omitempty"`
	// Removed is a removal answered before its record's deletion was
	// committed (deletelater.go): Restore finishes it.
	Removed bool `json:"removed,omitempty"`
}

func runStateOf(r *Record) runState {
	return runState{
		ID: r.ID, State: r.State, Restarts: r.Restarts, HasBeenStartedBefore: r.HasBeenStartedBefore,
		ManuallyStopped: r.ManuallyStopped, Networks: r.Networks, Sandbox: r.Sandbox,
	}
}

// apply overlays rs on r.
func (rs *runState) apply(r *Record) {
	r.State, r.Restarts, r.HasBeenStartedBefore, r.ManuallyStopped = rs.State, rs.Restarts, rs.HasBeenStartedBefore, rs.ManuallyStopped
	r.Networks, r.Sandbox = rs.Networks, rs.Sandbox
	r.Seq = rs.Seq
}

// runFile is a container's run-state file as berthd last wrote it.
type runFile struct {
	mu sync.Mutex
	// next is the slot the next write goes to.
	next int
	// removed is set once a tombstone is written: nothing overwrites it
	// (an exit recorded late must not undo a removal).
	removed bool
}

func (s *Service) runStatePath(id string) string {
	return filepath.Join(s.dataDir(id), runStateName)
}

// keepsRunDurable reports whether r's run state goes to bbolt (synced):
// containers with a restart policy.
func keepsRunDurable(r *Record) bool {
	if r.Host == nil {
		return true
	}
	p := r.Host.RestartPolicy
	return !(p.IsNone() || p.Name == "")
}

// saveRun records r after a change of its run state only (start, exit):
// in c's run-state file, or with durable (store.save or saveIfExists)
// when its run state must survive a power loss or does not fit the file.
func (s *Service) saveRun(c *Container, r *Record, durable func(*Record) error) error {
	if keepsRunDurable(r) {
		return durable(r)
	}
	select {
	case <-c.removed: // an exit recorded after the removal: nothing to keep
		return nil
	default:
	}
	if err := s.writeRun(c, r, false); err != nil {
		// Too big for a slot, or the file cannot be written: bbolt.
		if !errors.Is(err, errRunTooBig) {
			s.log.Warn("write container run state; recording it in the metadata database", "id", r.ID, "err", err)
		}
		return durable(r)
	}
	return nil
}

var errRunTooBig = errors.New("run state too big for its slot")

// writeRun writes r's run state into the next slot of c's run-state file;
// removed makes it a removal's tombstone.
func (s *Service) writeRun(c *Container, r *Record, removed bool) error {
	c.run.mu.Lock()
	defer c.run.mu.Unlock()
	if c.run.removed {
		return nil
	}
	rs := runStateOf(r)
	rs.Removed = removed
	rs.Seq = s.store.seq.Add(1)
	buf, err := encodeRunSlot(&rs)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(s.runStatePath(r.ID), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(buf, int64(c.run.next)*runSlotSize)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	c.run.next = (c.run.next + 1) % runSlotsInFile
	c.run.removed = removed
	return nil
}

func encodeRunSlot(rs *runState) ([]byte, error) {
	data, err := json.Marshal(rs)
	if err != nil {
		return nil, err
	}
	if len(data) > runSlotSize-runSlotHeader {
		return nil, errRunTooBig
	}
	buf := make([]byte, runSlotHeader, runSlotHeader+len(data))
	copy(buf, runStateMagic)
	binary.BigEndian.PutUint32(buf[4:], uint32(len(data)))
	binary.BigEndian.PutUint32(buf[8:], crc32.Checksum(data, crc32c))
	return append(buf, data...), nil
}

// decodeRunSlot returns the run state in slot b, or an error when the
// slot is empty, torn or not for container id.
func decodeRunSlot(b []byte, id string) (*runState, error) {
	if len(b) < runSlotHeader || string(b[:4]) != runStateMagic {
		return nil, errors.New("no run state")
	}
	n := int(binary.BigEndian.Uint32(b[4:]))
	if n > runSlotSize-runSlotHeader || runSlotHeader+n > len(b) {
		return nil, errors.New("run state cut short")
	}
	data := b[runSlotHeader : runSlotHeader+n]
	if crc32.Checksum(data, crc32c) != binary.BigEndian.Uint32(b[8:]) {
		return nil, errors.New("run state checksum mismatch")
	}
	var rs runState
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, err
	}
	if rs.ID != id {
		return nil, fmt.Errorf("run state of container %q", rs.ID)
	}
	return &rs, nil
}

// readRunFile returns the newest valid run state of container id in the
// file at path (nil when there is none: no file, or every slot torn or
// empty), the slot the next write should use and whether a slot holds a
// tombstone (final, whatever was written after it). err reports a file
// that exists but holds nothing valid.
func readRunFile(path, id string) (rs *runState, next int, removed bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, 0, false, nil
		}
		return nil, 0, false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() == 0 {
		// Made empty ahead (a spare's), never written: as none.
		return nil, 0, false, nil
	}
	var errs []error
	for slot := range runSlotsInFile {
		// The header first, then only the data it announces (a slot is
		// mostly a hole).
		off := int64(slot) * runSlotSize
		b := make([]byte, runSlotHeader)
		n, _ := f.ReadAt(b, off)
		if n == runSlotHeader && string(b[:4]) == runStateMagic {
			if l := int(binary.BigEndian.Uint32(b[4:])); l <= runSlotSize-runSlotHeader {
				b = append(b, make([]byte, l)...)
				n, _ = f.ReadAt(b[runSlotHeader:], off+runSlotHeader)
				b = b[:runSlotHeader+n]
			}
		} else {
			b = b[:n]
		}
		st, err := decodeRunSlot(b, id)
		if err != nil {
			errs = append(errs, fmt.Errorf("slot %d: %w", slot, err))
			continue
		}
		removed = removed || st.Removed
		if rs == nil || st.Seq > rs.Seq {
			rs, next = st, (slot+1)%runSlotsInFile
		}
	}
	if rs == nil {
		return nil, 0, false, fmt.Errorf("%s: no valid run state: %w", path, errors.Join(errs...))
	}
	return rs, next, removed, nil
}

// restoreRun overlays r (as bbolt has it) with its run-state file when
// that is newer, sets up c's file and moves the write counter past both.
// A file that cannot be read only costs the state it held: the record's
// own is used ("not running" unless bbolt says otherwise). It reports a
// removal whose deletion was not committed (a tombstone: final, even when
// a bbolt write raced it).
func (s *Service) restoreRun(r *Record, c *Container) (removed bool) {
	rs, next, removed, err := readRunFile(s.runStatePath(r.ID), r.ID)
	if err != nil {
		s.log.Warn("container run state unreadable; using the recorded state", "id", r.ID, "err", err)
	}
	c.run.next = next
	seen := r.Seq
	if rs != nil && rs.Seq > r.Seq {
		rs.apply(r)
		rs.apply(&c.rec)
		seen = rs.Seq
	}
	for {
		cur := s.store.seq.Load()
		if seen <= cur || s.store.seq.CompareAndSwap(cur, seen) {
			break
		}
	}
	return removed
}
