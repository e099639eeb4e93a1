package container

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
)

// A single stats sample (stream=false without one-shot, what `docker stats
// --no-stream` asks for) needs a previous CPU sample for its percentage.
// dockerd waits a second for a second sample; berth keeps each
// container's last sample and uses it when it is between statsPrevMin and
// statsPrevMax old, and otherwise samples twice statsPrevWait apart. So
// `stats --no-stream` over many containers answers in milliseconds, with
// the CPU share since the previous call (or over the last 100 ms).
const (
	statsPrevMin  = 50 * time.Millisecond
	statsPrevMax  = 30 * time.Second
	statsPrevWait = 100 * time.Millisecond
)

type statsSample struct {
	read time.Time
	cpu  container.CPUStats
}

// StatsOnce is one sample with its previous CPU sample filled in.
func (s *Service) StatsOnce(ctx context.Context, ref string) (*container.StatsResponse, error) {
	cur, err := s.Stats(ctx, ref)
	if err != nil {
		return nil, err
	}
	if cur.CPUStats.CPUUsage.TotalUsage == 0 && cur.PidsStats.Current == 0 {
		return cur, nil // not running: an empty sample, at once
	}
	prev, ok := s.swapStatsSample(cur)
	if age := cur.Read.Sub(prev.read); ok && age >= statsPrevMin && age <= statsPrevMax {
		cur.PreRead, cur.PreCPUStats = prev.read, prev.cpu
		return cur, nil
	}
	t := time.NewTimer(statsPrevWait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
	}
	next, err := s.Stats(ctx, ref)
	if err != nil {
		return nil, err
	}
	s.swapStatsSample(next)
	next.PreRead, next.PreCPUStats = cur.Read, cur.CPUStats
	return next, nil
}

// swapStatsSample records r as its container's last sample and returns
// the one before. Samples of containers gone or idle for long are
// dropped as the map grows.
func (s *Service) swapStatsSample(r *container.StatsResponse) (statsSample, bool) {
	s.sup.mu.Lock()
	defer s.sup.mu.Unlock()
	if s.sup.stats == nil {
		s.sup.stats = map[string]statsSample{}
	}
	prev, ok := s.sup.stats[r.ID]
	if r.CPUStats.CPUUsage.TotalUsage != 0 {
		s.sup.stats[r.ID] = statsSample{read: r.Read, cpu: r.CPUStats}
	}
	if len(s.sup.stats) > 64 && len(s.sup.stats)%64 == 0 {
		for id, v := range s.sup.stats {
			if r.Read.Sub(v.read) > statsPrevMax {
				delete(s.sup.stats, id)
			}
		}
	}
	return prev, ok
}
