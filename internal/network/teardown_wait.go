package network

import (
	"context"
	"time"
)

// A stopped container's sandbox is torn down in the background (Detach
// marks it gone at once; Teardown gives back its addresses and host ports
// later). A client that stops or removes a container and at once creates
// its replacement with the same static address or fixed host port — as
// Compose does when it recreates a service — must not find them taken:
// dockerd has released them when the stop returns. Setup therefore waits
// for the teardowns still holding what it asks for by value.

// maxTeardownWait bounds that wait; a teardown that takes longer leaves
// the conflict to be reported as before.
const maxTeardownWait = 15 * time.Second

// beginTeardown records that sb's teardown started. Called with s.mu held.
func (s *Service) beginTeardown(sb *sandbox) {
	s.tearing[sb.id] = sb
}

// endTeardown records that sb gave everything back and wakes waiters.
func (s *Service) endTeardown(sb *sandbox) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tearing[sb.id] == sb {
		delete(s.tearing, sb.id)
	}
	if !sb.tornDone {
		sb.tornDone = true
		if sb.torn != nil {
			close(sb.torn)
		}
	}
}

// holds reports whether sb holds a static address or a fixed host port
// that req asks for. Called with s.mu held.
func (sb *sandbox) holds(req SandboxRequest) bool {
	for _, e := range req.Endpoints {
		for _, ep := range sb.endpoints {
			if (e.IPv4.IsValid() && ep.ip == e.IPv4) || (e.IPv6.IsValid() && ep.ip6 == e.IPv6) {
				return true
			}
		}
	}
	for p, want := range req.Ports {
		for _, b := range want {
			if b.HostPort == "" || b.HostPort == "0" {
				continue
			}
			for _, have := range sb.bindings[p] {
				if have.HostPort == b.HostPort {
					return true
				}
			}
		}
	}
	return false
}

// waitConflictingTeardowns waits until no stopped container's sandbox
// still being torn down holds what req asks for by value.
func (s *Service) waitConflictingTeardowns(ctx context.Context, req SandboxRequest) error {
	s.mu.Lock()
	var waits []chan struct{}
	consider := func(sb *sandbox) {
		if sb.id == req.ContainerID || sb.tornDone || !sb.holds(req) {
			return
		}
		if sb.torn == nil {
			sb.torn = make(chan struct{})
		}
		waits = append(waits, sb.torn)
	}
	for _, sb := range s.sandboxes {
		if sb.gone {
			consider(sb)
		}
	}
	for _, sb := range s.tearing {
		consider(sb)
	}
	s.mu.Unlock()
	if len(waits) == 0 {
		return nil
	}
	timer := time.NewTimer(maxTeardownWait)
	defer timer.Stop()
	for _, ch := range waits {
		select {
		case <-ch:
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}
