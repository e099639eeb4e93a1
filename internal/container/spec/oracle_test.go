//go:build linux

package spec

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/fixture"
	"github.com/moby/moby/api/types/container"
)

// seccompNewerThanOracle are the syscalls whose rules changed in Docker's
// default profile after 20.10, the dockerd the oracle runs: berth follows
// the newer profile (see seccomp_default.go).
var seccompNewerThanOracle = []string{
	"io_uring_enter", "io_uring_register", "io_uring_setup", "socket",
	"cachestat", "fchmodat2", "futex_wake", "futex_wait", "futex_requeue", "map_shadow_stack",
	"process_vm_readv", "process_vm_writev",
}

// TestDockerdOracle compares Generate with the config.json a real dockerd
// produced for the same container. The pairs (docker inspect and
// config.json) are captured by testdata/oracle/capture.sh from the cases
// in testdata/oracle/cases.txt; testdata/oracle/dockerd-20.10 holds a
// capture from Debian's dockerd 20.10.24 on a cgroup v1/v2 hybrid host,
// which the fake host of this test describes. BERTH_SPEC_ORACLE names
// another capture directory.
//
// Known, intended differences are normalised away: the OCI version, root
// path and libnetwork hook; zero-valued resources dockerd writes and
// runtimes ignore; the host network namespace joined by path rather than
// left out; "rro" on read-only binds (Docker 25+); the seccomp
// rules of seccompNewerThanOracle and defaultErrnoRet (EPERM either way);
// the order of mounts of equal depth (dockerd's comes from map iteration).
// Anything else is a failure.
func TestDockerdOracle(t *testing.T) {
	dir := os.Getenv("BERTH_SPEC_ORACLE")
	if dir == "" {
		dir = filepath.Join("testdata", "oracle", "dockerd-20.10")
	}
	// The capture imported the fixture's busybox rootfs as its image.
	rootfsTemplate := fixture.BusyboxRootfs(t)
	cases, _ := filepath.Glob(filepath.Join(dir, "*.config.json"))
	if len(cases) == 0 {
		t.Fatalf("no *.config.json in %s", dir)
	}
	for _, f := range cases {
		name := strings.TrimSuffix(filepath.Base(f), ".config.json")
		t.Run(name, func(t *testing.T) {
			useFakeHost(t, nil)
			var insp []struct {
				ID                                      string `json:"Id"`
				Config                                  *container.Config
				HostConfig                              *container.HostConfig
				ResolvConfPath, HostnamePath, HostsPath string
			}
			readJSON(t, filepath.Join(dir, name+".inspect.json"), &insp)
			c := insp[0]
			root := t.TempDir()
			if out, err := exec.Command("cp", "-a", rootfsTemplate+"/.", root).CombinedOutput(); err != nil {
				t.Fatalf("copy rootfs: %v: %s", err, out)
			}
			in := Input{ID: c.ID, Config: c.Config, HostConfig: c.HostConfig, Rootfs: root,
				ResolvConfPath: c.ResolvConfPath, HostnamePath: c.HostnamePath, HostsPath: c.HostsPath}
			if c.HostConfig.CgroupParent == "" {
				in.CgroupsPath = "/docker/" + c.ID // dockerd's parent; berth's is /berth
			}
			s, err := Generate(context.Background(), in)
			if err != nil {
				t.Fatalf("Generate: %v", err)
			}
			b, _ := json.Marshal(s)
			var ours, theirs map[string]any
			if err := json.Unmarshal(b, &ours); err != nil {
				t.Fatal(err)
			}
			readJSON(t, f, &theirs)
			normalize(ours, true)
			normalize(theirs, false)
			for _, d := range diffJSON("", theirs, ours) {
				t.Error(d)
			}
		})
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func obj(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, _ := m[k].(map[string]any)
		if next == nil {
			return nil
		}
		m = next
	}
	return m
}

// normalize removes the known differences (see TestDockerdOracle) in place.
func normalize(s map[string]any, ours bool) {
	delete(s, "ociVersion")
	delete(s, "hooks")
	delete(s, "root")
	// dockerd joins the host's network namespace through a file of its
	// own; berth leaves the namespace out, which is the same.
	if l := obj(s, "linux"); l != nil && !ours {
		nss, _ := l["namespaces"].([]any)
		l["namespaces"] = slices.DeleteFunc(nss, func(n any) bool {
			p, _ := n.(map[string]any)["path"].(string)
			return n.(map[string]any)["type"] == "network" && strings.HasSuffix(p, "/netns/default")
		})
	}
	if res := obj(s, "linux", "resources"); res != nil {
		for _, k := range []string{"blockIO", "cpu"} {
			sub := obj(res, k)
			if sub == nil {
				continue
			}
			for kk, v := range sub {
				if v == float64(0) {
					delete(sub, kk)
				}
			}
			if len(sub) == 0 {
				delete(res, k)
			}
		}
	}
	if sc := obj(s, "linux", "seccomp"); sc != nil {
		if ours && sc["defaultErrnoRet"] == float64(1) {
			delete(sc, "defaultErrnoRet")
		}
		// Rules become one sorted entry per syscall name.
		perName := map[string][]string{}
		rules, _ := sc["syscalls"].([]any)
		for _, r := range rules {
			rm := r.(map[string]any)
			names := rm["names"].([]any)
			delete(rm, "names")
			if a, ok := rm["args"].([]any); ok && len(a) == 0 {
				delete(rm, "args")
			}
			enc, _ := json.Marshal(rm)
			for _, n := range names {
				if !slices.Contains(seccompNewerThanOracle, n.(string)) {
					perName[n.(string)] = append(perName[n.(string)], string(enc))
				}
			}
		}
		flat := map[string]any{}
		for n, rs := range perName {
			sort.Strings(rs)
			flat[n] = strings.Join(rs, " | ")
		}
		sc["syscalls"] = flat
	}
	if ms, ok := s["mounts"].([]any); ok {
		byDest := map[string]any{}
		var depths []string
		for _, m := range ms {
			mm := m.(map[string]any)
			dst := mm["destination"].(string)
			if opts, ok := mm["options"].([]any); ok && ours {
				mm["options"] = slices.DeleteFunc(opts, func(o any) bool { return o == "rro" })
			}
			byDest[dst] = mm
			depths = append(depths, fmt.Sprint(depth(dst)))
		}
		s["mounts"] = byDest
		s["mountDepthOrder"] = strings.Join(depths, ",")
	}
}

// diffJSON lists the paths where two decoded JSON values differ.
func diffJSON(path string, want, got any) []string {
	wm, wok := want.(map[string]any)
	gm, gok := got.(map[string]any)
	if wok && gok {
		var keys []string
		for k := range wm {
			keys = append(keys, k)
		}
		for k := range gm {
			if _, ok := wm[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			out = append(out, diffJSON(path+"."+k, wm[k], gm[k])...)
		}
		return out
	}
	if !reflect.DeepEqual(want, got) {
		w, _ := json.Marshal(want)
		g, _ := json.Marshal(got)
		return []string{fmt.Sprintf("%s:\n dockerd: %s\n   berth: %s", path, w, g)}
	}
	return nil
}
