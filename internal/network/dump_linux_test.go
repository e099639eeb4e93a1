package network

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestDumpRetriesInterrupted: an interrupted dump is done again (the list
// of the last try is returned), at most dumpTries times; another error
// is returned at once.
func TestDumpRetriesInterrupted(t *testing.T) {
	calls := 0
	v, err := dump(func() (int, error) {
		calls++
		if calls < 3 {
			return -1, netlink.ErrDumpInterrupted
		}
		return 7, nil
	})
	if v != 7 || err != nil || calls != 3 {
		t.Errorf("interrupted twice: %d, %v after %d calls; want 7, nil after 3", v, err, calls)
	}
	calls = 0
	_, err = dump(func() (int, error) { calls++; return 0, netlink.ErrDumpInterrupted })
	if !errors.Is(err, netlink.ErrDumpInterrupted) || calls != dumpTries {
		t.Errorf("always interrupted: %v after %d calls; want the error after %d", err, calls, dumpTries)
	}
	calls = 0
	other := errors.New("no such device")
	if _, err = dump(func() (int, error) { calls++; return 0, other }); err != other || calls != 1 {
		t.Errorf("another error: %v after %d calls", err, calls)
	}
}
