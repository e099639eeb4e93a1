package network

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// dumpTries bounds redumps of an interrupted netlink dump.
const dumpTries = 5

// dump runs a netlink dump (a list of links, addresses, routes) again
// while the kernel reports it interrupted (NLM_F_DUMP_INTR: the table
// changed during the dump, as it does while other containers' links come
// and go): the library returns a possibly incomplete list with
// netlink.ErrDumpInterrupted, which is not a failure to give up on.
func dump[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range dumpTries {
		if v, err = f(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}
