package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// An auto-removed container (run --rm) without volumes is ephemeral: its
// record is the file "record" in its data directory, written without an
// fsync, instead of a bbolt record (two fdatasyncs on the path of create,
// two more for its deletion). What that keeps and loses:
//
//   - a kill -9 of berthd loses nothing: the file is in the page cache and
//     Restore reads it with the bbolt records (a running one is found
//     again, live restore; one that exited meanwhile is removed, as its
//     --rm asks);
//   - only a power loss or a kernel crash can lose it, and after one the
//     container is not running and would be removed at once anyway. Each
//     write carries the boot it was made in (the kernel's boot_id):
//     Restore drops an ephemeral record of an earlier boot whole, never
//     trusting what an unsynced file holds after a power loss, and its
//     files and snapshot go with the garbage.
//
// Its name is reserved only in memory (Service.names, under s.mu, which
// every create and rename checks first); the bbolt name bucket never
// holds it. A container with volumes (anonymous or named) stays in bbolt:
// its record and the volumes' references change in one transaction.
// AutoRemove cannot be changed after create, so a record stays where it
// was first written.

const ephemeralName = "record"

// ephemeralPath is where the ephemeral record of container id lives.
func (s *store) ephemeralPath(id string) string {
	return filepath.Join(s.dir, id, ephemeralName)
}

// writeEphemeral writes r's record file. A create writes it in place (a
// write torn by a crash leaves a file that does not decode, of a
// container whose create was never answered: garbage for Restore); every
// later write replaces it by a rename, so a crash leaves the old or the
// new value.
func (s *store) writeEphemeral(r *Record, create bool) error {
	r.Seq = s.seq.Add(1)
	r.Boot = s.boot
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := s.ephemeralPath(r.ID)
	if create {
		return os.WriteFile(p, b, 0o600)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

// ephemeralExists reports whether r's record file is there (not removed).
func (s *store) ephemeralExists(id string) bool {
	_, err := os.Lstat(s.ephemeralPath(id))
	return err == nil
}

// deleteEphemeral removes the record file of id: from then on the
// container does not exist, and what is left of it is garbage.
func (s *store) deleteEphemeral(id string) error {
	if err := os.Remove(s.ephemeralPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// allEphemeral reads every ephemeral record. One of an earlier boot is
// deleted and left out (see above); one that does not decode is reported
// and left out, and its directory goes with the garbage.
func (s *store) allEphemeral() ([]*Record, []error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, []error{err}
	}
	var out []*Record
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || len(e.Name()) != 64 {
			continue
		}
		p := filepath.Join(s.dir, e.Name(), ephemeralName)
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("container %s: %w", e.Name(), err))
			continue
		}
		var r Record
		if err := json.Unmarshal(b, &r); err != nil || r.ID != e.Name() || !r.Ephemeral {
			errs = append(errs, fmt.Errorf("container %s: corrupt record file", e.Name()))
			continue
		}
		if r.Boot != s.boot {
			// Not running since the reboot: removed, as its --rm asks.
			_ = os.Remove(p)
			continue
		}
		out = append(out, &r)
	}
	return out, errs
}

// bootID is this boot's id (the kernel's boot_id); "" when unknown, which
// then matches only records written without one.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
