package metadata

import (
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Reference counting for garbage collection.
//
// An object is identified by a kind ("blob", "snapshot", "image", ...) and
// a key (a digest, a snapshot ID). A holder is whatever keeps it alive,
// named by a string such as "image/sha256:…" or "container/<id>". The
// records form a set of holders per object, so IncRef and DecRef are
// idempotent: repeating one after a crash or retry does no harm. An
// object stays recorded with no holders after its last DecRef, which is
// what makes it show up in Unreferenced. The collector then calls Forget
// and deletes the object's files in a Tx.OnCommit callback of the same
// transaction, so that files never disappear under a record that stays.
//
// Layout:
//
//	refs/<kind>/<key>/<holder>          = ""   (one nested bucket per object)
//	refs-by-holder/<holder>/<kind>\x00<key> = "" (to release all of a holder's refs)
const (
	refsBucket     = "refs"
	byHolderBucket = "refs-by-holder"
)

// Ref names an object held by a holder.
type Ref struct {
	Kind string
	Key  string
}

func checkRefArgs(kind, key, holder string, needHolder bool) error {
	switch {
	case kind == "" || strings.ContainsRune(kind, 0):
		return errdefs.Newf(errdefs.InvalidArgument, "metadata: invalid object kind %q", kind)
	case key == "" || strings.ContainsRune(key, 0):
		return errdefs.Newf(errdefs.InvalidArgument, "metadata: invalid %s key %q", kind, key)
	case needHolder && holder == "":
		return errdefs.Newf(errdefs.InvalidArgument, "metadata: empty holder for %s %s", kind, key)
	}
	return nil
}

// Track records the object kind/key with no holders if it is not
// recorded yet: a freshly written blob that nothing uses yet is still
// something the collector must know about.
func Track(tx *Tx, kind, key string) error {
	if err := checkRefArgs(kind, key, "", false); err != nil {
		return err
	}
	if !tx.Writable() {
		return errReadOnly([]string{refsBucket, kind, key})
	}
	_, err := tx.Bucket(refsBucket, kind, key)
	return err
}

// IncRef records that holder keeps kind/key alive, tracking the object if
// needed. Adding a holder twice is the same as adding it once.
func IncRef(tx *Tx, kind, key, holder string) error {
	if err := checkRefArgs(kind, key, holder, true); err != nil {
		return err
	}
	obj, err := tx.Bucket(refsBucket, kind, key)
	if err != nil {
		return err
	}
	if err := obj.Put([]byte(holder), nil); err != nil {
		return err
	}
	hb, err := tx.Bucket(byHolderBucket, holder)
	if err != nil {
		return err
	}
	return hb.Put([]byte(kind+"\x00"+key), nil)
}

// DecRef removes holder from kind/key. The object stays recorded, with
// its remaining holders or none. Removing a holder that is not there is
// not an error.
func DecRef(tx *Tx, kind, key, holder string) error {
	if err := checkRefArgs(kind, key, holder, true); err != nil {
		return err
	}
	if !tx.Writable() {
		return errReadOnly([]string{refsBucket, kind, key})
	}
	if obj := lookup(tx.tx, []string{refsBucket, kind, key}); obj != nil {
		if err := obj.Delete([]byte(holder)); err != nil {
			return err
		}
	}
	if hb := lookup(tx.tx, []string{byHolderBucket, holder}); hb != nil {
		if err := hb.Delete([]byte(kind + "\x00" + key)); err != nil {
			return err
		}
		if k, _ := hb.Cursor().First(); k == nil {
			return tx.DeleteBucket(byHolderBucket, holder)
		}
	}
	return nil
}

// Refs returns the holders of kind/key in sorted order; none for an
// object that is not recorded.
func Refs(tx *Tx, kind, key string) ([]string, error) {
	if err := checkRefArgs(kind, key, "", false); err != nil {
		return nil, err
	}
	obj := lookup(tx.tx, []string{refsBucket, kind, key})
	if obj == nil {
		return nil, nil
	}
	var holders []string
	err := obj.ForEach(func(k, _ []byte) error {
		holders = append(holders, string(k))
		return nil
	})
	return holders, err
}

// Tracked reports whether kind/key is recorded.
func Tracked(tx *Tx, kind, key string) bool {
	return checkRefArgs(kind, key, "", false) == nil && lookup(tx.tx, []string{refsBucket, kind, key}) != nil
}

// Unreferenced returns, in sorted order, the recorded objects of kind that
// have no holder: the candidates for garbage collection.
func Unreferenced(tx *Tx, kind string) ([]string, error) {
	if kind == "" || strings.ContainsRune(kind, 0) {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "metadata: invalid object kind %q", kind)
	}
	kb := lookup(tx.tx, []string{refsBucket, kind})
	if kb == nil {
		return nil, nil
	}
	var keys []string
	err := kb.ForEach(func(k, v []byte) error {
		if v != nil {
			return nil // not an object record
		}
		if first, _ := kb.Bucket(k).Cursor().First(); first == nil {
			keys = append(keys, string(k))
		}
		return nil
	})
	return keys, err
}

// Forget removes the record of kind/key once the object is gone. It
// refuses, with errdefs.Conflict, while the object has holders; a missing
// record is not an error.
func Forget(tx *Tx, kind, key string) error {
	holders, err := Refs(tx, kind, key)
	if err != nil {
		return err
	}
	if len(holders) > 0 {
		return errdefs.Newf(errdefs.Conflict, "metadata: %s %s is still held by %s", kind, key, strings.Join(holders, ", "))
	}
	return tx.DeleteBucket(refsBucket, kind, key)
}

// Held returns what holder keeps alive, sorted by kind then key.
func Held(tx *Tx, holder string) ([]Ref, error) {
	if holder == "" {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "metadata: empty holder")
	}
	hb := lookup(tx.tx, []string{byHolderBucket, holder})
	if hb == nil {
		return nil, nil
	}
	var refs []Ref
	err := hb.ForEach(func(k, _ []byte) error {
		kind, key, _ := strings.Cut(string(k), "\x00")
		refs = append(refs, Ref{Kind: kind, Key: key})
		return nil
	})
	return refs, err
}

// ReleaseHolder drops every reference holder has, as when an image or a
// container is deleted; the objects stay recorded for the collector.
func ReleaseHolder(tx *Tx, holder string) error {
	refs, err := Held(tx, holder)
	if err != nil {
		return err
	}
	for _, r := range refs {
		if err := DecRef(tx, r.Kind, r.Key, holder); err != nil {
			return err
		}
	}
	return nil
}
