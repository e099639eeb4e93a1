//go:build linux

package spec

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name        string
		add, drop   []string
		privileged  bool
		want        []string
		wantErr     string
		wantAllCaps bool
	}{
		{name: "default", want: DefaultCapabilities},
		{name: "add lower case without prefix", add: []string{"sys_admin"}, want: append(slices.Clone(DefaultCapabilities), "CAP_SYS_ADMIN")},
		{name: "add existing is not duplicated", add: []string{"CAP_CHOWN"}, want: DefaultCapabilities},
		{name: "drop mixed case", drop: []string{"Net_Raw", "cap_mknod"}, want: slices.DeleteFunc(slices.Clone(DefaultCapabilities), func(c string) bool { return c == "CAP_NET_RAW" || c == "CAP_MKNOD" })},
		{name: "drop all, add some", drop: []string{"all"}, add: []string{"kill", "CAP_CHOWN"}, want: []string{"CAP_KILL", "CAP_CHOWN"}},
		{name: "drop all", drop: []string{"ALL"}, want: []string{}},
		{name: "add all, drop some", add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, wantAllCaps: true},
		{name: "privileged", privileged: true, drop: []string{"ALL"}, wantAllCaps: true},
		{name: "unknown add", add: []string{"FOO"}, wantErr: `unknown capability: "CAP_FOO"`},
		{name: "unknown drop", drop: []string{"CAP_BAR"}, wantErr: `unknown capability: "CAP_BAR"`},
		{name: "beyond this kernel", add: []string{"CAP_CHECKPOINT_RESTORE"}, wantErr: "unknown capability"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			capLast := 40
			if tc.name == "beyond this kernel" {
				capLast = 39
			}
			got, err := capabilities(tc.add, tc.drop, tc.privileged, capLast, 0)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errdefs.Is(err, errdefs.InvalidArgument) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantAllCaps {
				all := allCapabilities(capLast, 0)
				if !tc.privileged {
					all = slices.DeleteFunc(all, func(c string) bool { return c == "CAP_SYS_ADMIN" })
				}
				if !reflect.DeepEqual(got, all) {
					t.Errorf("got %v, want %v", got, all)
				}
				return
			}
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCapabilitiesLimitedByOwnSet(t *testing.T) {
	own := uint64(1<<41-1) &^ (1 << 24) // everything but CAP_SYS_RESOURCE
	for _, tc := range []struct {
		add        []string
		privileged bool
	}{{privileged: true}, {add: []string{"ALL"}}} {
		got, err := capabilities(tc.add, nil, tc.privileged, 40, own)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 40 || slices.Contains(got, "CAP_SYS_RESOURCE") {
			t.Errorf("%+v: got %v", tc, got)
		}
	}
}

func TestParseSecurityOpt(t *testing.T) {
	tests := []struct {
		opts    []string
		want    securityOptions
		wantErr string
	}{
		{opts: nil, want: securityOptions{}},
		{opts: []string{"no-new-privileges"}, want: securityOptions{noNewPrivileges: true}},
		{opts: []string{"no-new-privileges:true"}, want: securityOptions{noNewPrivileges: true}},
		{opts: []string{"no-new-privileges=false"}, want: securityOptions{}},
		{opts: []string{"no-new-privileges=maybe"}, wantErr: "invalid --security-opt 2"},
		{opts: []string{"seccomp=unconfined", "apparmor=unconfined", "label=disable"}, want: securityOptions{seccomp: "unconfined", apparmor: "unconfined", labels: []string{"disable"}}},
		{opts: []string{"label:type:svirt_t"}, want: securityOptions{labels: []string{"type:svirt_t"}}},
		{opts: []string{"label=bogus"}, wantErr: "bad label option"},
		{opts: []string{"systempaths=unconfined", "writable-cgroups=true"}, want: securityOptions{unconfinedPaths: true, writableCgroups: true}},
		{opts: []string{"systempaths=confined"}, wantErr: "only \"unconfined\""},
		{opts: []string{"seccomp"}, wantErr: "invalid --security-opt 1"},
		{opts: []string{"foo=bar"}, wantErr: "invalid --security-opt 2"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.opts, " "), func(t *testing.T) {
			got, err := parseSecurityOpt(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errdefs.Is(err, errdefs.InvalidArgument) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// findRule returns the OCI syscall rules that name syscall.
func findRules(s *specs.LinuxSeccomp, syscall string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, r := range s.Syscalls {
		if slices.Contains(r.Names, syscall) {
			out = append(out, r)
		}
	}
	return out
}

func TestDefaultSeccomp(t *testing.T) {
	h := fakeHost()
	s, err := seccompFor("", false, DefaultCapabilities, h)
	if err != nil {
		t.Fatal(err)
	}
	// It must be a filter berth's runtime accepts and can build.
	if err := seccomp.Validate(s); err != nil {
		t.Fatalf("runtime refuses the default profile: %v", err)
	}
	if s.DefaultAction != specs.ActErrno || s.DefaultErrnoRet == nil || *s.DefaultErrnoRet != 1 {
		t.Errorf("default action %s/%v, want SCMP_ACT_ERRNO with EPERM", s.DefaultAction, s.DefaultErrnoRet)
	}
	for _, name := range []string{"read", "openat", "execve", "futex", "chroot", "arch_prctl", "ptrace"} {
		if len(findRules(s, name)) == 0 {
			t.Errorf("%s is not allowed", name)
		}
	}
	for _, name := range []string{"mount", "unshare", "setns", "reboot", "init_module", "io_uring_setup", "kexec_load", "bpf", "keyctl"} {
		if len(findRules(s, name)) != 0 {
			t.Errorf("%s is allowed without its capability", name)
		}
	}
	clone := findRules(s, "clone")
	if len(clone) != 1 || len(clone[0].Args) != 1 || clone[0].Args[0].Op != specs.OpMaskedEqual || clone[0].Args[0].Value != nsCloneFlags {
		t.Errorf("clone rule = %+v, want one masked rule on namespace flags", clone)
	}
	c3 := findRules(s, "clone3")
	if len(c3) != 1 || c3[0].Action != specs.ActErrno || *c3[0].ErrnoRet != 38 {
		t.Errorf("clone3 rule = %+v, want ENOSYS", c3)
	}
	if len(findRules(s, "personality")) != 5 {
		t.Errorf("want 5 personality rules")
	}
	if testingArch() == "amd64" && !reflect.DeepEqual(s.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}) {
		t.Errorf("architectures = %v", s.Architectures)
	}

	// With CAP_SYS_ADMIN, clone is unconditional and clone3 allowed.
	s, err = seccompFor("builtin", false, append(slices.Clone(DefaultCapabilities), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"), h)
	if err != nil {
		t.Fatal(err)
	}
	if r := findRules(s, "clone"); len(r) != 1 || len(r[0].Args) != 0 {
		t.Errorf("clone with CAP_SYS_ADMIN = %+v", r)
	}
	if r := findRules(s, "clone3"); len(r) != 1 || r[0].Action != specs.ActAllow {
		t.Errorf("clone3 with CAP_SYS_ADMIN = %+v", r)
	}
	if len(findRules(s, "mount")) != 1 || len(findRules(s, "kcmp")) != 1 {
		t.Error("capability-conditional syscalls missing")
	}

	// Old kernels do not get ptrace (seccomp ran before ptrace then).
	h.kernel = [2]int{4, 4}
	s, _ = seccompFor("", false, DefaultCapabilities, h)
	if len(findRules(s, "ptrace")) != 0 {
		t.Error("ptrace allowed on a 4.4 kernel")
	}

	for _, opt := range []string{"unconfined"} {
		if s, err := seccompFor(opt, false, nil, h); s != nil || err != nil {
			t.Errorf("%s: %v, %v", opt, s, err)
		}
	}
	if s, err := seccompFor("", true, nil, h); s != nil || err != nil {
		t.Errorf("privileged: %v, %v", s, err)
	}
}

func TestCustomSeccompProfile(t *testing.T) {
	h := fakeHost()
	profile := map[string]any{
		"defaultAction":   "SCMP_ACT_ERRNO",
		"defaultErrnoRet": 38,
		"archMap": []any{
			map[string]any{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": []string{"SCMP_ARCH_X86"}},
			map[string]any{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": []string{"SCMP_ARCH_ARM"}},
		},
		"syscalls": []any{
			map[string]any{"names": []string{"read", "write", "exit_group"}, "action": "SCMP_ACT_ALLOW"},
			map[string]any{"name": "getpid", "action": "SCMP_ACT_ALLOW"},
			map[string]any{"names": []string{"mount"}, "action": "SCMP_ACT_ALLOW", "includes": map[string]any{"caps": []string{"CAP_SYS_ADMIN"}}},
			map[string]any{"names": []string{"kill"}, "action": "SCMP_ACT_ALLOW", "excludes": map[string]any{"caps": []string{"CAP_KILL"}}},
			map[string]any{"names": []string{"arch_prctl"}, "action": "SCMP_ACT_ALLOW", "includes": map[string]any{"arches": []string{"amd64"}}},
			map[string]any{"names": []string{"newcall"}, "action": "SCMP_ACT_ALLOW", "includes": map[string]any{"minKernel": "99.0"}},
			map[string]any{"names": []string{"socket"}, "action": "SCMP_ACT_ERRNO", "errnoRet": 97,
				"args": []any{map[string]any{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}}},
		},
	}
	raw, _ := json.Marshal(profile)
	s, err := seccompFor(string(raw), false, DefaultCapabilities, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := seccomp.Validate(s); err != nil {
		t.Fatalf("runtime refuses the converted profile: %v", err)
	}
	var names []string
	for _, r := range s.Syscalls {
		names = append(names, strings.Join(r.Names, ","))
	}
	want := []string{"read,write,exit_group", "getpid", "socket"}
	if testingArch() == "amd64" {
		want = []string{"read,write,exit_group", "getpid", "arch_prctl", "socket"}
		if !reflect.DeepEqual(s.Architectures, []specs.Arch{specs.ArchX86_64, specs.ArchX86}) {
			t.Errorf("architectures = %v", s.Architectures)
		}
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("rules = %v, want %v", names, want)
	}
	if *s.DefaultErrnoRet != 38 || *s.Syscalls[len(s.Syscalls)-1].ErrnoRet != 97 {
		t.Error("errno values lost")
	}

	for _, bad := range []struct{ json, err string }{
		{`{"defaultAction":`, "decoding seccomp profile failed"},
		{`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64"],"archMap":[{"architecture":"SCMP_ARCH_X86_64"}]}`, "use either 'architectures' or 'archMap'"},
		{`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"name":"read","names":["write"],"action":"SCMP_ACT_ALLOW"}]}`, "use either 'name' or 'names'"},
		{`{"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}`, "defaultAction is required"},
		{`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"four"}}]}`, "invalid kernel version"},
		{`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"4.8"}}]}`, "not supported in excludes"},
	} {
		_, err := seccompFor(bad.json, false, DefaultCapabilities, h)
		if err == nil || !strings.Contains(err.Error(), bad.err) || !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("%s: err = %v, want %q", bad.json, err, bad.err)
		}
	}
	// An empty profile means no filter, as in dockerd.
	if s, err := seccompFor(`{}`, false, nil, h); s != nil || err != nil {
		t.Errorf("empty profile: %v, %v", s, err)
	}
}
