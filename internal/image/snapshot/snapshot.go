package snapshot

import (
	"fmt"
	"time"
)

// Kind is the state of a snapshot.
type Kind int

// The kinds. Only Committed snapshots can be parents; only Active ones can
// be committed.
const (
	// Active is writable: its fs directory is the overlay upper.
	Active Kind = iota + 1
	// Committed is an immutable layer, the lower of its children.
	Committed
	// View is a read-only look at a committed parent, with no upper.
	View
)

func (k Kind) String() string {
	switch k {
	case Active:
		return "active"
	case Committed:
		return "committed"
	case View:
		return "view"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Info describes one snapshot.
type Info struct {
	Key     string
	Parent  string // key of the committed parent, "" for a bottom layer
	Kind    Kind
	Created time.Time
	Labels  map[string]string
}

// Mount is one mount to perform, in the style of mount(8): the snapshotter
// describes it, the caller performs it (in the right mount namespace),
// normally with MountAll. Options are mount(8) options: flags such as "ro"
// and "rbind", and filesystem data such as "lowerdir=a:b".
type Mount struct {
	Type    string
	Source  string
	Options []string
}
