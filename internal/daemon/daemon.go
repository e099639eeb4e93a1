// Package daemon is berthd's composition root: it reads the configuration,
// opens the stores, builds every service explicitly (the whole object
// graph is in New), restores containers and serves the Engine API on the
// configured listeners. It owns the data root's lock and the listeners;
// everything else belongs to the services it builds.
package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	apievents "github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/api"
	"github.com/berth-dev/berth/internal/build"
	"github.com/berth-dev/berth/internal/container"
	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/events"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/memtrim"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/quiet"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/volume"
)

// Version is berthd's version, set at build time.
var Version = "0.1.0-dev"

// Daemon is a running berthd.
type Daemon struct {
	cfg        Config
	log        *slog.Logger
	lock       *os.File
	db         *bolt.DB
	registry   *distribution.Client
	images     *image.Service
	runtime    *runtime.Runtime
	runtimes   *runtimeSet  // the OCI runtimes by name (runtimes.go)
	liveMu     sync.RWMutex // guards cfg's reloadable keys (reload.go)
	containers *container.Service
	volumes    *volume.Service
	builder    *build.Builder
	networks   *network.Service
	events     *events.Bus
	server     *api.Server
	// quiet holds the work done ahead of time for the next create until
	// no request is in progress (nil with BERTH_AHEAD_QUIET=0: at once).
	quiet     *quiet.Gate
	listeners []net.Listener
	started   time.Time
	wg        sync.WaitGroup
}

// New builds the daemon: the stores under the data root, the services,
// and the restored containers. It does not listen yet (see Serve).
func New(ctx context.Context, cfg Config, log *slog.Logger) (_ *Daemon, retErr error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, log: log, started: time.Now()}
	d.quiet = quietGate(os.Getenv("BERTH_AHEAD_QUIET"), log)
	defer func() {
		if retErr != nil {
			d.closeStores()
			unmountExecRoot(cfg.ExecRoot, log)
		}
	}()
	for _, dir := range []string{cfg.DataRoot, cfg.ExecRoot} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, err
		}
	}
	mountExecRoot(cfg.ExecRoot, cfg.Pidfile, log) // execroot_linux.go
	// One daemon per data root: a second one fails here rather than
	// corrupting the first one's state.
	lock, err := os.OpenFile(filepath.Join(cfg.DataRoot, "berthd.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	d.lock = lock
	// A berthd killed a moment ago may still hold the lock: the kernel can
	// release a dead process's files a little after it was reaped
	// (delayed fput). Wait up to 2 s before giving up.
	for deadline := time.Now().Add(2 * time.Second); ; {
		err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			return nil, fmt.Errorf("data root %s is in use by another berthd%s", cfg.DataRoot, lockHolders(lock.Name()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The freelist is not written at each commit (bbolt rebuilds it at
	// open): a commit writes its changed pages and the meta page only.
	d.db, err = bolt.Open(filepath.Join(cfg.DataRoot, "metadata.db"), 0o600, &bolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("open metadata: %w", err)
	}
	d.events = events.New(1024, 24*time.Hour)
	mirrors := map[string][]string{}
	for k, v := range cfg.Mirrors {
		mirrors[k] = v
	}
	if len(cfg.RegistryMirrors) > 0 {
		mirrors["docker.io"] = append(mirrors["docker.io"], cfg.RegistryMirrors...)
	}
	d.registry = distribution.New(distribution.Options{Mirrors: mirrors, Insecure: cfg.InsecureRegistries, UserAgent: "berth/" + Version})
	d.runtime, err = runtime.New(filepath.Join(cfg.ExecRoot, "runtime"))
	if err != nil {
		return nil, err
	}
	if d.runtimes, err = newRuntimeSet(cfg); err != nil {
		return nil, err
	}
	var ctrs *container.Service
	d.images, err = image.New(image.Config{
		Root: cfg.DataRoot, DB: d.db, Registry: d.registry,
		MaxConcurrentDownloads: cfg.MaxConcurrentDownloads,
		Holders: func(ctx context.Context) ([]string, []digest.Digest, error) {
			if ctrs == nil {
				return nil, nil, nil
			}
			snaps, blobs, err := ctrs.Holders(ctx)
			if err != nil || d.builder == nil {
				return snaps, blobs, err
			}
			bs, bb, err := d.builder.Holders(ctx)
			return append(snaps, bs...), append(blobs, bb...), err
		},
	})
	if err != nil {
		return nil, err
	}
	d.volumes, err = d.newVolumes()
	if err != nil {
		return nil, err
	}
	d.networks, err = newNetworks(ctx, cfg, d.db, log)
	if err != nil {
		return nil, err
	}
	ctrs, err = container.New(container.Config{
		Root: cfg.DataRoot, ExecRoot: cfg.ExecRoot, DB: d.db,
		Images: d.images, Snapshots: d.images.Snapshots(), Runtime: d.runtime,
		Volumes:        d.volumes,
		Runtimes:       d.runtimes,
		ShimBinary:     cfg.ShimBinary,
		InitPath:       cfg.InitPath,
		DefaultInit:    cfg.Init,
		DefaultLog:     logConfig(cfg),
		DefaultUlimits: cfg.ulimits(),
		Events: func(e container.Event) {
			d.events.Publish(apievents.ContainerEventType, apievents.Action(e.Action), e.ID, e.Attributes)
		},
		Networks: d.networks,
		NetworkEvents: func(e container.Event) {
			d.events.Publish(apievents.NetworkEventType, apievents.Action(e.Action), e.ID, e.Attributes)
		},
		Quiet: d.quiet,
		Log:   log.With("svc", "container"),
	})
	if err != nil {
		return nil, err
	}
	d.containers = ctrs
	if err := ctrs.Restore(ctx); err != nil {
		return nil, err
	}
	d.volumes.Restore(ctx)
	if d.builder, err = d.newBuilder(); err != nil {
		return nil, err
	}
	d.removeBuildLeftovers(ctx)
	// Directories of snapshots whose creation or removal a crash cut
	// short (containers' snapshots without a record went in Restore).
	if err := d.images.Snapshots().Cleanup(ctx); err != nil {
		log.Warn("snapshot cleanup", "err", err)
	}
	d.server, err = api.NewServer(api.Config{EngineVersion: Version, Logger: log.With("svc", "api"), OnIdle: d.idleTrim, Busy: d.quiet.Busy}, d.routers()...)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Listen opens the configured hosts: unix sockets (mode 0660, group
// cfg.Group when it exists) and TCP only with TLS.
func (d *Daemon) Listen() error {
	for _, h := range d.cfg.Hosts {
		l, err := d.listen(h)
		if err != nil {
			for _, l := range d.listeners {
				l.Close()
			}
			return err
		}
		d.listeners = append(d.listeners, l)
	}
	return nil
}

func (d *Daemon) listen(host string) (net.Listener, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok {
		proto, addr = "unix", host
	}
	switch proto {
	case "unix":
		if err := os.MkdirAll(filepath.Dir(addr), 0o711); err != nil {
			return nil, err
		}
		if err := os.Remove(addr); err != nil && !os.IsNotExist(err) {
			return nil, err
		}
		l, err := net.Listen("unix", addr)
		if err != nil {
			return nil, err
		}
		gid := 0
		if g, err := user.LookupGroup(d.cfg.Group); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
		}
		if err := os.Chown(addr, 0, gid); err != nil {
			l.Close()
			return nil, err
		}
		if err := os.Chmod(addr, 0o660); err != nil {
			l.Close()
			return nil, err
		}
		return l, nil
	case "tcp":
		if !d.cfg.TLSVerify || d.cfg.TLSCert == "" || d.cfg.TLSKey == "" || d.cfg.TLSCACert == "" {
			return nil, fmt.Errorf("refusing to listen on %s without mutual TLS (--tlsverify, --tlscacert, --tlscert, --tlskey)", host)
		}
		cert, err := tls.LoadX509KeyPair(d.cfg.TLSCert, d.cfg.TLSKey)
		if err != nil {
			return nil, err
		}
		ca, err := os.ReadFile(d.cfg.TLSCACert)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("no certificates in %s", d.cfg.TLSCACert)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, err
		}
		return tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}), nil
	}
	return nil, fmt.Errorf("unsupported host %q (unix:// or tcp:// with TLS)", host)
}

// Serve serves the API on every listener until ctx is done, then shuts
// the server down. Containers keep running (live restore).
func (d *Daemon) Serve(ctx context.Context) error {
	errc := make(chan error, len(d.listeners))
	for _, l := range d.listeners {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			errc <- d.server.Serve(l)
		}()
	}
	d.events.Publish(apievents.DaemonEventType, "start", "berthd", map[string]string{"name": hostname()})
	select {
	case <-ctx.Done():
	case err := <-errc:
		if err != nil {
			d.log.Error("serve", "err", err)
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := d.server.Shutdown(sctx); err != nil {
		_ = d.server.Close()
	}
	d.wg.Wait()
	return nil
}

// Close releases the stores. Shims and containers are left running.
func (d *Daemon) Close() error {
	for _, h := range d.cfg.Hosts {
		if proto, addr, ok := strings.Cut(h, "://"); ok && proto == "unix" {
			_ = os.Remove(addr)
		}
	}
	d.closeStores()
	unmountExecRoot(d.cfg.ExecRoot, d.log)
	return nil
}

func (d *Daemon) closeStores() {
	if d.containers != nil {
		_ = d.containers.Close()
	}
	if d.builder != nil {
		d.builder.Close()
	}
	if d.networks != nil {
		_ = d.networks.Close()
	}
	if d.volumes != nil {
		_ = d.volumes.Close()
	}
	if d.images != nil {
		_ = d.images.Snapshots().Close()
	}
	if d.db != nil {
		_ = d.db.Close()
	}
	if d.lock != nil {
		_ = d.lock.Close()
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// lockHolders names the processes that have path open (" (pid N: comm)"),
// for the error when the data root's lock is taken.
func lockHolders(path string) string {
	var out []string
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue
		}
		if _, err := strconv.Atoi(p.Name()); err != nil || p.Name() == strconv.Itoa(os.Getpid()) {
			continue // self, thread-self, not a process
		}
		for _, fd := range fds {
			if l, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); err == nil && l == path {
				comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				out = append(out, "pid "+p.Name()+": "+strings.TrimSpace(string(comm)))
			}
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, ", ") + ")"
}

// textTrimDelay is how long berthd must have been idle before it drops
// its binary's clean pages (memtrim): the first request after that faults
// the code it runs back in (~2 ms), which a burst of commands should not
// pay every two seconds.
const textTrimDelay = 30 * time.Second

// idleTrim runs 2 s after the last request: it gives the free heap back
// at once and, if nothing comes in for textTrimDelay more, drops the
// page-table entries of the binary's clean pages (package memtrim: most
// of an idle berthd's resident set is text mapped while it started).
func (d *Daemon) idleTrim() {
	debug.FreeOSMemory()
	seen := d.server.Requests()
	time.AfterFunc(textTrimDelay, func() {
		if d.server.Requests() == seen {
			memtrim.DropCleanText()
		}
	})
}

// quietGate is the gate for the work done ahead of time, from
// BERTH_AHEAD_QUIET: "" the defaults, "0" none (that work starts at once,
// as before; for A/B measurements), else "QUIET,MAXWAIT,RESET" as Go
// durations (quiet.New; an empty or zero field takes its default).
func quietGate(env string, log *slog.Logger) *quiet.Gate {
	if env == "0" {
		return nil
	}
	var ds [3]time.Duration
	if env != "" {
		parts := strings.Split(env, ",")
		for i, p := range parts {
			if i >= len(ds) {
				break
			}
			if p == "" {
				continue
			}
			d, err := time.ParseDuration(p)
			if err != nil || d < 0 {
				log.Warn("BERTH_AHEAD_QUIET: not a duration, default taken", "value", p)
				continue
			}
			ds[i] = d
		}
	}
	return quiet.New(ds[0], ds[1], ds[2])
}
