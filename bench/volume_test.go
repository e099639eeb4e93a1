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
	bolt "go.etcd.io/bbolt"

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

// BenchmarkVolumePath5 is the daemon-side volume work a run with 5
// anonymous volumes adds, in process and without the container: acquire
// (records written in a transaction that stands for the container's own),
// mount (activate, copy-up check against an image path that is empty),
// unmount, plan the removal (records deleted in the container's delete
// transaction), finish. The transactions' fsyncs are the container's and
// happen without volumes too; the benchmark runs them with empty
// container work so the figure is an upper bound.
func BenchmarkVolumePath5(b *testing.B) {
	root := b.TempDir()
	if d := os.Getenv("BENCH_COPYUP_DIR"); d != "" {
		var err error
		if root, err = os.MkdirTemp(d, "vpath"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(root)
	}
	db, err := bolt.Open(filepath.Join(root, "m.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s, err := volume.New(volume.Config{Root: root, DB: db})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rootfs := filepath.Join(root, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	reqs := make([]volume.CreateOptions, 5)
	var withVolumes, txOnly time.Duration
	i := 0
	for b.Loop() {
		// A container's run takes 20 ms or more: the background work
		// (spare directories, removals) gets that time, as in real use.
		b.StopTimer()
		time.Sleep(20 * time.Millisecond)
		b.StartTimer()
		i++
		ref := fmt.Sprint("c", i)
		t0 := time.Now()
		_ = db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("c")); return err })
		_ = db.Update(func(tx *bolt.Tx) error { return nil })
		t1 := time.Now()
		got, put, err := s.AcquireAll(ctx, reqs, ref)
		if err != nil {
			b.Fatal(err)
		}
		if err := db.Update(put); err != nil {
			b.Fatal(err)
		}
		var names []string
		for j, g := range got {
			p, err := s.Mount(ctx, g.Name, ref, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := volume.CopyUp(rootfs, fmt.Sprint("/v", j), p); err != nil {
				b.Fatal(err)
			}
			names = append(names, g.Name)
		}
		for _, n := range names {
			_ = s.Unmount(ctx, n, ref)
		}
		plan := s.PlanRemoval(names, ref)
		if err := db.Update(plan.Delete); err != nil {
			b.Fatal(err)
		}
		for _, n := range names {
			s.Release(n, ref)
		}
		plan.Finish(true)
		t2 := time.Now()
		txOnly += t1.Sub(t0)
		withVolumes += t2.Sub(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(withVolumes.Microseconds())/n, "volumes-µs/run")
	b.ReportMetric(float64((withVolumes-txOnly).Microseconds())/n, "beyond-2tx-µs/run")
}
