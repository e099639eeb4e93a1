//go:build linux

package container

import (
	"os"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/container/spec"
	"github.com/berth-dev/berth/internal/shim"
)

// prepareShim has a shim (the warm spare) pre-fork rec's container init
// while start mounts the root filesystem and writes the bundle: the clone
// into new namespaces and cgroups, the init's exec and Go start-up leave
// the path of start (see shim.Prepare). Nil when it cannot help: the
// container joins a namespace (a network the daemon sets up,
// container:<ref> modes) or the layout cannot be known ahead. The runtime
// checks the pre-forked init against the final spec and falls back to an
// ordinary create when it does not fit.
func (s *Service) prepareShim(rec *Record) *shim.Prepared {
	if rec.Host == nil || rec.Config == nil || noPrefork {
		return nil
	}
	if rt := rec.Host.Runtime; rt != "" && rt != BerthRuntime {
		return nil // an external OCI runtime creates its own init
	}
	if nm := rec.Host.NetworkMode; !nm.IsNone() && !nm.IsHost() {
		return nil
	}
	nss, cgroupsPath, err := spec.Layout(spec.Input{ID: rec.ID, Config: rec.Config, HostConfig: rec.Host})
	if err != nil {
		return nil
	}
	for _, ns := range nss {
		if ns.Path != "" || ns.Type == specs.UserNamespace {
			return nil
		}
	}
	p, err := shim.Prepare(shim.PrepareOpts{
		Binary: s.cfg.ShimBinary, ID: rec.ID, RuntimeRoot: s.cfg.Runtime.Root(),
		CgroupsPath: cgroupsPath, Namespaces: nss, Terminal: rec.Config.Tty, Stdin: rec.Config.OpenStdin,
		WarmSpare: true,
	})
	if err != nil {
		s.log.Debug("prepare shim", "id", shortID(rec.ID), "err", err)
		return nil
	}
	return p
}

// noPrefork (BERTH_PREFORK=0 in berthd's environment) turns pre-forking
// off: for A/B measurements, and as a way out should it misbehave.
var noPrefork = os.Getenv("BERTH_PREFORK") == "0"

// aheadTTL is how long a shim prepared at create waits for its start.
const aheadTTL = 30 * time.Second

// aheadSlot is the one shim prepared at create time (docker run creates,
// then starts at once): its pre-forked init is ready before start even
// begins. A later create's, the container's removal, its TTL or Close let
// it go. Prepare runs in the background: create does not wait for it.
type aheadSlot struct {
	mu    sync.Mutex
	cur   *aheadPrep
	timer *time.Timer
	// releasing holds, by container id, the preparations let go in the
	// background (replaced by a later create, or their TTL ran out): until
	// one is closed its pre-forked init still owns the id's runtime state,
	// so a start of that container must wait (awaitRelease) rather than
	// create it again ("container with id exists").
	releasing map[string]chan struct{}
}

// aheadPrep is one preparation; ready is closed once p is set (nil:
// nothing could be prepared).
type aheadPrep struct {
	id    string
	ready chan struct{}
	p     *shim.Prepared
}

// wait returns the prepared shim once Prepare is done.
func (ap *aheadPrep) wait() *shim.Prepared {
	if ap == nil {
		return nil
	}
	<-ap.ready
	return ap.p
}

// prepareAhead has a shim prepared for the container being created (rec
// is complete but not yet stored), in the background.
func (s *Service) prepareAhead(rec *Record) {
	if noPrefork {
		return
	}
	if rec.Config == nil || rec.Host == nil {
		return
	}
	// Copies: the goroutine reads them while the record lives on.
	cfg, hc := *rec.Config, *rec.Host
	r := &Record{ID: rec.ID, Config: &cfg, Host: &hc}
	ap := &aheadPrep{id: rec.ID, ready: make(chan struct{})}
	go func() {
		ap.p = s.prepareShim(r)
		close(ap.ready)
	}()
	a := &s.ahead
	a.mu.Lock()
	old := a.cur
	if a.timer != nil {
		a.timer.Stop()
	}
	a.cur = ap
	a.timer = time.AfterFunc(aheadTTL, func() { s.dropAhead(ap.id) })
	done := a.releaseLocked(old)
	a.mu.Unlock()
	if old != nil {
		go func() {
			old.wait().Release()
			done()
		}()
	}
}

// releaseLocked records that ap (nil: nothing) is being released and
// returns the function that marks it done. a.mu is held.
func (a *aheadSlot) releaseLocked(ap *aheadPrep) (done func()) {
	if ap == nil {
		return func() {}
	}
	if a.releasing == nil {
		a.releasing = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	prev := a.releasing[ap.id]
	a.releasing[ap.id] = ch
	return func() {
		if prev != nil {
			<-prev
		}
		a.mu.Lock()
		if a.releasing[ap.id] == ch {
			delete(a.releasing, ap.id)
		}
		a.mu.Unlock()
		close(ch)
	}
}

// awaitReleases waits until every background release is done.
func (s *Service) awaitReleases() {
	a := &s.ahead
	a.mu.Lock()
	var chs []chan struct{}
	for _, ch := range a.releasing {
		chs = append(chs, ch)
	}
	a.mu.Unlock()
	for _, ch := range chs {
		<-ch
	}
}

// awaitRelease waits until no preparation for container id is being
// released in the background.
func (s *Service) awaitRelease(id string) {
	a := &s.ahead
	a.mu.Lock()
	ch := a.releasing[id]
	a.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// detachAhead takes the preparation for container id ("": any) out of the
// slot.
func (s *Service) detachAhead(id string) *aheadPrep {
	a := &s.ahead
	a.mu.Lock()
	defer a.mu.Unlock()
	ap := a.cur
	if ap == nil || (id != "" && ap.id != id) {
		return nil
	}
	a.cur = nil
	a.timer.Stop()
	return ap
}

// takeAhead returns the shim prepared at create for container id, if any,
// once its Prepare is done.
func (s *Service) takeAhead(id string) *shim.Prepared {
	return s.detachAhead(id).wait()
}

// dropAhead releases the shim prepared for container id ("": any) and
// waits for it to have removed its pre-forked init (a start of that
// container meanwhile waits too: awaitRelease).
func (s *Service) dropAhead(id string) {
	a := &s.ahead
	a.mu.Lock()
	ap := a.cur
	if ap == nil || (id != "" && ap.id != id) {
		a.mu.Unlock()
		return
	}
	a.cur = nil
	a.timer.Stop()
	done := a.releaseLocked(ap)
	a.mu.Unlock()
	ap.wait().Release()
	done()
}
