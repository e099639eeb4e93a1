package events

import (
	"context"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func TestRingAndFilters(t *testing.T) {
	b := New(3, time.Hour)
	for _, a := range []events.Action{"create", "start", "die", "destroy"} {
		b.Publish(events.ContainerEventType, a, "abc123", map[string]string{"name": "web", "image": "busybox"})
	}
	past, _ := b.Subscribe(context.Background(), time.Time{}, time.Now().Add(-time.Nanosecond), nil)
	if len(past) != 3 || past[0].Action != "start" || past[2].Action != "destroy" {
		t.Fatalf("ring kept %+v, want the last 3 in order", past)
	}
	past, _ = b.Subscribe(context.Background(), time.Time{}, time.Now().Add(-time.Nanosecond), Filter{"event": {"die"}, "container": {"web"}})
	if len(past) != 1 || past[0].Action != "die" {
		t.Fatalf("filtered %+v", past)
	}
	past, _ = b.Subscribe(context.Background(), time.Time{}, time.Now().Add(-time.Nanosecond), Filter{"image": {"busybox:latest"}, "label": {"x"}})
	if len(past) != 0 {
		t.Fatalf("label filter let through %+v", past)
	}
}

func TestStreamEndsWithContext(t *testing.T) {
	b := New(8, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	_, ch := b.Subscribe(ctx, time.Time{}, time.Time{}, Filter{"type": {"image"}})
	b.Publish(events.ContainerEventType, "start", "x", nil)
	b.Publish(events.ImageEventType, "pull", "busybox", nil)
	select {
	case m := <-ch:
		if m.Type != events.ImageEventType {
			t.Fatalf("got %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no event")
	}
	cancel()
	for range ch {
	}
}
