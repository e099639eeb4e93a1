package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/volume"
)

// BenchmarkRunVolumes measures what volumes add to `run --rm`: each
// iteration runs `true` without volumes, with 5 existing named volumes
// (-v nameN:/vN) and with 5 anonymous volumes (-v /vN, removed with the
// container as --rm does), interleaved so that machine noise hits all
// three alike. The reported deltas are the cost of the volumes.
func BenchmarkRunVolumes(b *testing.B) {
	e := startEngine(b)
	ctx := context.Background()
	var named, anon []string
	for i := 0; i < 5; i++ {
		named = append(named, fmt.Sprintf("benchvol%d:/v%d", i, i))
		anon = append(anon, fmt.Sprintf("/v%d", i))
	}
	// run returns the whole run's time and its create, start+wait and
	// remove parts.
	run := func(binds []string, volumes []string) [4]time.Duration {
		t0 := time.Now()
		cfg := &container.Config{Image: "busybox", Cmd: []string{"true"}}
		if len(volumes) > 0 {
			cfg.Volumes = map[string]struct{}{}
			for _, v := range volumes {
				cfg.Volumes[v] = struct{}{}
			}
		}
		res, err := e.client.ContainerCreate(ctx, client.ContainerCreateOptions{Config: cfg,
			HostConfig: &container.HostConfig{NetworkMode: "none", Binds: binds}})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		w := e.client.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
		if _, err := e.client.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			b.Fatal(err)
		}
		select {
		case r := <-w.Result:
			if r.StatusCode != 0 {
				b.Fatalf("exit %d", r.StatusCode)
			}
		case err := <-w.Error:
			b.Fatal(err)
		}
		t2 := time.Now()
		if _, err := e.client.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{RemoveVolumes: true}); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		return [4]time.Duration{t3.Sub(t0), t1.Sub(t0), t2.Sub(t1), t3.Sub(t2)}
	}
	run(named, nil) // creates the named volumes
	var plain, withNamed, withAnon [4][]time.Duration
	add := func(into *[4][]time.Duration, d [4]time.Duration) {
		for i := range d {
			into[i] = append(into[i], d[i])
		}
	}
	for b.Loop() {
		add(&plain, run(nil, nil))
		add(&withNamed, run(named, nil))
		add(&withAnon, run(nil, anon))
	}
	// Medians: on a shared machine a few slow outliers would swamp means.
	med := func(ds []time.Duration) float64 {
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	m0, mNamed, mAnon := med(plain[0]), med(withNamed[0]), med(withAnon[0])
	b.ReportMetric(m0, "plain-ms/run")
	b.ReportMetric(mNamed, "5named-ms/run")
	b.ReportMetric(mAnon, "5anon-ms/run")
	b.ReportMetric(mNamed-m0, "5named-delta-ms")
	b.ReportMetric(mAnon-m0, "5anon-delta-ms")
	for i, part := range []string{"create", "start", "rm"} {
		b.ReportMetric(med(withNamed[i+1])-med(plain[i+1]), "5named-"+part+"-delta-ms")
		b.ReportMetric(med(withAnon[i+1])-med(plain[i+1]), "5anon-"+part+"-delta-ms")
	}
	if list, err := e.client.VolumeList(ctx, client.VolumeListOptions{}); err == nil && len(list.Items) != 5 {
		b.Fatalf("%d volumes left, want the 5 named ones", len(list.Items))
	}
}

// BenchmarkCopyUp10k copies a 10,000-file image directory (100 dirs of
// 100 files of 4 KiB, owners and modes varied) into an empty volume, as
// the first mount of a volume over a populated image path does.
//
// BENCH_COPYUP_DIR picks the filesystem (default: the test's temp dir);
// the sub-benchmark cp-a runs `cp -a` on the same tree as a baseline.
func BenchmarkCopyUp10k(b *testing.B) {
	base := b.TempDir()
	if d := os.Getenv("BENCH_COPYUP_DIR"); d != "" {
		var err error
		if base, err = os.MkdirTemp(d, "copyup"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(base)
	}
	rootfs := filepath.Join(base, "rootfs")
	src := filepath.Join(rootfs, "data")
	payload := make([]byte, 4096)
	for i := range payload {
		payload[i] = byte(i)
	}
	var total int64
	for d := 0; d < 100; d++ {
		dir := filepath.Join(src, fmt.Sprintf("d%03d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 100; f++ {
			p := filepath.Join(dir, fmt.Sprintf("f%03d", f))
			if err := os.WriteFile(p, payload, 0o644); err != nil {
				b.Fatal(err)
			}
			_ = os.Chown(p, f, d)
			total += int64(len(payload))
		}
	}
	work := filepath.Join(base, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Run("berth", func(b *testing.B) { benchCopy(b, rootfs, work, total, false) })
	b.Run("cp-a", func(b *testing.B) { benchCopy(b, rootfs, work, total, true) })
}

func benchCopy(b *testing.B, rootfs, work string, total int64, cp bool) {
	var files int64
	var elapsed time.Duration
	i := 0
	for b.Loop() {
		b.StopTimer()
		dst := filepath.Join(work, fmt.Sprint(i))
		i++
		if err := os.Mkdir(dst, 0o755); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		if cp {
			if out, err := exec.Command("cp", "-a", filepath.Join(rootfs, "data")+"/.", dst).CombinedOutput(); err != nil {
				b.Fatalf("cp: %v %s", err, out)
			}
			elapsed += time.Since(t0)
			files += 10100
		} else {
			st, err := volume.CopyUp(rootfs, "/data", dst)
			elapsed += time.Since(t0)
			if err != nil {
				b.Fatal(err)
			}
			if st.Bytes != total {
				b.Fatalf("copied %d bytes, want %d", st.Bytes, total)
			}
			files += st.Files
		}
		b.StopTimer()
		_ = os.RemoveAll(dst)
		b.StartTimer()
	}
	sec := elapsed.Seconds()
	b.ReportMetric(float64(files)/sec, "files/s")
	b.ReportMetric(float64(total)*float64(b.N)/sec/1e6, "MB/s")
}
