package bench

import (
	"archive/tar"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// engine is a private berthd for the engine benchmarks.
type engine struct {
	// tarTime sums the client's time making build contexts.
	tarTime time.Duration
	cmd     *exec.Cmd
	base    string
	client  *client.Client
}

// startEngine builds berth's binaries (static, as scripts/build.sh), starts
// berthd on fresh short-path roots and imports a busybox image.
func startEngine(b *testing.B) *engine {
	b.Helper()
	return startEngineWith(b, os.Getenv("BENCH_BIN"), 213)
}

// startEngineWith starts berthd from the binaries in bin ("": built from
// this checkout) with address pool 10.<pool>.0.0/16.
func startEngineWith(b *testing.B, bin string, pool int) *engine {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Fatal("the engine benchmarks need root")
	}
	// BENCH_BIN: binaries built already (berthd, berth-shim,
	// berth-runtime-init), e.g. another commit's for an A/B comparison.
	if bin == "" {
		bin = b.TempDir()
		args := []string{"build", "-tags", "netgo,osusergo", "-ldflags", "-linkmode external -extldflags -static", "-o", bin + "/",
			"../cmd/berthd", "../cmd/berth-shim", "../cmd/berth-runtime-init"}
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			b.Fatalf("build: %v\n%s", err, out)
		}
	}
	base, err := os.MkdirTemp("", "bb")
	if err != nil {
		b.Fatal(err)
	}
	e := &engine{base: base}
	// Its own bridge and a test address pool: never docker0 or berth0;
	// the embedded DNS forwards to loopback only.
	cfgJSON := fmt.Sprintf(`{"bridge": "bb%s", "default-address-pools": [{"base": "10.%d.0.0/16", "size": 24}], "dns-upstreams": ["127.0.0.1:9"]}`, filepath.Base(base)[2:], pool)
	os.WriteFile(filepath.Join(base, "d.json"), []byte(cfgJSON), 0o600)
	sock := filepath.Join(base, "s.sock")
	e.cmd = exec.Command(filepath.Join(bin, "berthd"), "--data-root", filepath.Join(base, "d"), "--exec-root", filepath.Join(base, "x"),
		"-H", "unix://"+sock, "--pidfile", filepath.Join(base, "pid"), "--config-file", filepath.Join(base, "d.json"),
		"--shim-binary", filepath.Join(bin, "berth-shim"), "--log-level", cmp.Or(os.Getenv("BENCH_LOG_LEVEL"), "warn"))
	e.cmd.Stderr = os.Stderr
	if err := e.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(e.stop)
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if i > 1000 {
			b.Fatal("berthd did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.client, err = client.New(client.WithHost("unix://"+sock), client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := busyboxTar(&buf); err != nil {
		b.Fatal(err)
	}
	rc, err := e.client.ImageImport(context.Background(), client.ImageImportSource{Source: &buf, SourceName: "-"}, "busybox:latest", client.ImageImportOptions{})
	if err != nil {
		b.Fatal(err)
	}
	rc.Close()
	return e
}

// busyboxTar writes a root filesystem with busybox and a /bin/true link.
func busyboxTar(w *bytes.Buffer) error {
	data, err := os.ReadFile(DefaultBusybox)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data))},
		{Name: "bin/true", Typeflag: tar.TypeSymlink, Linkname: "busybox"},
		{Name: "bin/sleep", Typeflag: tar.TypeSymlink, Linkname: "busybox"},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
	} {
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Name == "bin/busybox" {
			tw.Write(data)
		}
	}
	return tw.Close()
}

func (e *engine) stop() {
	ctx := context.Background()
	if e.client != nil {
		if list, err := e.client.ContainerList(ctx, client.ContainerListOptions{All: true}); err == nil {
			for _, c := range list.Items {
				e.client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
		e.client.Close()
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	e.cmd.Wait()
	// berthd's tmpfs on the exec root, if a shim still held it.
	syscall.Unmount(filepath.Join(e.base, "x"), syscall.MNT_DETACH)
	os.RemoveAll(e.base)
}

// BenchmarkPsAll500 lists 500 containers (created, not started: ps is
// served from berthd's in-memory index either way).
func BenchmarkPsAll500(b *testing.B) {
	e := startEngine(b)
	ctx := context.Background()
	for i := 0; i < 500; i++ {
		if _, err := e.client.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: "busybox", Cmd: []string{"true"}, Labels: map[string]string{"n": fmt.Sprint(i)}},
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		list, err := e.client.ContainerList(ctx, client.ContainerListOptions{All: true})
		if err != nil || len(list.Items) != 500 {
			b.Fatalf("list: %d %v", len(list.Items), err)
		}
	}
}

// BenchmarkRunRmTrue is `run --rm --network none busybox true` through the
// Go client: create, start, wait, remove, without a CLI's start-up.
func BenchmarkRunRmTrue(b *testing.B) {
	runRmTrue(b, "none")
}

// BenchmarkRunRmTrueBridge is the same on the default bridge network:
// a network namespace, a veth pair on the bridge, an address, a route.
func BenchmarkRunRmTrueBridge(b *testing.B) {
	runRmTrue(b, "bridge")
}

// BenchmarkRunRmTrueAB is BenchmarkRunRmTrue against two berthds side by
// side, BENCH_BIN_A's binaries and BENCH_BIN_B's (each "": this
// checkout's), alternating run by run so both see the same machine; it
// reports the median of each side and of the per-pair ratios B/A.
// BENCH_NET picks the network mode (default none); BENCH_RM=auto has
// berthd remove the container and waits for that, as `run --rm` does.
func BenchmarkRunRmTrueAB(b *testing.B) {
	engines := []*engine{startEngineWith(b, os.Getenv("BENCH_BIN_A"), 213), startEngineWith(b, os.Getenv("BENCH_BIN_B"), 214)}
	ctx := context.Background()
	// BENCH_NET=bridge: the same on the default bridge network.
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(cmp.Or(os.Getenv("BENCH_NET"), "none"))}
	// BENCH_RM=auto: as `run --rm` does it, the container is auto-removed
	// by berthd and the wait is for its removal.
	auto := os.Getenv("BENCH_RM") == "auto"
	hc.AutoRemove = auto
	cond := container.WaitConditionNextExit
	if auto {
		cond = container.WaitConditionRemoved
	}
	var rm [2][]float64
	one := func(e *engine) (create, start, total time.Duration) {
		t0 := time.Now()
		res, err := e.client.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config: &container.Config{Image: "busybox", Cmd: []string{"true"}}, HostConfig: hc,
		})
		if err != nil {
			b.Fatal(err)
		}
		w := e.client.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: cond})
		t1 := time.Now()
		if _, err := e.client.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		select {
		case r := <-w.Result:
			if r.StatusCode != 0 {
				b.Fatalf("exit %d", r.StatusCode)
			}
		case err := <-w.Error:
			b.Fatal(err)
		}
		t3 := time.Now()
		if !auto {
			if _, err := e.client.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		if e == engines[0] {
			rm[0] = append(rm[0], float64(time.Since(t3).Microseconds()))
		} else {
			rm[1] = append(rm[1], float64(time.Since(t3).Microseconds()))
		}
		return t1.Sub(t0), t2.Sub(t1), time.Since(t0)
	}
	for range 3 { // warm-up
		one(engines[0])
		one(engines[1])
	}
	rm = [2][]float64{}
	var tot, st, cr [2][]float64
	var ratio []float64
	i := 0
	for b.Loop() {
		var t [2]time.Duration
		for k := range 2 {
			e := (i + k) % 2 // who goes first alternates
			c, s, all := one(engines[e])
			cr[e] = append(cr[e], float64(c.Microseconds()))
			t[e] = all
			tot[e] = append(tot[e], float64(all.Microseconds()))
			st[e] = append(st[e], float64(s.Microseconds()))
		}
		ratio = append(ratio, float64(t[1])/float64(t[0]))
		i++
	}
	b.ReportMetric(median(tot[0]), "A-µs/op")
	b.ReportMetric(median(tot[1]), "B-µs/op")
	b.ReportMetric(median(st[0]), "A-start-µs/op")
	b.ReportMetric(median(st[1]), "B-start-µs/op")
	b.ReportMetric(median(cr[0]), "A-create-µs/op")
	b.ReportMetric(median(cr[1]), "B-create-µs/op")
	b.ReportMetric(median(rm[0]), "A-rm-µs/op")
	b.ReportMetric(median(rm[1]), "B-rm-µs/op")
	b.ReportMetric(median(ratio), "B/A")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func runRmTrue(b *testing.B, mode string) {
	e := startEngine(b)
	ctx := context.Background()
	var tCreate, tStart, tWait, tRemove time.Duration
	hc := &container.HostConfig{NetworkMode: container.NetworkMode(mode)}
	if os.Getenv("BENCH_SECCOMP") == "unconfined" {
		hc.SecurityOpt = []string{"seccomp=unconfined"}
	}
	for b.Loop() {
		t0 := time.Now()
		res, err := e.client.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}},
			HostConfig: hc,
		})
		if err != nil {
			b.Fatal(err)
		}
		w := e.client.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
		t1 := time.Now()
		if _, err := e.client.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		select {
		case r := <-w.Result:
			if r.StatusCode != 0 {
				b.Fatalf("exit %d", r.StatusCode)
			}
		case err := <-w.Error:
			b.Fatal(err)
		}
		t3 := time.Now()
		if _, err := e.client.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{}); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		tCreate += t1.Sub(t0)
		tStart += t2.Sub(t1)
		tWait += t3.Sub(t2)
		tRemove += t4.Sub(t3)
	}
	n := float64(b.N)
	b.ReportMetric(float64(tCreate.Microseconds())/n, "create-µs/op")
	b.ReportMetric(float64(tStart.Microseconds())/n, "start-µs/op")
	b.ReportMetric(float64(tWait.Microseconds())/n, "wait-µs/op")
	b.ReportMetric(float64(tRemove.Microseconds())/n, "remove-µs/op")
}

// BenchmarkRunDetached50AB is 50 sequential `run -d --network none busybox
// sleep 3600` through the Go client (create + start each), then a forced
// removal of the 50, against BENCH_BIN_A's and BENCH_BIN_B's berthds side
// by side, batch by batch in turn (who goes first alternating). It reports
// the median batch total of each side, of the removals, and of the
// per-pair ratios B/A of the batches.
func BenchmarkRunDetached50AB(b *testing.B) {
	engines := []*engine{startEngineWith(b, os.Getenv("BENCH_BIN_A"), 213), startEngineWith(b, os.Getenv("BENCH_BIN_B"), 214)}
	ctx := context.Background()
	hc := &container.HostConfig{NetworkMode: "none"}
	batch := func(e *engine) (run, rm time.Duration) {
		ids := make([]string, 0, 50)
		t0 := time.Now()
		for range 50 {
			res, err := e.client.ContainerCreate(ctx, client.ContainerCreateOptions{
				Config: &container.Config{Image: "busybox", Cmd: []string{"sleep", "3600"}}, HostConfig: hc,
			})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.client.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
				b.Fatal(err)
			}
			ids = append(ids, res.ID)
		}
		t1 := time.Now()
		for _, id := range ids {
			if _, err := e.client.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true}); err != nil {
				b.Fatal(err)
			}
		}
		return t1.Sub(t0), time.Since(t1)
	}
	var run, rm [2][]float64
	var ratio []float64
	i := 0
	for b.Loop() {
		var t [2]time.Duration
		for k := range 2 {
			e := (i + k) % 2
			r, m := batch(engines[e])
			t[e] = r
			run[e] = append(run[e], float64(r.Milliseconds()))
			rm[e] = append(rm[e], float64(m.Milliseconds()))
		}
		ratio = append(ratio, float64(t[1])/float64(t[0]))
		i++
	}
	b.ReportMetric(median(run[0]), "A-run50-ms")
	b.ReportMetric(median(run[1]), "B-run50-ms")
	b.ReportMetric(median(rm[0]), "A-rm50-ms")
	b.ReportMetric(median(rm[1]), "B-rm50-ms")
	b.ReportMetric(median(ratio), "B/A")
}
