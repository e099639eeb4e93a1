// Command berthd is berth's daemon: it serves the Docker Engine API on a
// unix socket (default /run/berth/berth.sock) and manages containers,
// images and their stores. Its flags are dockerd's where they mean the
// same; /etc/berth/daemon.json takes Docker's key names, and flags given
// on the command line override the file.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/daemon"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/sysmon"
)

func main() {
	sysmon.Slacken(sysmon.DefaultSlack)
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berthd:", err)
		os.Exit(1)
	}
}

func newCommand() *cobra.Command {
	def := daemon.Defaults()
	var (
		flagCfg     = def
		configFile  string
		logOpts     []string
		ulimits     []string
		liveRestore bool
		version     bool
		pools       []string
		icc, ipMasq bool
		addRuntimes []string
	)
	cmd := &cobra.Command{
		Use:           "berthd [flags]",
		Short:         "berth's daemon: serves the Docker Engine API",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if version {
				fmt.Printf("berthd version %s\n", daemon.Version)
				return nil
			}
			cfg := def
			if err := daemon.LoadFile(configFile, &cfg, cmd.Flags().Changed("config-file")); err != nil {
				return err
			}
			// Flags given on the command line override the file.
			fl := cmd.Flags()
			set := func(name string, apply func()) {
				if fl.Changed(name) {
					apply()
				}
			}
			set("data-root", func() { cfg.DataRoot = flagCfg.DataRoot })
			set("exec-root", func() { cfg.ExecRoot = flagCfg.ExecRoot })
			set("host", func() { cfg.Hosts = flagCfg.Hosts })
			set("pidfile", func() { cfg.Pidfile = flagCfg.Pidfile })
			set("log-level", func() { cfg.LogLevel = flagCfg.LogLevel })
			set("debug", func() { cfg.Debug = flagCfg.Debug })
			set("group", func() { cfg.Group = flagCfg.Group })
			set("tls", func() { cfg.TLS = flagCfg.TLS })
			set("tlsverify", func() { cfg.TLSVerify = flagCfg.TLSVerify })
			set("tlscacert", func() { cfg.TLSCACert = flagCfg.TLSCACert })
			set("tlscert", func() { cfg.TLSCert = flagCfg.TLSCert })
			set("tlskey", func() { cfg.TLSKey = flagCfg.TLSKey })
			set("log-driver", func() { cfg.LogDriver = flagCfg.LogDriver })
			set("insecure-registry", func() { cfg.InsecureRegistries = flagCfg.InsecureRegistries })
			set("registry-mirror", func() { cfg.RegistryMirrors = flagCfg.RegistryMirrors })
			set("max-concurrent-downloads", func() { cfg.MaxConcurrentDownloads = flagCfg.MaxConcurrentDownloads })
			set("shim-binary", func() { cfg.ShimBinary = flagCfg.ShimBinary })
			set("init", func() { cfg.Init = flagCfg.Init })
			set("init-path", func() { cfg.InitPath = flagCfg.InitPath })
			set("live-restore", func() { cfg.LiveRestore = &liveRestore })
			set("bridge", func() { cfg.Bridge = flagCfg.Bridge })
			set("bip", func() { cfg.BIP = flagCfg.BIP })
			set("mtu", func() { cfg.MTU = flagCfg.MTU })
			set("dns-upstream", func() { cfg.DNSUpstreams = flagCfg.DNSUpstreams })
			set("icc", func() { cfg.ICC = &icc })
			set("ip-masq", func() { cfg.IPMasq = &ipMasq })
			set("ipv6", func() { cfg.IPv6 = flagCfg.IPv6 })
			set("fixed-cidr-v6", func() { cfg.FixedCIDRv6 = flagCfg.FixedCIDRv6 })
			set("ip", func() { cfg.IP = flagCfg.IP })
			set("fixed-cidr", func() { cfg.FixedCIDR = flagCfg.FixedCIDR })
			set("default-runtime", func() { cfg.DefaultRuntime = flagCfg.DefaultRuntime })
			set("label", func() { cfg.Labels = flagCfg.Labels })
			if err := addRuntimeFlags(&cfg, addRuntimes); err != nil {
				return err
			}
			if fl.Changed("default-address-pool") {
				cfg.DefaultAddressPools = nil
				for _, v := range pools {
					p, err := network.ParsePool(v)
					if err != nil {
						return err
					}
					cfg.DefaultAddressPools = append(cfg.DefaultAddressPools, p)
				}
			}
			if fl.Changed("log-opt") {
				cfg.LogOpts = map[string]string{}
				for _, o := range logOpts {
					k, v, ok := strings.Cut(o, "=")
					if !ok {
						return fmt.Errorf("invalid log-opt %q: want key=value", o)
					}
					cfg.LogOpts[k] = v
				}
			}
			if fl.Changed("default-ulimit") {
				cfg.DefaultUlimits = map[string]*units.Ulimit{}
				for _, u := range ulimits {
					ul, err := units.ParseUlimit(u)
					if err != nil {
						return err
					}
					cfg.DefaultUlimits[ul.Name] = ul
				}
			}
			if cfg.TLSVerify {
				cfg.TLS = true
			}
			// SIGHUP reads the file again (reload.go).
			reload := func() (daemon.Config, error) {
				c := def
				if err := daemon.LoadFile(configFile, &c, fl.Changed("config-file")); err != nil {
					return c, err
				}
				return c, addRuntimeFlags(&c, addRuntimes)
			}
			return run(cfg, reloader{load: reload, changed: fl.Changed})
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config-file", "/etc/berth/daemon.json", "Daemon configuration file")
	f.StringVar(&flagCfg.DataRoot, "data-root", def.DataRoot, "Root directory of persistent berth state")
	f.StringVar(&flagCfg.ExecRoot, "exec-root", def.ExecRoot, "Root directory for execution state files")
	f.StringArrayVarP(&flagCfg.Hosts, "host", "H", def.Hosts, "Daemon socket(s) to connect to")
	f.StringVarP(&flagCfg.Pidfile, "pidfile", "p", def.Pidfile, "Path to use for daemon PID file")
	f.StringVarP(&flagCfg.LogLevel, "log-level", "l", def.LogLevel, `Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")`)
	f.BoolVarP(&flagCfg.Debug, "debug", "D", false, "Enable debug mode")
	f.StringVarP(&flagCfg.Group, "group", "G", def.Group, "Group for the unix socket")
	f.BoolVar(&flagCfg.TLS, "tls", false, "Use TLS; implied by --tlsverify")
	f.BoolVar(&flagCfg.TLSVerify, "tlsverify", false, "Use TLS and verify the remote")
	f.StringVar(&flagCfg.TLSCACert, "tlscacert", "", "Trust certs signed only by this CA")
	f.StringVar(&flagCfg.TLSCert, "tlscert", "", "Path to TLS certificate file")
	f.StringVar(&flagCfg.TLSKey, "tlskey", "", "Path to TLS key file")
	f.StringVar(&flagCfg.LogDriver, "log-driver", def.LogDriver, "Default driver for container logs")
	f.StringArrayVar(&logOpts, "log-opt", nil, "Default log driver options for containers")
	f.StringArrayVar(&ulimits, "default-ulimit", nil, "Default ulimits for containers")
	f.StringArrayVar(&flagCfg.InsecureRegistries, "insecure-registry", nil, "Enable insecure registry communication")
	f.StringArrayVar(&flagCfg.RegistryMirrors, "registry-mirror", nil, "Preferred registry mirror")
	f.IntVar(&flagCfg.MaxConcurrentDownloads, "max-concurrent-downloads", 3, "Set the max concurrent downloads")
	f.BoolVar(&liveRestore, "live-restore", true, "Keep containers running while the daemon is down (always on in berth)")
	f.StringVar(&flagCfg.ShimBinary, "shim-binary", "", "Path of berth-shim (default: beside berthd)")
	f.BoolVar(&flagCfg.Init, "init", false, "Run an init in every container to forward signals and reap processes")
	f.StringVar(&flagCfg.InitPath, "init-path", "", "Path to the berth-init binary (default: beside berthd, then berth-init or docker-init on PATH)")
	f.BoolVarP(&version, "version", "v", false, "Print version information and quit")
	f.StringVarP(&flagCfg.Bridge, "bridge", "b", "", `Bridge of the default "bridge" network (default "berth0"; "none": no default network)`)
	f.StringVar(&flagCfg.BIP, "bip", "", "Address and prefix of the default bridge (default: the first free subnet of the address pools)")
	f.StringArrayVar(&pools, "default-address-pool", nil, "Default address pool for networks (base=CIDR,size=N)")
	f.IntVar(&flagCfg.MTU, "mtu", 0, "MTU of the default bridge network (default 1500)")
	f.BoolVar(&icc, "icc", true, "Enable inter-container communication on the default network")
	f.BoolVar(&ipMasq, "ip-masq", true, "Enable IP masquerading for the default network")
	f.StringVar(&flagCfg.FixedCIDR, "fixed-cidr", "", "IPv4 subnet of the default network's container addresses (within --bip)")
	f.StringVar(&flagCfg.IP, "ip", "", "Default IP when binding container ports (default 0.0.0.0)")
	f.BoolVar(&flagCfg.IPv6, "ipv6", false, "Enable IPv6 on the default bridge network")
	f.StringVar(&flagCfg.FixedCIDRv6, "fixed-cidr-v6", "", "IPv6 subnet of the default bridge network (default: a random unique local /64)")
	f.StringArrayVar(&flagCfg.DNSUpstreams, "dns-upstream", nil, "Server the embedded DNS forwards to (ip or ip:port; default: the host's resolv.conf)")
	f.StringArrayVar(&addRuntimes, "add-runtime", nil, "Register an additional OCI compatible runtime (name=path)")
	f.StringVar(&flagCfg.DefaultRuntime, "default-runtime", def.DefaultRuntime, "Default OCI runtime for containers")
	f.StringArrayVar(&flagCfg.Labels, "label", nil, "Set key=value labels to the daemon")
	return cmd
}

func run(cfg daemon.Config, rl reloader) error {
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads (from the start: its default action would end us).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if cfg.Pidfile != "" {
		if err := writePidfile(cfg.Pidfile); err != nil {
			return err
		}
		defer os.Remove(cfg.Pidfile)
	}
	d, err := daemon.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Listen(); err != nil {
		return err
	}
	log.Info("berthd started", "version", daemon.Version, "hosts", cfg.Hosts, "data-root", cfg.DataRoot)
	go rl.serve(ctx, d, hup, level, log)
	return d.Serve(ctx)
}

// writePidfile refuses to start when another live process holds the file.
func writePidfile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid != os.Getpid() {
			if syscall.Kill(pid, 0) == nil {
				if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "berthd" {
					return fmt.Errorf("pid file found, ensure berthd is not running or delete %s", path)
				}
			}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())), 0o644)
}
