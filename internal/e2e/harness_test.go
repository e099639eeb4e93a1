package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/berth-dev/berth/internal/fixture"
	"github.com/berth-dev/berth/internal/network"
)

// bins holds the binaries built once for the whole test binary.
var bins struct {
	dir                     string
	berthd, shim, init, cli string
	registry                string
	docker                  string
	// berthInit is --init's binary, built beside berthd (which finds it
	// there, as in bin/).
	berthInit string
	// compose is berth-compose, built beside berth, which `berth compose`
	// execs.
	compose string
}

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: these tests need root (berthd runs containers)")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "berth-e2e-bin-")
	if err != nil {
		panic(err)
	}
	bins.dir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		root, err := moduleRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		for _, b := range []struct {
			out *string
			pkg string
		}{
			{&bins.berthd, "./cmd/berthd"}, {&bins.shim, "./cmd/berth-shim"},
			{&bins.init, "./cmd/berth-runtime-init"}, {&bins.cli, "./cmd/berth"},
			{&bins.registry, "./cmd/berth-registry"}, {&bins.berthInit, "./cmd/berth-init"},
			{&bins.compose, "./cmd/berth-compose"},
		} {
			*b.out = filepath.Join(dir, filepath.Base(b.pkg))
			args := append([]string{"build"}, fixture.RuntimeBuildArgs...)
			args = append(args, "-o", *b.out, b.pkg)
			cmd := exec.Command("go", args...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: build %s: %v\n%s", b.pkg, err, out)
				return 1
			}
		}
		bins.docker = "/usr/local/bin/docker"
		return m.Run()
	}()
	os.Exit(code)
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// daemon is a berthd started for one test, with its own roots and socket.
type daemon struct {
	t        *testing.T
	args     []string // extra berthd flags for the next start
	env      []string // extra environment for the next start (BERTH_FAILPOINT=...)
	dataRoot string
	execRoot string
	sock     string
	cmd      *exec.Cmd
	logBuf   *bytes.Buffer
	client   *client.Client
	exited   chan struct{}

	// bridge is the default network's bridge of this daemon (each test
	// daemon has its own; subnets come from a test-only pool).
	bridge string
	// dnsUpstream is where the embedded DNS forwards (loopback only;
	// by default a port nothing listens on).
	dnsUpstream string
}

// unixTransport is an HTTP transport whose every connection goes to the
// unix socket sock (whatever the request's host).
func unixTransport(sock string) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "unix", sock)
	}}
}

// startDaemon starts berthd on fresh roots; Cleanup stops it, removes
// every container (killing them) and checks nothing is left mounted.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	return startDaemonWith(t, nil)
}

// startDaemonWith is startDaemon with a chance to change the daemon's
// settings (dnsUpstream) before it starts.
func startDaemonWith(t *testing.T, opt func(*daemon)) *daemon {
	t.Helper()
	// Short paths: unix socket paths are limited to 108 bytes and the
	// shim's socket lives under <exec-root>/c/<64-hex-id>/.
	base, err := os.MkdirTemp("", "be")
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{t: t, dataRoot: filepath.Join(base, "d"), execRoot: filepath.Join(base, "x"), sock: filepath.Join(base, "s.sock"),
		bridge: "bt" + filepath.Base(base)[2:]}
	if len(d.bridge) > 15 {
		d.bridge = d.bridge[:15]
	}
	t.Cleanup(func() {
		d.stop()
		d.cleanupContainers()
		d.checkNetworkLeftovers()
		if mounted := mountsUnder(base); len(mounted) > 0 {
			t.Errorf("mounts left under %s: %v", base, mounted)
			for i := len(mounted) - 1; i >= 0; i-- {
				_ = syscall.Unmount(mounted[i], syscall.MNT_DETACH)
			}
		}
		_ = os.RemoveAll(base)
	})
	if opt != nil {
		opt(d)
	}
	d.start()
	return d
}

func (d *daemon) start() {
	t := d.t
	cfgFile := filepath.Join(filepath.Dir(d.dataRoot), "daemon.json")
	if err := os.WriteFile(cfgFile, []byte(testDaemonJSON(d.bridge, d.dnsUpstream)), 0o600); err != nil {
		t.Fatal(err)
	}
	d.logBuf = &bytes.Buffer{}
	d.cmd = exec.Command(bins.berthd, "--data-root", d.dataRoot, "--exec-root", d.execRoot,
		"-H", "unix://"+d.sock, "--pidfile", filepath.Join(filepath.Dir(d.dataRoot), "berthd.pid"),
		"--config-file", cfgFile, "--shim-binary", bins.shim, "--log-level", "debug")
	d.cmd.Args = append(d.cmd.Args, d.args...)
	if len(d.env) > 0 {
		d.cmd.Env = append(os.Environ(), d.env...)
	}
	d.cmd.Stdout, d.cmd.Stderr = d.logBuf, d.logBuf
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.exited = make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	deadline := time.Now().Add(20 * time.Second)
	// Ready means answering /_ping, not only a socket that takes a
	// connection (a connect can succeed on a socket whose daemon is not
	// serving yet, and a restart replaces the socket file).
	sock := d.sock
	ping := &http.Client{Timeout: time.Second, Transport: unixTransport(sock)}
	defer ping.CloseIdleConnections()
	for {
		resp, err := ping.Get("http://berthd/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-d.exited:
			t.Fatalf("berthd exited at start:\n%s", d.logBuf)
		default:
		}
		if time.Now().After(deadline) {
			// Not left running behind the failure.
			_ = d.cmd.Process.Kill()
			<-d.exited
			d.cmd = nil
			t.Fatalf("berthd did not answer /_ping within 20s:\n%s", d.logBuf)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cl, err := client.New(client.WithHost("unix://"+d.sock), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	d.client = cl
}

// stop terminates berthd (SIGTERM: containers keep running).
func (d *daemon) stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	if d.client != nil {
		d.client.Close()
	}
	if d.t.Failed() {
		d.t.Logf("berthd log:\n%s", d.logBuf)
	}
	d.cmd = nil
}

// kill9 kills berthd without warning.
func (d *daemon) kill9() {
	_ = d.cmd.Process.Kill()
	<-d.exited
	d.client.Close()
	d.cmd = nil
}

// cleanupContainers starts a daemon if needed and removes every container,
// so no shim or container process outlives the test.
func (d *daemon) cleanupContainers() {
	if _, err := os.Stat(d.dataRoot); err != nil {
		return
	}
	// A test that failed with its daemon running leaves it to us: use it
	// rather than start a second one on the same data root (which would
	// fail on the lock and leave the first running).
	if d.cmd != nil {
		select {
		case <-d.exited:
			d.cmd = nil
		default:
		}
	}
	if d.cmd == nil {
		d.start()
	}
	defer d.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	list, err := d.client.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		d.t.Errorf("cleanup: list: %v", err)
		return
	}
	for _, c := range list.Items {
		if _, err := d.client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			d.t.Errorf("cleanup: rm %s: %v", c.ID, err)
		}
	}
	// Shims exit once their container is gone; give them a moment.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if len(shimsUnder(d.execRoot)) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.t.Errorf("shims still running after cleanup: %v", shimsUnder(d.execRoot))
}

// shimsUnder lists berth-shim processes that belong to dir: their
// command line or one of their open files (the shim's log, even deleted)
// is under it.
func shimsUnder(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(string(b), "\x00")
		if filepath.Base(argv[0]) != "berth-shim" {
			continue
		}
		cl := strings.Join(argv, " ")
		mine := strings.Contains(cl, dir)
		fds, _ := os.ReadDir(filepath.Join("/proc", e.Name(), "fd"))
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", e.Name(), "fd", fd.Name())); err == nil && strings.HasPrefix(l, dir) {
				mine = true
			}
		}
		if mine {
			out = append(out, e.Name()+": "+cl)
		}
	}
	return out
}

func mountsUnder(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mounts")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(f[1], dir) {
			out = append(out, f[1])
		}
	}
	return out
}

// cli runs a CLI binary (berth or docker) against the daemon and returns
// stdout, stderr and the exit code.
func (d *daemon) cli(bin string, stdin io.Reader, args ...string) (string, string, int) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "BERTH_HOST=unix://"+d.sock,
		"DOCKER_CONFIG="+filepath.Join(filepath.Dir(d.dataRoot), "dockercfg"), "DOCKER_CLI_HINTS=false")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, stdin
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			d.t.Fatalf("%s %v: %v", bin, args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// importBusybox imports the busybox test rootfs as image ref through the
// API (POST /images/create?fromSrc=-), as `docker import` does.
func (d *daemon) importBusybox(ref string) {
	d.t.Helper()
	var buf bytes.Buffer
	if err := tarDir(fixture.BusyboxRootfs(d.t), &buf); err != nil {
		d.t.Fatal(err)
	}
	out, errOut, code := d.cli(bins.docker, &buf, "import", "-", ref)
	if code != 0 {
		d.t.Fatalf("docker import: exit %d: %s %s", code, out, errOut)
	}
}

func tarDir(dir string, w io.Writer) error {
	tw := tar.NewWriter(w)
	if err := tarInto(tw, dir); err != nil {
		return err
	}
	return tw.Close()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var _ = http.StatusOK

// testPool is where test daemons' networks get their subnets: berthd
// takes a host-wide lock while it picks a subnet that overlaps no route,
// so parallel test daemons never share one, and nothing real is touched.
const testPool = "10.213.0.0/16"

func testDaemonJSON(bridge, dnsUpstream string) string {
	if dnsUpstream == "" {
		dnsUpstream = "127.0.0.1:9"
	}
	return fmt.Sprintf(`{"bridge": %q, "default-address-pools": [{"base": %q, "size": 24}], "dns-upstreams": [%q]}`, bridge, testPool, dnsUpstream)
}

// checkNetworkLeftovers fails the test when the daemon left its bridge,
// its nftables table or network namespace files behind (berthd removes
// them when it stops with no container running).
func (d *daemon) checkNetworkLeftovers() {
	if _, err := os.Stat("/sys/class/net/" + d.bridge); err == nil {
		d.t.Errorf("bridge %s left behind", d.bridge)
	}
	if tbl := network.TableName(d.dataRoot); network.TableExists(tbl) {
		d.t.Errorf("nftables table %s left behind", tbl)
	}
	if ents, _ := os.ReadDir(filepath.Join(d.execRoot, "netns")); len(ents) > 0 {
		d.t.Errorf("netns files left behind: %v", ents)
	}
}
