package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// BenchmarkStatsNoStream is `docker stats --no-stream` over N running
// containers (BENCH_STATS_N, default 100) as the docker CLI asks for it:
// one stream=false request per container, all at once, each needing a
// previous CPU sample. Sub-benchmark "one" is a single container's
// one-shot sample, sequentially.
func BenchmarkStatsNoStream(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("BENCH_STATS_N")); err == nil && v > 0 {
		n = v
	}
	e := startEngine(b)
	ctx := context.Background()
	var ids []string
	for i := 0; i < n; i++ {
		res, err := e.client.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:     &container.Config{Image: "busybox", Cmd: []string{"sleep", "3600"}},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.client.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			b.Fatal(err)
		}
		ids = append(ids, res.ID)
	}
	sample := func(id string, prev bool) error {
		res, err := e.client.ContainerStats(ctx, id, client.ContainerStatsOptions{IncludePreviousSample: prev})
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var s container.StatsResponse
		if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
			return err
		}
		if s.PidsStats.Current == 0 {
			return fmt.Errorf("%s: empty sample", id)
		}
		return nil
	}
	b.Run(fmt.Sprintf("all-%d", n), func(b *testing.B) {
		for b.Loop() {
			var wg sync.WaitGroup
			errs := make(chan error, len(ids))
			for _, id := range ids {
				wg.Add(1)
				go func() { defer wg.Done(); errs <- sample(id, true) }()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("one", func(b *testing.B) {
		for b.Loop() {
			if err := sample(ids[0], false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
