package compose

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// The labels Docker Compose v2 puts on the resources of a project. berth
// compose sets and reads the same ones, so either tool can manage a project
// the other created.
const (
	LabelProject         = "com.docker.compose.project"
	LabelService         = "com.docker.compose.service"
	LabelConfigHash      = "com.docker.compose.config-hash"
	LabelContainerNumber = "com.docker.compose.container-number"
	LabelVolume          = "com.docker.compose.volume"
	LabelNetwork         = "com.docker.compose.network"
	LabelWorkingDir      = "com.docker.compose.project.working_dir"
	LabelConfigFiles     = "com.docker.compose.project.config_files"
	LabelEnvironmentFile = "com.docker.compose.project.environment_file"
	LabelOneoff          = "com.docker.compose.oneoff"
	LabelSlug            = "com.docker.compose.slug"
	LabelImage           = "com.docker.compose.image"
	LabelDependsOn       = "com.docker.compose.depends_on"
	LabelVersion         = "com.docker.compose.version"
	LabelReplace         = "com.docker.compose.replace"
)

// separator joins project, service and number in container names (Compose
// v2 uses "-"; v1 used "_").
const separator = "-"

// ContainerName is the name of replica number of service:
// <project>-<service>-<number>, or the service's container_name.
func ContainerName(project string, s types.ServiceConfig, number int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return strings.Join([]string{project, s.Name, strconv.Itoa(number)}, separator)
}

// OneoffContainerName is the name of a `compose run` container:
// <project>-<service>-run-<first 12 characters of the slug>.
func OneoffContainerName(project, service, slug string) string {
	if len(slug) > 12 {
		slug = slug[:12]
	}
	return strings.Join([]string{project, service, "run", slug}, separator)
}

// ImageName is the image a service runs: its image: field, or the name
// Compose gives an image built for it, <project>-<service>.
func ImageName(project string, s types.ServiceConfig) string {
	if s.Image != "" {
		return s.Image
	}
	return project + separator + s.Name
}

// serviceHashKeyOrder is the order of the top-level keys of the JSON a
// service's config hash is computed from. Docker Compose hashes the JSON
// encoding of compose-go's ServiceConfig; since compose-go regrouped its
// fields (v2.16), Compose re-emits the keys in the historical field order so
// hashes recorded on existing containers stay valid. Reproducing that order
// is what makes berth's hash equal to Docker Compose's. Keys not listed
// follow in sorted order.
var serviceHashKeyOrder = []string{
	"profiles", "annotations", "attach", "build", "develop", "blkio_config",
	"cap_add", "cap_drop", "cgroup_parent", "cgroup", "cpu_count", "cpu_percent",
	"cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpus", "cpuset",
	"cpu_shares", "command", "configs", "container_name", "credential_spec",
	"depends_on", "deploy", "device_cgroup_rules", "devices", "dns", "dns_opt",
	"dns_search", "dockerfile", "domainname", "entrypoint", "provider",
	"environment", "env_file", "expose", "extends", "external_links",
	"extra_hosts", "group_add", "gpus", "hostname", "healthcheck", "image",
	"init", "ipc", "isolation", "labels", "label_file", "links", "logging",
	"log_driver", "log_opt", "mem_limit", "mem_reservation", "memswap_limit",
	"mem_swappiness", "mac_address", "models", "net", "network_mode", "networks",
	"oom_kill_disable", "oom_score_adj", "pid", "pids_limit", "platform", "ports",
	"privileged", "pull_policy", "read_only", "restart", "runtime", "scale",
	"secrets", "security_opt", "shm_size", "stdin_open", "stop_grace_period",
	"stop_signal", "storage_opt", "sysctls", "tmpfs", "tty", "ulimits",
	"use_api_socket", "user", "userns_mode", "uts", "volume_driver", "volumes",
	"volumes_from", "working_dir", "pre_start", "post_start", "pre_stop",
}

// ServiceHash is the com.docker.compose.config-hash of a service: the
// SHA-256 (hex) of its JSON encoding, without the attributes that do not
// call for a new container (build, pull_policy, scale and replicas,
// depends_on, profiles). Two services with the same hash run identical
// containers, so `up` leaves them alone.
func ServiceHash(s types.ServiceConfig) (string, error) {
	s.Build = nil
	s.PullPolicy = ""
	s.Scale = nil
	if s.Deploy != nil {
		d := *s.Deploy
		d.Replicas = nil
		s.Deploy = &d
	}
	s.DependsOn = nil
	s.Profiles = nil
	raw, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	ordered, err := orderKeys(raw, serviceHashKeyOrder)
	if err != nil {
		return "", err
	}
	return sha256hex(ordered), nil
}

// orderKeys re-encodes the JSON object raw with its top-level keys in
// order, unlisted keys after them sorted; values are kept byte for byte.
func orderKeys(raw []byte, order []string) ([]byte, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(obj))
	for _, k := range order {
		if _, ok := obj[k]; ok {
			keys = append(keys, k)
		}
	}
	listed := len(keys)
	for k := range obj {
		found := false
		for _, l := range keys[:listed] {
			if l == k {
				found = true
				break
			}
		}
		if !found {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys[listed:])
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		name, _ := json.Marshal(k)
		b.Write(name)
		b.WriteByte(':')
		b.Write(obj[k])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// NetworkHash is the config hash Compose records on a network it creates.
func NetworkHash(n types.NetworkConfig) (string, error) {
	raw, err := json.Marshal(&n)
	if err != nil {
		return "", err
	}
	return sha256hex(raw), nil
}

// VolumeHash is the config hash Compose records on a volume it creates.
func VolumeHash(v types.VolumeConfig) (string, error) {
	if v.Driver == "" {
		v.Driver = "local"
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return sha256hex(raw), nil
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// dependsOnLabel is the value of com.docker.compose.depends_on:
// "service:condition:restart" for each dependency, comma separated (sorted,
// where Compose leaves map order).
func dependsOnLabel(s types.ServiceConfig) string {
	deps := make([]string, 0, len(s.DependsOn))
	for name, d := range s.DependsOn {
		deps = append(deps, fmt.Sprintf("%s:%s:%t", name, d.Condition, d.Restart))
	}
	sort.Strings(deps)
	return strings.Join(deps, ",")
}

// containerLabels are the labels of replica number of s: the service's own
// labels, the project labels set at load time (CustomLabels) and the
// per-container ones.
func containerLabels(s types.ServiceConfig, number int, hash string) map[string]string {
	l := make(map[string]string, len(s.Labels)+len(s.CustomLabels)+4)
	for k, v := range s.Labels {
		l[k] = v
	}
	for k, v := range s.CustomLabels {
		l[k] = v
	}
	l[LabelConfigHash] = hash
	l[LabelContainerNumber] = strconv.Itoa(number)
	l[LabelDependsOn] = dependsOnLabel(s)
	return l
}
