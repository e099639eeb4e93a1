package cli

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// The create-request oracle: testdata/create/<case>.json holds the request
// the real docker CLI (28.2) sent to the fake engine for the same command
// line. Regenerate with:
//
//	go test ./internal/cli -run TestCreateMatchesDocker -update
//
// (needs /usr/local/bin/docker or docker on PATH).
var updateGolden = flag.Bool("update", false, "regenerate testdata golden files from the real docker CLI")

type createCase struct {
	name string
	args []string
	// config, when set, is the config.json both CLIs read.
	config string
}

var createCases = []createCase{
	{name: "basic", args: []string{"busybox"}},
	{name: "cmd", args: []string{"busybox", "echo", "hi", "there"}},
	{name: "env", args: []string{"-e", "A=1", "-e", "UNSET_VAR_X", "-e", "FROM_ENV", "--env-file", "testdata/env.list", "busybox"}},
	{name: "labels", args: []string{"-l", "a=b", "--label", "c", "--label-file", "testdata/labels.list", "busybox"}},
	{name: "volumes", args: []string{"-v", "/host:/ctr:ro", "-v", "/anon", "-v", "named:/data", "-v", "/h2:/c2:rw,z", "busybox"}},
	{name: "mount", args: []string{"--mount", "type=bind,source=/src,target=/dst,readonly", "--mount", "type=volume,src=v1,dst=/v,volume-label=x=y,volume-nocopy", "--mount", "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770", "--mount", "target=/anon", "busybox"}},
	{name: "tmpfs", args: []string{"--tmpfs", "/run", "--tmpfs", "/tmp:rw,size=64m", "busybox"}},
	{name: "ports", args: []string{"-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "-p", "9000-9002:9000-9002", "-p", "7000", "-p", "[::1]:8443:443", "-p", "6000-6001:6000/tcp", "--expose", "3000-3002", "--expose", "4000/udp", "-P", "busybox"}},
	{name: "ports-long", args: []string{"-p", "published=8081,target=81,protocol=udp", "busybox"}},
	{name: "identity", args: []string{"--name", "web", "-w", "/app", "-u", "1000:1000", "--entrypoint", "/bin/sh", "-h", "myhost", "--domainname", "example.com", "busybox"}},
	{name: "entrypoint-empty", args: []string{"--entrypoint=", "busybox"}},
	{name: "network", args: []string{"--network", "mynet", "--network-alias", "web", "--ip", "172.20.0.5", "--ip6", "2001:db8::33", "--mac-address", "92:d0:c6:0a:29:33", "busybox"}},
	{name: "network-advanced", args: []string{"--network", "name=n1,alias=a1,ip=10.1.0.5,driver-opt=k=v,gw-priority=5", "--network", "n2", "busybox"}},
	{name: "net-host", args: []string{"--net", "host", "busybox"}},
	{name: "link-bridge", args: []string{"--link", "db:db", "--volumes-from", "other:ro", "busybox"}},
	{name: "dns", args: []string{"--dns", "1.1.1.1", "--dns", "2001:4860:4860::8888", "--dns-search", "example.com", "--dns-option", "ndots:2", "--add-host", "db:10.0.0.2", "--add-host", "gw:host-gateway", "--add-host", "v6=[::1]", "busybox"}},
	{name: "security", args: []string{"--cap-add", "NET_ADMIN", "--cap-add", "sys_time", "--cap-drop", "ALL", "--privileged", "--security-opt", "no-new-privileges", "--security-opt", "label=disable", "--read-only", "busybox"}},
	{name: "seccomp", args: []string{"--security-opt", "seccomp=testdata/seccomp.json", "--security-opt", "systempaths=unconfined", "busybox"}},
	{name: "restart-on-failure", args: []string{"--restart", "on-failure:3", "busybox"}},
	{name: "restart-always", args: []string{"--restart", "unless-stopped", "busybox"}},
	{name: "health", args: []string{"--health-cmd", "curl -f http://localhost", "--health-interval", "30s", "--health-timeout", "5s", "--health-retries", "3", "--health-start-period", "10s", "--health-start-interval", "2s", "busybox"}},
	{name: "no-healthcheck", args: []string{"--no-healthcheck", "busybox"}},
	{name: "init", args: []string{"--init", "busybox"}},
	{name: "init-false", args: []string{"--init=false", "busybox"}},
	{name: "logging", args: []string{"--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "busybox"}},
	{name: "memory", args: []string{"-m", "512m", "--memory-swap", "1g", "--memory-reservation", "256m", "--memory-swappiness", "10", "--oom-kill-disable", "--oom-score-adj", "100", "busybox"}},
	{name: "memory-swap-unlimited", args: []string{"--memory", "1g", "--memory-swap", "-1", "busybox"}},
	{name: "cpu", args: []string{"--cpus", "1.5", "-c", "512", "--cpu-period", "100000", "--cpu-quota", "50000", "--cpuset-cpus", "0-1", "--cpuset-mems", "0", "--cpu-rt-period", "1000", "--cpu-rt-runtime", "500", "busybox"}},
	{name: "blkio", args: []string{"--pids-limit", "100", "--blkio-weight", "300", "--blkio-weight-device", "/dev/sda:200", "--device-read-bps", "/dev/sda:1mb", "--device-write-bps", "/dev/sdb:2048", "--device-read-iops", "/dev/sda:1000", "--device-write-iops", "/dev/sda:100", "busybox"}},
	{name: "devices", args: []string{"--device", "/dev/fuse", "--device", "/dev/sda:/dev/xvda:r", "--device", "/dev/null:rw", "--device-cgroup-rule", "c 1:3 mr", "busybox"}},
	{name: "limits", args: []string{"--ulimit", "nofile=1024:2048", "--ulimit", "nproc=512", "--sysctl", "net.ipv4.ip_forward=1", "--shm-size", "128m", "--group-add", "audio", "--group-add", "1001", "busybox"}},
	{name: "namespaces", args: []string{"--ipc", "host", "--pid", "host", "--uts", "host", "--userns", "host", "--cgroup-parent", "/mygroup", "--cgroupns", "private", "busybox"}},
	{name: "stop", args: []string{"--stop-signal", "SIGUSR1", "--stop-timeout", "20", "busybox"}},
	{name: "platform", args: []string{"--platform", "linux/arm64", "busybox"}},
	{name: "attach", args: []string{"-a", "stdout", "-a", "STDIN", "-i", "-t", "busybox"}},
	{name: "interactive", args: []string{"-it", "busybox", "sh"}},
	{name: "rm", args: []string{"--rm", "busybox"}},
	{name: "runtime", args: []string{"--runtime", "runc", "--isolation", "default", "--storage-opt", "size=10G", "busybox"}},
	{name: "annotation", args: []string{"--annotation", "a=b", "--annotation", "c=d", "busybox"}},
	{name: "flags-after-image", args: []string{"busybox", "-e", "X=1", "--rm"}},
	{name: "net-none", args: []string{"--network", "none", "busybox"}},
	{name: "net-container", args: []string{"--net", "container:other", "--ipc", "container:other", "--pid", "container:other", "busybox"}},
	{name: "ipc-shareable", args: []string{"--ipc", "shareable", "--uts", "host", "busybox"}},
	{name: "ports-empty-hostport", args: []string{"-p", "127.0.0.1::80", "-p", "0.0.0.0:8000-8001:80/udp", "busybox"}},
	{name: "volume-modes", args: []string{"-v", "vol:/data:nocopy", "-v", "/a:/b:ro,rslave", "busybox"}},
	{name: "mount-bind-options", args: []string{"--mount", "type=bind,src=/a,dst=/b,bind-propagation=rshared,bind-nonrecursive", "--mount", "type=volume,dst=/v,volume-driver=local,volume-opt=type=nfs,volume-opt=o=addr=1.2.3.4", "busybox"}},
	{name: "health-cmd-only", args: []string{"--health-cmd", "true", "busybox"}},
	{name: "swappiness-zero", args: []string{"--memory-swappiness", "0", "--pids-limit", "-1", "--oom-kill-disable=false", "busybox"}},
	{name: "env-equals-empty", args: []string{"-e", "EMPTY=", "-e", "MULTI=a=b=c", "busybox"}},
	{name: "label-duplicates", args: []string{"-l", "a=1", "-l", "a=2", "--label", "b=", "busybox"}},
	{name: "dns-empty-search", args: []string{"--dns-search", ".", "--dns-opt", "use-vc", "busybox"}},
	{name: "tty", args: []string{"-t", "busybox"}},
	{name: "entrypoint-with-cmd", args: []string{"--entrypoint", "/bin/sh", "busybox", "-c", "echo hi"}},
	{name: "stop-timeout-zero", args: []string{"--stop-timeout", "0", "busybox"}},
	{name: "cgroupns-host", args: []string{"--cgroupns", "host", "--userns", "", "busybox"}},
	{name: "env-duplicates", args: []string{"-e", "A=1", "-e", "B=2", "-e", "A=3", "busybox"}},
	{name: "proxies", args: []string{"-e", "HTTP_PROXY=http://mine:1", "busybox"},
		config: `{"proxies":{"default":{"httpProxy":"http://proxy:3128","httpsProxy":"http://proxy:3129","noProxy":"localhost,.internal"}}}`},
}

// dockerBinary finds the reference docker CLI.
func dockerBinary() string {
	if _, err := os.Stat("/usr/local/bin/docker"); err == nil {
		return "/usr/local/bin/docker"
	}
	p, _ := exec.LookPath("docker")
	return p
}

type capturedCreate struct {
	Query map[string][]string `json:"query"`
	Body  json.RawMessage     `json:"body"`
}

func captureDockerCreate(t *testing.T, docker string, args []string, cfgDir string) capturedCreate {
	t.Helper()
	f := newFakeEngine(t)
	f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{}})
	cmd := exec.Command(docker, append([]string{"create"}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+f.host, "DOCKER_CONFIG="+cfgDir, "DOCKER_CONTEXT=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker create %v: %v\n%s", args, err, out)
	}
	reqs := f.requests("POST /containers/create")
	if len(reqs) != 1 {
		t.Fatalf("docker sent %d create requests", len(reqs))
	}
	return capturedCreate{Query: reqs[0].Query, Body: reqs[0].Body}
}

func TestCreateMatchesDocker(t *testing.T) {
	t.Setenv("FROM_ENV", "from-client-env")
	t.Setenv("UNSET_VAR_X", "")
	os.Unsetenv("UNSET_VAR_X")
	docker := dockerBinary()
	for _, tc := range createCases {
		t.Run(tc.name, func(t *testing.T) {
			golden := filepath.Join("testdata", "create", tc.name+".json")
			cfgDir := t.TempDir()
			if tc.config != "" {
				if err := os.WriteFile(filepath.Join(cfgDir, "config.json"), []byte(tc.config), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("DOCKER_CONFIG", cfgDir)
			var want capturedCreate
			if *updateGolden {
				if docker == "" {
					t.Skip("no docker CLI to regenerate golden files")
				}
				want = captureDockerCreate(t, docker, tc.args, cfgDir)
				b, _ := json.MarshalIndent(want, "", "  ")
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				b, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("golden file missing (run with -update): %v", err)
				}
				if err := json.Unmarshal(b, &want); err != nil {
					t.Fatal(err)
				}
			}

			f := newFakeEngine(t)
			f.reply("POST /containers/create", 201, map[string]any{"Id": fakeID, "Warnings": []string{}})
			stdout, stderr, code := runBerth(t, f, "", append([]string{"create"}, tc.args...)...)
			if code != 0 {
				t.Fatalf("berth create exited %d: %s", code, stderr)
			}
			if stdout != fakeID+"\n" {
				t.Errorf("stdout = %q, want the ID", stdout)
			}
			reqs := f.requests("POST /containers/create")
			if len(reqs) != 1 {
				t.Fatalf("berth sent %d create requests", len(reqs))
			}
			if !reflect.DeepEqual(reqs[0].Query, want.Query) {
				t.Errorf("query = %v, docker sent %v", reqs[0].Query, want.Query)
			}
			var got, exp container.CreateRequest
			if err := json.Unmarshal(reqs[0].Body, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(want.Body, &exp); err != nil {
				t.Fatal(err)
			}
			// docker builds Binds from a map: its order is random; the
			// order of Env merged from --env-file and -e also varies
			// between docker runs.
			for _, cr := range []*container.CreateRequest{&got, &exp} {
				if cr.HostConfig != nil {
					sort.Strings(cr.HostConfig.Binds)
				}
				if cr.Config != nil {
					sort.Strings(cr.Config.Env)
				}
			}
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("create body differs from docker's\n%s", jsonDiff(exp, got))
			}
		})
	}
}

// jsonDiff lists the JSON paths whose values differ between want and got.
func jsonDiff(want, got any) string {
	wf, gf := map[string]string{}, map[string]string{}
	flattenJSON("", toGeneric(want), wf)
	flattenJSON("", toGeneric(got), gf)
	keys := map[string]bool{}
	for k := range wf {
		keys[k] = true
	}
	for k := range gf {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		if wf[k] != gf[k] {
			sorted = append(sorted, k)
		}
	}
	sort.Strings(sorted)
	var b strings.Builder
	for _, k := range sorted {
		fmt.Fprintf(&b, "%s: docker=%s berth=%s\n", k, orMissing(wf, k), orMissing(gf, k))
	}
	return b.String()
}

func orMissing(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return "<absent>"
}

func toGeneric(v any) any {
	b, _ := json.Marshal(v)
	var g any
	_ = json.Unmarshal(b, &g)
	return g
}

func flattenJSON(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			out[prefix] = "{}"
		}
		for k, e := range x {
			flattenJSON(prefix+"."+k, e, out)
		}
	case []any:
		if len(x) == 0 {
			out[prefix] = "[]"
		}
		for i, e := range x {
			flattenJSON(fmt.Sprintf("%s[%d]", prefix, i), e, out)
		}
	default:
		b, _ := json.Marshal(x)
		out[prefix] = string(b)
	}
}
