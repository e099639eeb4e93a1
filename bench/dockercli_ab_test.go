package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkDockerRunRmAB is `docker run --rm --network none busybox true`
// through the docker CLI (DOCKER_CLI, default /usr/local/bin/docker)
// against two berthds side by side, BENCH_BIN_A's binaries and
// BENCH_BIN_B's, alternating run by run as BenchmarkRunRmTrueAB does; the
// CLI's own start-up is in every figure. It reports the median of each
// side and of the per-pair ratios B/A.
func BenchmarkDockerRunRmAB(b *testing.B) {
	docker := os.Getenv("DOCKER_CLI")
	if docker == "" {
		docker = "/usr/local/bin/docker"
	}
	if _, err := os.Stat(docker); err != nil {
		b.Skipf("no docker CLI: %v", err)
	}
	engines := []*engine{startEngineWith(b, os.Getenv("BENCH_BIN_A"), 213), startEngineWith(b, os.Getenv("BENCH_BIN_B"), 214)}
	cfg := b.TempDir()
	one := func(e *engine) time.Duration {
		cmd := exec.Command(docker, "run", "--rm", "--network", "none", "busybox", "true")
		cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(e.base, "s.sock"), "DOCKER_CONFIG="+cfg, "DOCKER_CLI_HINTS=false")
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("docker run: %v\n%s", err, out)
		}
		return time.Since(t0)
	}
	for range 3 { // warm-up
		one(engines[0])
		one(engines[1])
	}
	var tot [2][]float64
	var ratio []float64
	i := 0
	for b.Loop() {
		var t [2]time.Duration
		for k := range 2 {
			e := (i + k) % 2 // who goes first alternates
			t[e] = one(engines[e])
			tot[e] = append(tot[e], float64(t[e].Microseconds()))
		}
		ratio = append(ratio, float64(t[1])/float64(t[0]))
		i++
	}
	b.ReportMetric(median(tot[0]), "A-µs/op")
	b.ReportMetric(median(tot[1]), "B-µs/op")
	b.ReportMetric(median(ratio), "B/A")
}
