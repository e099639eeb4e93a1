package daemon

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	apievents "github.com/moby/moby/api/types/events"
)

// Reload applies a new configuration (daemon.json read again on SIGHUP,
// as dockerd) for the keys that can change while berthd runs:
//
//	debug, log-level, labels, insecure-registries, registry-mirrors,
//	mirrors, max-concurrent-downloads, runtimes, default-runtime
//
// Every other key keeps its value until a restart. A key whose flag was
// given on berthd's command line keeps the flag's value (flags override
// the file; changed reports whether a flag was given). The whole file is
// validated first: an invalid configuration changes nothing and is an
// error. On success a "daemon reload" event is published and the new
// effective configuration returned (the caller sets its log level).
func (d *Daemon) Reload(next Config, changed func(flag string) bool) (Config, error) {
	d.liveMu.Lock()
	defer d.liveMu.Unlock()
	cur := d.cfg
	keep := func(flag string, apply func()) {
		if changed != nil && changed(flag) {
			apply()
		}
	}
	keep("debug", func() { next.Debug = cur.Debug })
	keep("log-level", func() { next.LogLevel = cur.LogLevel })
	keep("label", func() { next.Labels = cur.Labels })
	keep("insecure-registry", func() { next.InsecureRegistries = cur.InsecureRegistries })
	keep("registry-mirror", func() { next.RegistryMirrors = cur.RegistryMirrors })
	keep("max-concurrent-downloads", func() { next.MaxConcurrentDownloads = cur.MaxConcurrentDownloads })
	keep("default-runtime", func() { next.DefaultRuntime = cur.DefaultRuntime })

	// Validate all before changing anything.
	probe := cur
	probe.LogLevel, probe.Runtimes, probe.DefaultRuntime = next.LogLevel, next.Runtimes, next.DefaultRuntime
	if err := probe.Validate(); err != nil {
		return cur, err
	}
	if _, _, err := resolveRuntimes(probe); err != nil {
		return cur, err
	}

	if err := d.runtimes.set(probe); err != nil {
		return cur, err
	}
	cur.Debug, cur.LogLevel, cur.Labels = next.Debug, next.LogLevel, slices.Clone(next.Labels)
	cur.InsecureRegistries, cur.RegistryMirrors, cur.Mirrors = next.InsecureRegistries, next.RegistryMirrors, next.Mirrors
	cur.MaxConcurrentDownloads = next.MaxConcurrentDownloads
	cur.Runtimes, cur.DefaultRuntime = next.Runtimes, next.DefaultRuntime
	d.registry.SetRegistries(registryMirrors(cur), cur.InsecureRegistries)
	d.images.SetMaxConcurrentDownloads(cur.MaxConcurrentDownloads)
	// Only the reloadable keys are written: the rest of d.cfg is read
	// without liveMu.
	d.cfg.Debug, d.cfg.LogLevel, d.cfg.Labels = cur.Debug, cur.LogLevel, cur.Labels
	d.cfg.InsecureRegistries, d.cfg.RegistryMirrors, d.cfg.Mirrors = cur.InsecureRegistries, cur.RegistryMirrors, cur.Mirrors
	d.cfg.MaxConcurrentDownloads = cur.MaxConcurrentDownloads
	d.cfg.Runtimes, d.cfg.DefaultRuntime = cur.Runtimes, cur.DefaultRuntime

	attrs := map[string]string{
		"name":                     hostname(),
		"debug":                    strconv.FormatBool(cur.Debug),
		"labels":                   jsonString(cur.Labels),
		"insecure-registries":      jsonString(cur.InsecureRegistries),
		"registry-mirrors":         jsonString(cur.RegistryMirrors),
		"max-concurrent-downloads": strconv.Itoa(cur.MaxConcurrentDownloads),
		"default-runtime":          d.runtimes.Default(),
		"runtimes":                 strings.Join(runtimeNames(d.runtimes), " "),
	}
	d.events.Publish(apievents.DaemonEventType, "reload", "berthd", attrs)
	d.log.Info("configuration reloaded", "debug", cur.Debug, "log-level", cur.LogLevel, "runtimes", attrs["runtimes"], "default-runtime", attrs["default-runtime"])
	return cur, nil
}

// liveConfig returns the configuration, reloadable keys included.
func (d *Daemon) liveConfig() Config {
	d.liveMu.RLock()
	defer d.liveMu.RUnlock()
	return d.cfg
}

// registryMirrors is the distribution client's mirror map: "mirrors" plus
// registry-mirrors for Docker Hub.
func registryMirrors(cfg Config) map[string][]string {
	mirrors := map[string][]string{}
	for k, v := range cfg.Mirrors {
		mirrors[k] = v
	}
	if len(cfg.RegistryMirrors) > 0 {
		mirrors["docker.io"] = append(slices.Clone(mirrors["docker.io"]), cfg.RegistryMirrors...)
	}
	return mirrors
}

func runtimeNames(r *runtimeSet) []string {
	m, _ := r.info()
	return slices.Sorted(maps.Keys(m))
}

func jsonString(v any) string {
	if v == nil {
		return "[]"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
