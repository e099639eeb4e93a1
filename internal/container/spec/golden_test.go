//go:build linux

package spec

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/ocispec"
	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden with the generated specs")

// fakeHost is a fixed host so that golden files do not depend on the
// machine running the tests.
func fakeHost() hostInfo {
	return hostInfo{
		kernel:   [2]int{6, 1},
		cgroupV2: false,
		sysctls:  map[string]bool{"net.ipv4.ping_group_range": true, "net.ipv4.ip_unprivileged_port_start": true},
		hostname: "dockerhost",
		ncpu:     4,
		capLast:  40,
	}
}

// useFakeHost replaces the host probe (and the privileged device
// directory, with an empty one) for the duration of the test.
func useFakeHost(t *testing.T, mutate func(*hostInfo)) {
	t.Helper()
	h := fakeHost()
	if mutate != nil {
		mutate(&h)
	}
	oldProbe, oldDev, oldSource := probeHost, hostDevicesDir, sourceMount
	probeHost = func() hostInfo { return h }
	hostDevicesDir = t.TempDir()
	// Every bind source is on a shared mount: "/" as systemd makes it.
	sourceMount = func(string) (string, string, error) { return "/", "shared:1", nil }
	t.Cleanup(func() { probeHost, hostDevicesDir, sourceMount = oldProbe, oldDev, oldSource })
}

// fakeRootfs makes a minimal image root with the given passwd and group.
func fakeRootfs(t *testing.T, passwd, group string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"passwd": passwd, "group": group} {
		if content == "" {
			continue
		}
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const testID = "4f1c2b8a9d3e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"

const alpinePasswd = `root:x:0:0:root:/root:/bin/sh
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
nobody:x:65534:65534:nobody:/:/sbin/nologin
app:x:1000:1000:App:/home/app:/bin/sh
`

const alpineGroup = `root:x:0:root
bin:x:1:root,bin,daemon
daemon:x:2:root,bin,daemon
wheel:x:10:root,app
audio:x:18:app
video:x:27:root
nogroup:x:65533:
nobody:x:65534:
app:x:1000:
`

func TestGolden(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("golden files are for amd64 (seccomp architectures depend on the host's)")
	}
	pids := int64(100)
	swappiness := int64(10)
	oomOff := true
	tests := []struct {
		name string
		in   func(t *testing.T) Input
	}{
		{"default", func(t *testing.T) Input {
			return Input{
				ID:             testID,
				Config:         &container.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
				HostConfig:     &container.HostConfig{NetworkMode: "bridge", ShmSize: 64 << 20},
				Rootfs:         fakeRootfs(t, alpinePasswd, alpineGroup),
				HostnamePath:   "/var/lib/berth/containers/" + testID + "/hostname",
				HostsPath:      "/var/lib/berth/containers/" + testID + "/hosts",
				ResolvConfPath: "/var/lib/berth/containers/" + testID + "/resolv.conf",
			}
		}},
		{"privileged", func(t *testing.T) Input {
			return Input{
				ID:         testID,
				Config:     &container.Config{Entrypoint: []string{"docker-entrypoint.sh"}, Cmd: []string{"dockerd"}, Tty: true, Hostname: "dind"},
				HostConfig: &container.HostConfig{Privileged: true, NetworkMode: "host", PidMode: "host", CgroupnsMode: "private"},
				Rootfs:     fakeRootfs(t, alpinePasswd, alpineGroup),
			}
		}},
		{"hardened", func(t *testing.T) Input {
			return Input{
				ID: testID,
				Config: &container.Config{
					Entrypoint: []string{"/app/server"}, Cmd: []string{"--port", "80"},
					Env: []string{"MODE=prod", "HOSTNAME=custom"}, WorkingDir: "/app", Domainname: "example.test",
				},
				HostConfig: &container.HostConfig{
					CapDrop:        []string{"ALL"},
					CapAdd:         []string{"net_bind_service", "CAP_CHOWN"},
					ReadonlyRootfs: true,
					SecurityOpt:    []string{"no-new-privileges:true", "apparmor=unconfined", "label=disable"},
					Tmpfs:          map[string]string{"/run": "size=10m,exec", "/tmp": ""},
					Binds:          []string{"/srv/data:/data:ro", "/srv/logs:/var/log/app:rw,rshared"},
					Mounts: []mount.Mount{
						{Type: mount.TypeBind, Source: "/", Target: "/host", ReadOnly: true, BindOptions: &mount.BindOptions{ReadOnlyNonRecursive: true}},
						{Type: mount.TypeTmpfs, Target: "/cache", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1777}},
						{Type: mount.TypeVolume, Source: "dbdata", Target: "/var/lib/db"},
					},
					ShmSize:     128 << 20,
					IpcMode:     "shareable",
					OomScoreAdj: 500,
					Sysctls:     map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "68719476736"},
					GroupAdd:    []string{"audio", "4242"},
					Annotations: map[string]string{"org.example/owner": "team"},
					Resources: container.Resources{
						CgroupParent: "/custom",
						Memory:       256 << 20, MemoryReservation: 128 << 20, MemorySwappiness: &swappiness, OomKillDisable: &oomOff,
						NanoCPUs: 1500000000, CPUShares: 512, CpusetCpus: "0-1",
						PidsLimit: &pids, BlkioWeight: 300,
						Ulimits:           []*units.Ulimit{{Name: "nofile", Soft: 1024, Hard: 4096}, {Name: "nproc", Soft: 64, Hard: 64}},
						DeviceCgroupRules: []string{"c 10:200 rwm", "b *:* r"},
					},
				},
				Rootfs: fakeRootfs(t, alpinePasswd, alpineGroup),
				Mounts: []specs.Mount{{Destination: "/var/lib/db", Type: "bind", Source: "/var/lib/berth/volumes/dbdata/_data", Options: []string{"rbind", "rprivate"}}},
			}
		}},
		{"user", func(t *testing.T) Input {
			return Input{
				ID:         testID,
				Config:     &container.Config{Cmd: []string{"id"}, User: "app"},
				HostConfig: &container.HostConfig{NetworkMode: "none", GroupAdd: []string{"video", "nogroup"}, UTSMode: "host"},
				Rootfs:     fakeRootfs(t, alpinePasswd, alpineGroup),
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			useFakeHost(t, nil)
			in := tc.in(t)
			s, err := Generate(context.Background(), in)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			// The generated spec must pass the runtime's validation.
			if err := ocispec.Validate(s, in.Rootfs); err != nil {
				t.Errorf("ocispec.Validate: %v", err)
			}
			got, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = []byte(strings.ReplaceAll(string(got), in.Rootfs, "<rootfs>") + "\n")
			file := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(file, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("generated spec differs from %s (run with -update to accept):\n%s", file, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff shows the first lines that differ, enough to see what changed.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	n := 0
	for i := 0; i < max(len(w), len(g)) && n < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  - " + wl + "\n  + " + gl + "\n")
			n++
		}
	}
	return b.String()
}

// testingArch is runtime.GOARCH, for tests whose expectations depend on it.
func testingArch() string { return runtime.GOARCH }
