// Package events is berthd's event bus: every service publishes Docker
// event messages here; the /events endpoint replays the retained ones
// (a bounded ring, also bounded in age) and streams new ones. It owns no
// other state and imports no other berth package.
package events

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// Bus is the event bus. The zero value is not usable: use New.
type Bus struct {
	mu     sync.Mutex
	ring   []events.Message
	next   int
	full   bool
	maxAge time.Duration
	subs   map[*sub]struct{}
}

type sub struct {
	ch      chan events.Message
	dropped bool
}

// New returns a bus retaining up to size events no older than maxAge.
func New(size int, maxAge time.Duration) *Bus {
	return &Bus{ring: make([]events.Message, size), maxAge: maxAge, subs: map[*sub]struct{}{}}
}

// Publish records an event and hands it to every subscriber. A
// subscriber too slow to keep up loses its stream (it is closed) rather
// than slowing the daemon down.
func (b *Bus) Publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	m := events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ring[b.next] = m
	b.next = (b.next + 1) % len(b.ring)
	if b.next == 0 {
		b.full = true
	}
	for s := range b.subs {
		select {
		case s.ch <- m:
		default:
			s.dropped = true
			close(s.ch)
			delete(b.subs, s)
		}
	}
}

// Filter selects events, with Docker's filter keys: type, event (action),
// container, image, volume, network, daemon, label, scope.
type Filter map[string][]string

// Match reports whether m passes f.
func (f Filter) Match(m events.Message) bool {
	in := func(key, v string) bool {
		vals := f[key]
		if len(vals) == 0 {
			return true
		}
		for _, x := range vals {
			if x == v || strings.HasPrefix(v, x+":") {
				return true
			}
		}
		return false
	}
	if !in("type", string(m.Type)) || !in("event", string(m.Action)) || !in("scope", m.Scope) {
		return false
	}
	byActor := func(key string, t events.Type) bool {
		vals := f[key]
		if len(vals) == 0 {
			return true
		}
		if m.Type != t {
			return false
		}
		for _, x := range vals {
			if x == m.Actor.ID || strings.HasPrefix(m.Actor.ID, x) || x == m.Actor.Attributes["name"] {
				return true
			}
		}
		return false
	}
	if !byActor("container", events.ContainerEventType) || !byActor("volume", events.VolumeEventType) ||
		!byActor("network", events.NetworkEventType) || !byActor("daemon", events.DaemonEventType) {
		return false
	}
	if vals := f["image"]; len(vals) > 0 {
		ok := false
		for _, x := range vals {
			img := m.Actor.Attributes["image"]
			if m.Type == events.ImageEventType {
				img = m.Actor.ID
			}
			if x == img || strings.TrimSuffix(img, ":latest") == strings.TrimSuffix(x, ":latest") || x == m.Actor.Attributes["name"] {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	for _, l := range f["label"] {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := m.Actor.Attributes[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	return true
}

// Subscribe returns the retained events in [since, until) that match f,
// and, unless until is in the past, a channel of new matching events that
// ends when ctx is done, until passes or the subscriber falls behind.
func (b *Bus) Subscribe(ctx context.Context, since, until time.Time, f Filter) ([]events.Message, <-chan events.Message) {
	b.mu.Lock()
	var past []events.Message
	n := b.next
	if b.full {
		n = len(b.ring)
	}
	cutoff := time.Now().Add(-b.maxAge)
	for i := 0; i < n; i++ {
		idx := i
		if b.full {
			idx = (b.next + i) % len(b.ring)
		}
		m := b.ring[idx]
		t := time.Unix(0, m.TimeNano)
		if t.Before(cutoff) || !since.IsZero() && t.Before(since) || !until.IsZero() && !t.Before(until) {
			continue
		}
		if f.Match(m) {
			past = append(past, m)
		}
	}
	if !until.IsZero() && !until.After(time.Now()) {
		b.mu.Unlock()
		return past, nil
	}
	s := &sub{ch: make(chan events.Message, 256)}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	out := make(chan events.Message, 16)
	go func() {
		defer close(out)
		defer func() {
			b.mu.Lock()
			if _, ok := b.subs[s]; ok {
				delete(b.subs, s)
				close(s.ch)
			}
			b.mu.Unlock()
		}()
		var deadline <-chan time.Time
		if !until.IsZero() {
			t := time.NewTimer(time.Until(until))
			defer t.Stop()
			deadline = t.C
		}
		for {
			select {
			case m, ok := <-s.ch:
				if !ok {
					return
				}
				if !f.Match(m) {
					continue
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			case <-deadline:
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return past, out
}
