//go:build linux

package container

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/container/spec"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/shim"
)

// prepareShim has a shim (the warm spare) pre-fork rec's container init
// while start mounts the root filesystem and writes the bundle: the clone
// into new namespaces and cgroups, the init's exec and Go start-up leave
// the path of start (see shim.Prepare). Nil when it cannot help: the
// container joins a namespace (container:<ref> modes) or the layout
// cannot be known ahead. The runtime
// checks the pre-forked init against the final spec and falls back to an
// ordinary create when it does not fit.
func (s *Service) prepareShim(rec *Record) *shim.Prepared {
	if p := s.takeClaim(rec.ID); p != nil {
		return p // the warm spare, pre-forked for this very container
	}
	if rec.Host == nil || rec.Config == nil || noPrefork {
		return nil
	}
	if rt := rec.Host.Runtime; rt != "" && rt != BerthRuntime {
		return nil // an external OCI runtime creates its own init
	}
	// A network berthd sets up (bridge, user-defined) is a namespace the
	// spec joins by path, which the pre-forked init (cloned with a network
	// namespace of its own, as Layout reports it before the sandbox
	// exists) joins once it has its config (runtime lateNetJoin);
	// container:<ref> modes join by path here already and are not served.
	nss, cgroupsPath, err := spec.Layout(spec.Input{ID: rec.ID, Config: rec.Config, HostConfig: rec.Host})
	if err != nil {
		return nil
	}
	for _, ns := range nss {
		if ns.Path != "" || ns.Type == specs.UserNamespace {
			return nil
		}
	}
	devs, setDevs := spec.PresetDeviceRules(rec.Host)
	p, err := shim.Prepare(shim.PrepareOpts{
		Binary: s.cfg.ShimBinary, ID: rec.ID, RuntimeRoot: s.cfg.Runtime.Root(),
		CgroupsPath: cgroupsPath, Namespaces: nss, Terminal: rec.Config.Tty, Stdin: rec.Config.OpenStdin,
		WarmSpare: true, Devices: devs, SetDevices: setDevs,
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
	// claimed holds, by container id, the warm spares create claimed
	// (newContainerID) until prepareAhead's goroutine takes them.
	claimed map[string]*shim.Prepared
	// spare is what warm spares pre-fork (sparePrefork), made once.
	spareOnce sync.Once
	spare     *shim.SparePrefork
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

// sparePrefork is what the warm spare shim pre-forks as soon as it starts
// (shim.SparePrefork): the init of a container with the default layout of
// `run --network none` (every namespace new but the user namespace, the
// cgroup namespace as the spec generator decides for this host, the cgroup
// under the default parent), no terminal, no stdin. Nil with
// BERTH_PREFORK=0 or when that layout cannot be worked out.
func (s *Service) sparePrefork() *shim.SparePrefork {
	if noPrefork {
		return nil
	}
	a := &s.ahead
	a.spareOnce.Do(func() {
		const probe = "0123456789abcdef"
		nss, cgroupsPath, err := spec.Layout(spec.Input{
			ID: probe, Config: &container.Config{}, HostConfig: &container.HostConfig{NetworkMode: network.NetworkNone},
		})
		if err != nil || filepath.Base(cgroupsPath) != probe {
			s.log.Debug("no spare pre-fork", "err", err, "cgroups_path", cgroupsPath)
			return
		}
		for _, ns := range nss {
			if ns.Path != "" || ns.Type == specs.UserNamespace {
				return
			}
		}
		// The default device rules are programmed at idle time too.
		devs, setDevs := spec.PresetDeviceRules(&container.HostConfig{})
		a.spare = &shim.SparePrefork{
			RuntimeRoot: s.cfg.Runtime.Root(), CgroupParent: filepath.Dir(cgroupsPath), Namespaces: nss, NewID: newID,
			Devices: devs, SetDevices: setDevs, Defer: s.cfg.Quiet.Go, Stopping: s.isClosing,
		}
	})
	return a.spare
}

// spareAwait bounds a create's wait for the spare on its way.
const spareAwait = 100 * time.Millisecond

// newContainerID returns the id of a container being created with cfg
// and hc: the warm spare's (shim.SpareID) when the spare pre-forks an init
// that fits this container exactly (the same rules as prepareShim, and
// the spare's layout: see shim.ClaimSpare; a bridge network's container
// fits the spare made for --network none: its init joins the sandbox's
// namespace late), which create then gets from
// prepareShim; else a fresh one.
func (s *Service) newContainerID(cfg *container.Config, hc *container.HostConfig) string {
	if noPrefork {
		return newID()
	}
	id := shim.SpareID()
	if id == "" && shim.SpareComing() {
		// The next spare is held until the daemon is quiet, or still
		// starting: creates come back to back, so it is needed now
		// (quiet.Gate.Hurry), and it is ahead of a shim started for this
		// create.
		s.cfg.Quiet.Hurry()
		shim.AwaitSpare(spareAwait)
		id = shim.SpareID()
		s.log.Debug("creates back to back: the next spare hurried", "id", shortID(id))
	}
	if id == "" {
		return newID()
	}
	if rt, err := s.resolveRuntime(hc.Runtime); err != nil || rt != BerthRuntime {
		return newID()
	}
	nss, cgroupsPath, err := spec.Layout(spec.Input{ID: id, Config: cfg, HostConfig: hc})
	if err != nil {
		return newID()
	}
	p := shim.ClaimSpare(shim.PrepareOpts{
		Binary: s.cfg.ShimBinary, ID: id, RuntimeRoot: s.cfg.Runtime.Root(),
		CgroupsPath: cgroupsPath, Namespaces: nss, Terminal: cfg.Tty, Stdin: cfg.OpenStdin,
		Spare: s.sparePrefork(),
	})
	if p == nil {
		return newID()
	}
	s.mu.RLock()
	_, taken := s.byID[id]
	s.mu.RUnlock()
	if taken { // cannot happen with random ids; never reuse one
		go p.Release()
		return newID()
	}
	a := &s.ahead
	a.mu.Lock()
	if a.claimed == nil {
		a.claimed = map[string]*shim.Prepared{}
	}
	a.claimed[id] = p
	a.mu.Unlock()
	return id
}

// takeClaim returns the warm spare claimed for container id, if any.
func (s *Service) takeClaim(id string) *shim.Prepared {
	a := &s.ahead
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.claimed[id]
	delete(a.claimed, id)
	return p
}

// dropClaim releases, in the background, the warm spare claimed for
// container id if nothing took it (create failed early).
func (s *Service) dropClaim(id string) {
	if p := s.takeClaim(id); p != nil {
		go p.Release()
	}
}

// releaseSpare lets the warm spare shim go at Close, with the init it
// pre-forked (its cgroups and runtime state go with it), and the spares
// claimed by creates that did not get to use them.
func (s *Service) releaseSpare() {
	a := &s.ahead
	a.mu.Lock()
	claimed := a.claimed
	a.claimed = nil
	a.mu.Unlock()
	for _, p := range claimed {
		p.Release()
	}
	shim.ReleaseSpare()
}

// sweepPreforks removes, at Restore, the runtime state of pre-forked inits
// whose container does not exist (not in known): a warm spare or prepared
// shim that died with berthd (kill -9 of both, a host crash) before its
// init was used leaves its runtime record (no bundle: never created) and
// its cgroups. A spare whose berthd is gone lets its init go by itself;
// this is for the case where it could not.
func (s *Service) sweepPreforks(ctx context.Context, known map[string]bool) {
	sts, err := s.cfg.Runtime.List(ctx)
	if err != nil {
		return
	}
	for _, st := range sts {
		if known[st.ID] || st.Bundle != "" {
			continue
		}
		s.log.Info("removing leftover pre-forked container init", "id", shortID(st.ID))
		if err := s.cfg.Runtime.Delete(ctx, st.ID, true); err != nil && !errdefs.Is(err, errdefs.NotFound) {
			s.log.Warn("remove leftover pre-forked init", "id", shortID(st.ID), "err", err)
		}
	}
}
