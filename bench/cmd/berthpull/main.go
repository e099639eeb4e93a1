// Command berthpull is the berth side of bench/compare-pull.sh, and its
// helpers. Subcommands:
//
//	berthpull mkimage --ref HOST/REPO:TAG [--layers 6] [--layer-mb 36] [--seed 1]
//	    builds a linux/amd64 image of pseudo-random, mostly incompressible
//	    layers with go-containerregistry and pushes it; prints the
//	    uncompressed and compressed sizes in bytes.
//	berthpull pull --root DIR --ref REF [--push-to REF2] [--keep] [--cpuprofile FILE]
//	    opens an image.Service on DIR (bbolt metadata.db in it), pulls REF
//	    and prints "pull_ms=... end_epoch_ms=... peak_rss_kib=..." (time in
//	    Service.Pull, wall clock at its end, VmHWM after the pull);
//	    with --push-to tags the image REF2 and pushes it ("push_ms=...");
//	    then removes the image and collects garbage so DIR ends empty
//	    (unless --keep); --cpuprofile FILE profiles Service.Pull.
//	berthpull rss --pids PID[,PID...] [--interval 10ms]
//	    samples the summed VmRSS of the processes until SIGTERM or SIGINT,
//	    then prints "base_kib=... peak_kib=... base_tree_kib=...
//	    peak_tree_kib=..." (base: the first sample; tree: the processes
//	    and all their descendants).
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/image"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: berthpull mkimage|pull|rss [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "mkimage":
		err = mkimage(os.Args[2:])
	case "pull":
		err = pull(os.Args[2:])
	case "rss":
		err = rss(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "berthpull:", err)
		os.Exit(1)
	}
}

func mkimage(args []string) error {
	fs := flag.NewFlagSet("mkimage", flag.ExitOnError)
	ref := fs.String("ref", "", "where to push the image")
	layers := fs.Int("layers", 6, "number of layers")
	layerMB := fs.Int("layer-mb", 36, "uncompressed MiB per layer")
	seed := fs.Uint64("seed", 1, "random seed")
	fs.Parse(args)
	r, err := name.ParseReference(*ref, name.Insecure)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewChaCha8([32]byte{byte(*seed), byte(*seed >> 8)}))
	img := empty.Image
	var raw, comp int64
	for i := 0; i < *layers; i++ {
		data, n := layerTar(rng, i, *layerMB<<20)
		raw += n
		comp += int64(len(data))
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return err
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"/bin/true"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	if err := remote.Write(r, img); err != nil {
		return err
	}
	d, _ := img.Digest()
	fmt.Printf("uncompressed_bytes=%d compressed_bytes=%d digest=%s\n", raw, comp, d)
	return nil
}

// layerTar is a gzip'd tar of about size bytes of file data: files of
// 1-8 MiB, three quarters random bytes and one quarter text, in a few
// directories. It returns the compressed bytes and the tar's size.
func layerTar(rng *rand.Rand, layer, size int) ([]byte, int64) {
	var tarBuf bytes.Buffer
	tw := tar.NewWriter(&tarBuf)
	dir := fmt.Sprintf("layer%d/", layer)
	tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)})
	for f, left := 0, size; left > 0; f++ {
		n := min(left, (1+rng.IntN(8))<<20)
		left -= n
		body := make([]byte, n)
		text := n / 4
		line := []byte(fmt.Sprintf("layer %d file %d: the quick brown fox jumps over the lazy dog\n", layer, f))
		for i := 0; i < text; i += len(line) {
			copy(body[i:text], line)
		}
		for i := text; i < n; i += 8 {
			var w [8]byte
			v := rng.Uint64()
			for k := range w {
				w[k] = byte(v >> (8 * k))
			}
			copy(body[i:], w[:])
		}
		name := fmt.Sprintf("%sd%d/file%03d.bin", dir, f%4, f)
		if f < 4 {
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%sd%d/", dir, f), Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(0, 0)})
		}
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)})
		tw.Write(body)
	}
	tw.Close()
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	zw.Write(tarBuf.Bytes())
	zw.Close()
	return gz.Bytes(), int64(tarBuf.Len())
}

func pull(args []string) error {
	fs := flag.NewFlagSet("pull", flag.ExitOnError)
	root := fs.String("root", "", "service root (created)")
	ref := fs.String("ref", "", "reference to pull")
	pushTo := fs.String("push-to", "", "tag the pulled image so and push it")
	keep := fs.Bool("keep", false, "keep the image (no remove, no GC) to inspect DIR")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of Service.Pull to this file")
	fs.Parse(args)
	if *root == "" || *ref == "" {
		return fmt.Errorf("pull needs --root and --ref")
	}
	ctx := context.Background()
	if err := os.MkdirAll(*root, 0o700); err != nil {
		return err
	}
	db, err := bolt.Open(filepath.Join(*root, "metadata.db"), 0o600, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := image.New(image.Config{
		Root: *root, DB: db, Registry: distribution.New(distribution.Options{}),
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
	})
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	start := time.Now()
	res, err := svc.Pull(ctx, *ref, image.PullOptions{})
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	end := time.Now()
	pullTime := end.Sub(start)
	hwm, _ := statusKiB(os.Getpid(), "VmHWM:")
	fmt.Printf("pull_ms=%.1f end_epoch_ms=%d peak_rss_kib=%d id=%s\n", float64(pullTime.Microseconds())/1000, end.UnixMilli(), hwm, res.ID)
	if *pushTo != "" {
		if err := svc.Tag(ctx, *ref, *pushTo); err != nil {
			return err
		}
		start = time.Now()
		if _, err := svc.Push(ctx, *pushTo, image.PushOptions{}); err != nil {
			return err
		}
		fmt.Printf("push_ms=%.1f\n", float64(time.Since(start).Microseconds())/1000)
		if _, err := svc.Remove(ctx, *pushTo, image.RemoveOptions{}); err != nil {
			return err
		}
	}
	if *keep {
		return nil
	}
	if _, err := svc.Remove(ctx, *ref, image.RemoveOptions{Force: true}); err != nil {
		return err
	}
	_, err = svc.GC(ctx)
	return err
}

// statusKiB reads one "Name:   N kB" line of /proc/PID/status.
func statusKiB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			f := strings.Fields(line[len(field):])
			if len(f) > 0 {
				return strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func rss(args []string) error {
	fs := flag.NewFlagSet("rss", flag.ExitOnError)
	pidList := fs.String("pids", "", "comma-separated process IDs")
	interval := fs.Duration("interval", 10*time.Millisecond, "sampling interval")
	fs.Parse(args)
	var pids []int
	for _, p := range strings.Split(*pidList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("bad pid %q", p)
		}
		pids = append(pids, n)
	}
	// sample returns the summed VmRSS of pids, and of pids plus all their
	// descendants (dockerd re-executes itself as docker-untar to unpack
	// each layer; that memory is not in dockerd's own RSS).
	sample := func() (own, tree int64) {
		for _, p := range pids {
			v, _ := statusKiB(p, "VmRSS:")
			own += v
		}
		tree = own
		for _, p := range descendants(pids) {
			v, _ := statusKiB(p, "VmRSS:")
			tree += v
		}
		return own, tree
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	base, baseTree := sample()
	peak, peakTree := base, baseTree
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	for {
		select {
		case <-sig:
		case <-tick.C:
			o, t := sample()
			peak, peakTree = max(peak, o), max(peakTree, t)
			continue
		}
		o, t := sample()
		peak, peakTree = max(peak, o), max(peakTree, t)
		fmt.Printf("base_kib=%d peak_kib=%d base_tree_kib=%d peak_tree_kib=%d\n", base, peak, baseTree, peakTree)
		return nil
	}
}

// descendants lists every process below roots, roots excluded (a root
// may be another's child: containerd is dockerd's),
// from the parent PIDs in /proc/PID/stat.
func descendants(roots []int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parens.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
	}
	seen := map[int]bool{}
	for _, r := range roots {
		seen[r] = true
	}
	var out []int
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}
