package distribution

import (
	"maps"
	"slices"
	"sync/atomic"
)

// liveOptions are the options a daemon reload (SIGHUP) replaces while
// operations run: mirrors and insecure registries. An operation reads
// them once per decision; one that already started keeps what it read.
type liveOptions struct{ p atomic.Pointer[registries] }

type registries struct {
	mirrors  map[string][]string
	insecure []string
}

func newLiveOptions(o Options) *liveOptions {
	l := &liveOptions{}
	l.p.Store(&registries{mirrors: maps.Clone(o.Mirrors), insecure: slices.Clone(o.Insecure)})
	return l
}

func (l *liveOptions) get() *registries { return l.p.Load() }

// SetRegistries replaces the mirrors and insecure registries (see
// Options) for the operations that start from now on.
func (c *Client) SetRegistries(mirrors map[string][]string, insecure []string) {
	c.live.p.Store(&registries{mirrors: maps.Clone(mirrors), insecure: slices.Clone(insecure)})
}
