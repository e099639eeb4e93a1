package container

import (
	"context"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Prune removes every stopped container matching the filters ("until",
// "label", "label!"), and reports what it freed.
func (s *Service) Prune(ctx context.Context, f map[string][]string) (*container.PruneReport, error) {
	var until time.Time
	for _, v := range f["until"] {
		t, err := parseUntil(v)
		if err != nil {
			return nil, err
		}
		until = t
	}
	s.mu.RLock()
	var cands []Record
	for _, c := range s.byID {
		c.mu.Lock()
		if !c.rec.State.Running() && !c.rec.State.Removing {
			cands = append(cands, c.rec)
		}
		c.mu.Unlock()
	}
	s.mu.RUnlock()
	rep := &container.PruneReport{ContainersDeleted: []string{}}
	for _, r := range cands {
		if !until.IsZero() && !r.Created.Before(until) {
			continue
		}
		if !labelsMatch(r.Config.Labels, f["label"], f["label!"]) {
			continue
		}
		size, _, _ := s.cfg.Snapshots.Usage(ctx, r.Snapshot)
		if err := s.Remove(ctx, r.ID, RemoveOptions{}); err != nil {
			if errdefs.Is(err, errdefs.Conflict) || errdefs.Is(err, errdefs.NotFound) {
				continue
			}
			return rep, err
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, r.ID)
		rep.SpaceReclaimed += uint64(size)
	}
	return rep, nil
}

// labelsMatch applies label (all must match) and label! (none may).
func labelsMatch(labels map[string]string, want, not []string) bool {
	for _, l := range want {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || hasV && got != v {
			return false
		}
	}
	for _, l := range not {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := labels[k]
		if ok && (!hasV || got == v) {
			return false
		}
	}
	return true
}

// parseUntil accepts a Unix timestamp, an RFC 3339 time or a Go duration
// ("10m": that long ago), as Docker's until filter.
func parseUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	var sec, nsec int64
	if secs, frac, ok := strings.Cut(v, "."); ok {
		if n, err := parseInt(secs); err == nil {
			sec = n
			if m, err := parseInt((frac + "000000000")[:9]); err == nil {
				nsec = m
			}
			return time.Unix(sec, nsec), nil
		}
	} else if n, err := parseInt(v); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, errdefs.Newf(errdefs.InvalidArgument, "invalid filter 'until=%s'", v)
}

func parseInt(s string) (int64, error) {
	var n int64
	if s == "" {
		return 0, errdefs.Newf(errdefs.InvalidArgument, "empty number")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, errdefs.Newf(errdefs.InvalidArgument, "not a number: %s", s)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}
