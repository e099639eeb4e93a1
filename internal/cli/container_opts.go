package cli

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/pflag"
)

// containerOptions holds docker's run/create flags.
type containerOptions struct {
	attach            listOpts
	env, envFile      listOpts
	labels, labelFile listOpts
	volumes           listOpts
	mounts            mountOpts
	tmpfs             listOpts
	publish, expose   listOpts
	publishAll        bool
	name              string
	workdir           string
	user              string
	entrypoint        string
	hostname          string
	domainname        string
	networks          listOpts
	aliases           listOpts
	ipv4, ipv6        string
	macAddress        string
	linkLocalIPs      listOpts
	dns, dnsOpt       listOpts
	dnsSearch         listOpts
	addHost           listOpts
	capAdd, capDrop   listOpts
	privileged        bool
	securityOpt       listOpts
	readOnly          bool
	restart           string
	healthCmd         string
	healthInterval    time.Duration
	healthTimeout     time.Duration
	healthStart       time.Duration
	healthStartIntvl  time.Duration
	healthRetries     int
	noHealthcheck     bool
	healthOnFailure   string
	init              bool
	logDriver         string
	logOpts           listOpts
	memory            memBytes
	memorySwap        memSwapBytes
	memoryReservation memBytes
	swappiness        int64
	cpus              nanoCPUs
	cpuShares         int64
	cpuPeriod         int64
	cpuQuota          int64
	cpuRtPeriod       int64
	cpuRtRuntime      int64
	cpusetCpus        string
	cpusetMems        string
	pidsLimit         int64
	blkioWeight       uint16
	blkioWeightDevice weightOpts
	readBps, writeBps throttleOpts
	readIOps          throttleOpts
	writeIOps         throttleOpts
	devices           listOpts
	deviceCgroupRules listOpts
	ulimits           ulimitOpts
	sysctls           mapOpts
	annotations       mapOpts
	storageOpt        listOpts
	shmSize           memBytes
	groupAdd          listOpts
	ipc, pid, uts     string
	userns            string
	cgroupParent      string
	cgroupns          string
	oomScoreAdj       int
	oomKillDisable    bool
	stopSignal        string
	stopTimeout       int
	platform          string
	pull              string
	stdin, tty        bool
	autoRemove        bool
	volumesFrom       listOpts
	links             listOpts
	isolation         string
	runtime           string
	cidfile           string
	volumeDriver      string

	image string
	args  []string
}

// addContainerFlags registers docker's run/create flags on fs.
func addContainerFlags(fs *pflag.FlagSet, o *containerOptions) {
	o.attach.validate = validateAttach
	o.env.validate = validateEnv
	o.labels.validate = validateLabel
	o.addHost.validate = validateExtraHost
	o.dns.validate = validateDNS
	o.readBps.bytes, o.writeBps.bytes = true, true

	fs.VarP(&o.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	fs.Var(&o.deviceCgroupRules, "device-cgroup-rule", "Add a rule to the cgroup allowed devices list")
	fs.Var(&o.devices, "device", "Add a host device to the container")
	fs.VarP(&o.env, "env", "e", "Set environment variables")
	fs.Var(&o.envFile, "env-file", "Read in a file of environment variables")
	fs.StringVar(&o.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	fs.Var(&o.groupAdd, "group-add", "Add additional groups to join")
	fs.StringVarP(&o.hostname, "hostname", "h", "", "Container host name")
	fs.StringVar(&o.domainname, "domainname", "", "Container NIS domain name")
	fs.BoolVarP(&o.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.VarP(&o.labels, "label", "l", "Set meta data on a container")
	fs.Var(&o.labelFile, "label-file", "Read in a line delimited file of labels")
	fs.BoolVar(&o.readOnly, "read-only", false, "Mount the container's root filesystem as read only")
	fs.StringVar(&o.restart, "restart", "no", "Restart policy to apply when a container exits")
	fs.StringVar(&o.stopSignal, "stop-signal", "", "Signal to stop the container")
	fs.IntVar(&o.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	fs.Var(&o.sysctls, "sysctl", "Sysctl options")
	fs.BoolVarP(&o.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.Var(&o.ulimits, "ulimit", "Ulimit options")
	fs.StringVarP(&o.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVarP(&o.workdir, "workdir", "w", "", "Working directory inside the container")
	fs.BoolVar(&o.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")

	// Security.
	fs.Var(&o.capAdd, "cap-add", "Add Linux capabilities")
	fs.Var(&o.capDrop, "cap-drop", "Drop Linux capabilities")
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.Var(&o.securityOpt, "security-opt", "Security Options")
	fs.StringVar(&o.userns, "userns", "", "User namespace to use")
	fs.StringVar(&o.cgroupns, "cgroupns", "", "Cgroup namespace to use (host|private)")

	// Network and ports.
	fs.Var(&o.addHost, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	fs.Var(&o.dns, "dns", "Set custom DNS servers")
	fs.Var(&o.dnsOpt, "dns-opt", "Set DNS options")
	fs.Var(&o.dnsOpt, "dns-option", "Set DNS options")
	hideFlag(fs, "dns-opt")
	fs.Var(&o.dnsSearch, "dns-search", "Set custom DNS search domains")
	fs.Var(&o.expose, "expose", "Expose a port or a range of ports")
	fs.StringVar(&o.ipv4, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fs.StringVar(&o.ipv6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	fs.Var(&o.links, "link", "Add link to another container")
	fs.Var(&o.linkLocalIPs, "link-local-ip", "Container IPv4/IPv6 link-local addresses")
	fs.StringVar(&o.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.VarP(&o.publish, "publish", "p", "Publish a container's port(s) to the host")
	fs.BoolVarP(&o.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	fs.Var(&o.networks, "net", "Connect a container to a network")
	fs.Var(&o.networks, "network", "Connect a container to a network")
	hideFlag(fs, "net")
	fs.Var(&o.aliases, "net-alias", "Add network-scoped alias for the container")
	fs.Var(&o.aliases, "network-alias", "Add network-scoped alias for the container")
	hideFlag(fs, "net-alias")

	// Logging and storage.
	fs.StringVar(&o.logDriver, "log-driver", "", "Logging driver for the container")
	fs.StringVar(&o.volumeDriver, "volume-driver", "", "Optional volume driver for the container")
	fs.Var(&o.logOpts, "log-opt", "Log driver options")
	fs.Var(&o.storageOpt, "storage-opt", "Storage driver options for the container")
	fs.Var(&o.tmpfs, "tmpfs", "Mount a tmpfs directory")
	fs.Var(&o.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	fs.VarP(&o.volumes, "volume", "v", "Bind mount a volume")
	fs.Var(&o.mounts, "mount", "Attach a filesystem mount to the container")

	// Health checks.
	fs.StringVar(&o.healthCmd, "health-cmd", "", "Command to run to check health")
	fs.DurationVar(&o.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	fs.IntVar(&o.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	fs.DurationVar(&o.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStart, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	fs.DurationVar(&o.healthStartIntvl, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	fs.BoolVar(&o.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")
	// Beyond docker: carried as the label berth.health-on-failure (the
	// Engine API has no field for it); berthd acts on it.
	fs.StringVar(&o.healthOnFailure, "health-on-failure", "", "Action when the container becomes unhealthy (none|kill|restart|stop)")

	// Resources.
	fs.Uint16Var(&o.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fs.Var(&o.blkioWeightDevice, "blkio-weight-device", "Block IO weight (relative device weight)")
	fs.StringVar(&o.cidfile, "cidfile", "", "Write the container ID to the file")
	fs.StringVar(&o.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fs.StringVar(&o.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fs.Int64Var(&o.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fs.Int64Var(&o.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fs.Int64Var(&o.cpuRtPeriod, "cpu-rt-period", 0, "Limit CPU real-time period in microseconds")
	fs.Int64Var(&o.cpuRtRuntime, "cpu-rt-runtime", 0, "Limit CPU real-time runtime in microseconds")
	fs.Int64VarP(&o.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fs.Var(&o.cpus, "cpus", "Number of CPUs")
	fs.Var(&o.readBps, "device-read-bps", "Limit read rate (bytes per second) from a device")
	fs.Var(&o.readIOps, "device-read-iops", "Limit read rate (IO per second) from a device")
	fs.Var(&o.writeBps, "device-write-bps", "Limit write rate (bytes per second) to a device")
	fs.Var(&o.writeIOps, "device-write-iops", "Limit write rate (IO per second) to a device")
	fs.VarP(&o.memory, "memory", "m", "Memory limit")
	fs.Var(&o.memoryReservation, "memory-reservation", "Memory soft limit")
	fs.Var(&o.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	fs.Int64Var(&o.swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	fs.BoolVar(&o.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	fs.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.Int64Var(&o.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")

	// Low-level execution.
	fs.StringVar(&o.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	fs.StringVar(&o.ipc, "ipc", "", "IPC mode to use")
	fs.StringVar(&o.isolation, "isolation", "", "Container isolation technology")
	fs.StringVar(&o.pid, "pid", "", "PID namespace to use")
	fs.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
	fs.StringVar(&o.uts, "uts", "", "UTS namespace to use")
	fs.StringVar(&o.runtime, "runtime", "", "Runtime to use for this container")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.Var(&o.annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)")

	fs.StringVar(&o.name, "name", "", "Assign a name to the container")
	fs.StringVar(&o.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	fs.StringVar(&o.pull, "pull", "missing", `Pull image before creating ("always", "missing", "never")`)
}

// containerConfig is the create request derived from the flags.
type containerConfig struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
	Platform         *ocispec.Platform
}

// parse translates the flags into the create request exactly as docker does.
func (o *containerOptions) parse(fs *pflag.FlagSet) (*containerConfig, error) {
	attachStdin, attachStdout, attachStderr := false, false, false
	for _, a := range o.attach.values {
		switch a {
		case "stdin":
			attachStdin = true
		case "stdout":
			attachStdout = true
		case "stderr":
			attachStderr = true
		}
	}
	if o.macAddress != "" {
		if _, err := net.ParseMAC(strings.TrimSpace(o.macAddress)); err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", o.macAddress)
		}
	}
	if o.stdin {
		attachStdin = true
	}
	if o.attach.Len() == 0 {
		attachStdout, attachStderr = true, true
	}
	if o.swappiness != -1 && (o.swappiness < 0 || o.swappiness > 100) {
		return nil, fmt.Errorf("invalid value: %d. Valid memory swappiness range is 0-100", o.swappiness)
	}

	// -v: specs with a source become binds, the rest anonymous volumes.
	volumes := map[string]struct{}{}
	var binds []string
	for _, spec := range o.volumes.values {
		src, dst, hasSrc := splitVolumeSpec(spec)
		if dst == "" {
			return nil, fmt.Errorf("invalid spec: %s: empty section between colons", spec)
		}
		if !hasSrc {
			volumes[spec] = struct{}{}
			continue
		}
		if !filepath.IsAbs(src) && strings.HasPrefix(src, ".") {
			if abs, err := filepath.Abs(src); err == nil {
				spec = abs + spec[len(src):]
			}
		}
		binds = append(binds, spec)
	}

	tmpfs := map[string]string{}
	for _, t := range o.tmpfs.values {
		k, v, _ := strings.Cut(t, ":")
		tmpfs[k] = v
	}

	var entrypoint []string
	if o.entrypoint != "" {
		entrypoint = []string{o.entrypoint}
	} else if fs.Changed("entrypoint") {
		entrypoint = []string{""}
	}

	exposed, bindings, err := parsePublish(o.publish.values)
	if err != nil {
		return nil, err
	}
	for _, e := range o.expose.values {
		ports, err := parseExpose(e)
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			exposed[p] = struct{}{}
		}
	}

	devices := make([]container.DeviceMapping, 0, len(o.devices.values))
	for _, d := range o.devices.values {
		dm, err := parseDevice(d)
		if err != nil {
			return nil, err
		}
		devices = append(devices, dm)
	}

	var env []string
	for _, f := range o.envFile.values {
		lines, err := readKVFile(f, true)
		if err != nil {
			return nil, err
		}
		env = append(env, lines...)
	}
	env = append(env, o.env.values...)

	var labelKVs []string
	for _, f := range o.labelFile.values {
		lines, err := readKVFile(f, false)
		if err != nil {
			return nil, err
		}
		labelKVs = append(labelKVs, lines...)
	}
	labelKVs = append(labelKVs, o.labels.values...)
	switch o.healthOnFailure {
	case "":
	case "none", "kill", "restart", "stop":
		labelKVs = append(labelKVs, "berth.health-on-failure="+o.healthOnFailure)
	default:
		return nil, fmt.Errorf("invalid --health-on-failure %q: must be none, kill, restart or stop", o.healthOnFailure)
	}

	if !container.PidMode(o.pid).Valid() {
		return nil, errors.New("--pid: invalid PID mode")
	}
	if !container.UTSMode(o.uts).Valid() {
		return nil, errors.New("--uts: invalid UTS mode")
	}
	if !container.UsernsMode(o.userns).Valid() {
		return nil, errors.New("--userns: invalid USER mode")
	}
	if !container.CgroupnsMode(o.cgroupns).Valid() {
		return nil, errors.New("--cgroupns: invalid CGROUP mode")
	}

	restart, err := parseRestartPolicy(o.restart)
	if err != nil {
		return nil, err
	}

	if len(o.logOpts.values) > 0 && o.logDriver == "none" {
		return nil, fmt.Errorf("invalid logging opts for driver %s", o.logDriver)
	}
	logOpts := kvToMap(o.logOpts.values)

	secOpts, masked, readonlyPaths, err := parseSecurityOpts(o.securityOpt.values)
	if err != nil {
		return nil, err
	}

	var storageOpts map[string]string
	for _, so := range o.storageOpt.values {
		k, v, ok := strings.Cut(so, "=")
		if !ok {
			return nil, errors.New("invalid storage option")
		}
		if storageOpts == nil {
			storageOpts = map[string]string{}
		}
		storageOpts[k] = v
	}

	health, err := o.healthConfig()
	if err != nil {
		return nil, err
	}

	swappiness, oomKillDisable, pidsLimit := o.swappiness, o.oomKillDisable, o.pidsLimit
	resources := container.Resources{
		CgroupParent:         o.cgroupParent,
		Memory:               int64(o.memory),
		MemoryReservation:    int64(o.memoryReservation),
		MemorySwap:           int64(o.memorySwap),
		MemorySwappiness:     &swappiness,
		OomKillDisable:       &oomKillDisable,
		NanoCPUs:             int64(o.cpus),
		CPUShares:            o.cpuShares,
		CPUPeriod:            o.cpuPeriod,
		CpusetCpus:           o.cpusetCpus,
		CpusetMems:           o.cpusetMems,
		CPUQuota:             o.cpuQuota,
		CPURealtimePeriod:    o.cpuRtPeriod,
		CPURealtimeRuntime:   o.cpuRtRuntime,
		PidsLimit:            &pidsLimit,
		BlkioWeight:          o.blkioWeight,
		BlkioWeightDevice:    nonNil(o.blkioWeightDevice.values),
		BlkioDeviceReadBps:   nonNil(o.readBps.values),
		BlkioDeviceWriteBps:  nonNil(o.writeBps.values),
		BlkioDeviceReadIOps:  nonNil(o.readIOps.values),
		BlkioDeviceWriteIOps: nonNil(o.writeIOps.values),
		Ulimits:              nonNil(o.ulimits.values),
		DeviceCgroupRules:    o.deviceCgroupRules.values,
		Devices:              devices,
	}

	cfg := &container.Config{
		Hostname:     o.hostname,
		Domainname:   o.domainname,
		ExposedPorts: exposed,
		User:         o.user,
		Tty:          o.tty,
		OpenStdin:    o.stdin,
		AttachStdin:  attachStdin,
		AttachStdout: attachStdout,
		AttachStderr: attachStderr,
		Env:          env,
		Cmd:          o.args,
		Image:        o.image,
		Volumes:      volumes,
		Entrypoint:   entrypoint,
		WorkingDir:   o.workdir,
		Labels:       kvToMap(labelKVs),
		StopSignal:   o.stopSignal,
		Healthcheck:  health,
	}
	if len(o.args) == 0 {
		cfg.Cmd = nil
	}
	if fs.Changed("stop-timeout") {
		st := o.stopTimeout
		cfg.StopTimeout = &st
	}

	var annotations map[string]string
	if len(o.annotations.values) > 0 {
		annotations = o.annotations.values
	}
	hc := &container.HostConfig{
		Binds:           binds,
		ContainerIDFile: o.cidfile,
		OomScoreAdj:     o.oomScoreAdj,
		AutoRemove:      o.autoRemove,
		Privileged:      o.privileged,
		PortBindings:    bindings,
		Links:           o.links.values,
		PublishAllPorts: o.publishAll,
		DNS:             toAddrs(o.dns.allOrEmpty()),
		DNSSearch:       o.dnsSearch.allOrEmpty(),
		DNSOptions:      o.dnsOpt.allOrEmpty(),
		ExtraHosts:      o.addHost.values,
		VolumesFrom:     o.volumesFrom.values,
		IpcMode:         container.IpcMode(o.ipc),
		NetworkMode:     container.NetworkMode(o.networkMode()),
		PidMode:         container.PidMode(o.pid),
		UTSMode:         container.UTSMode(o.uts),
		UsernsMode:      container.UsernsMode(o.userns),
		CgroupnsMode:    container.CgroupnsMode(o.cgroupns),
		CapAdd:          o.capAdd.values,
		CapDrop:         o.capDrop.values,
		GroupAdd:        o.groupAdd.values,
		RestartPolicy:   restart,
		SecurityOpt:     secOpts,
		StorageOpt:      storageOpts,
		ReadonlyRootfs:  o.readOnly,
		LogConfig:       container.LogConfig{Type: o.logDriver, Config: logOpts},
		VolumeDriver:    o.volumeDriver,
		Isolation:       container.Isolation(o.isolation),
		ShmSize:         int64(o.shmSize),
		Resources:       resources,
		Tmpfs:           tmpfs,
		Sysctls:         o.sysctls.values,
		Runtime:         o.runtime,
		Mounts:          o.mounts.values,
		MaskedPaths:     masked,
		ReadonlyPaths:   readonlyPaths,
		Annotations:     annotations,
	}
	if o.autoRemove && restart.Name != "" && restart.Name != container.RestartPolicyDisabled {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	if fs.Changed("init") {
		init := o.init
		hc.Init = &init
	}
	if cfg.OpenStdin && cfg.AttachStdin {
		cfg.StdinOnce = true
	}
	endpoints, err := o.endpoints()
	if err != nil {
		return nil, err
	}
	return &containerConfig{
		Config:           cfg,
		HostConfig:       hc,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: endpoints},
	}, nil
}

// splitVolumeSpec splits [source:]target[:mode].
func splitVolumeSpec(spec string) (src, dst string, hasSrc bool) {
	parts := strings.Split(spec, ":")
	switch len(parts) {
	case 1:
		return "", parts[0], false
	case 2:
		// "/a:/b" is a bind; "/a:ro" is an anonymous volume with a mode.
		if isVolumeMode(parts[1]) && strings.HasPrefix(parts[0], "/") {
			return "", parts[0], false
		}
		return parts[0], parts[1], true
	default:
		return parts[0], parts[1], true
	}
}

func isVolumeMode(m string) bool {
	for _, p := range strings.Split(m, ",") {
		switch p {
		case "ro", "rw", "z", "Z", "shared", "rshared", "slave", "rslave", "private", "rprivate", "nocopy", "consistent", "cached", "delegated":
		default:
			return false
		}
	}
	return true
}

func toAddrs(ss []string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

func (o *containerOptions) healthConfig() (*container.HealthConfig, error) {
	have := o.healthCmd != "" || o.healthInterval != 0 || o.healthTimeout != 0 ||
		o.healthStart != 0 || o.healthRetries != 0 || o.healthStartIntvl != 0
	if o.noHealthcheck {
		if have {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !have {
		return nil, nil
	}
	for name, d := range map[string]time.Duration{
		"interval": o.healthInterval, "timeout": o.healthTimeout,
		"start-period": o.healthStart, "start-interval": o.healthStartIntvl,
	} {
		if d < 0 {
			return nil, fmt.Errorf("--health-%s cannot be negative", name)
		}
	}
	if o.healthRetries < 0 {
		return nil, errors.New("--health-retries cannot be negative")
	}
	var probe []string
	if o.healthCmd != "" {
		probe = []string{"CMD-SHELL", o.healthCmd}
	}
	return &container.HealthConfig{
		Test:          probe,
		Interval:      o.healthInterval,
		Timeout:       o.healthTimeout,
		StartPeriod:   o.healthStart,
		StartInterval: o.healthStartIntvl,
		Retries:       o.healthRetries,
	}, nil
}
