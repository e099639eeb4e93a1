//go:build cgo

package seccomp

import (
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

func uintp(v uint) *uint { return &v }

func errnoAct(code unix.Errno) libseccomp.ScmpAction {
	return libseccomp.ActErrno.SetReturnCode(int16(code))
}

func cond(t *testing.T, idx uint, op libseccomp.ScmpCompareOp, vals ...uint64) libseccomp.ScmpCondition {
	t.Helper()
	c, err := libseccomp.MakeCondition(idx, op, vals...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConvertActions(t *testing.T) {
	tests := []struct {
		action   specs.LinuxSeccompAction
		errnoRet *uint
		want     libseccomp.ScmpAction
		wantErr  string
	}{
		{action: specs.ActKill, want: libseccomp.ActKillThread},
		{action: specs.ActKillThread, want: libseccomp.ActKillThread},
		{action: specs.ActKillProcess, want: libseccomp.ActKillProcess},
		{action: specs.ActTrap, want: libseccomp.ActTrap},
		{action: specs.ActAllow, want: libseccomp.ActAllow},
		{action: specs.ActLog, want: libseccomp.ActLog},
		{action: specs.ActNotify, want: libseccomp.ActNotify},
		{action: specs.ActErrno, want: errnoAct(unix.EPERM)},
		{action: specs.ActErrno, errnoRet: uintp(uint(unix.EXDEV)), want: errnoAct(unix.EXDEV)},
		{action: specs.ActErrno, errnoRet: uintp(0), want: libseccomp.ActErrno},
		{action: specs.ActErrno, errnoRet: uintp(65535), want: libseccomp.ActErrno.SetReturnCode(-1)},
		{action: specs.ActTrace, want: libseccomp.ActTrace.SetReturnCode(int16(unix.EPERM))},
		{action: specs.ActTrace, errnoRet: uintp(1234), want: libseccomp.ActTrace.SetReturnCode(1234)},
		{action: specs.ActErrno, errnoRet: uintp(65536), wantErr: "errnoRet 65536 for SCMP_ACT_ERRNO is out of range"},
		{action: specs.ActAllow, errnoRet: uintp(1), wantErr: "errnoRet is set but action SCMP_ACT_ALLOW does not return an errno"},
		{action: specs.ActKill, errnoRet: uintp(1), wantErr: "action SCMP_ACT_KILL does not return an errno"},
		{action: specs.ActNotify, errnoRet: uintp(1), wantErr: "action SCMP_ACT_NOTIFY does not return an errno"},
		{action: "SCMP_ACT_BOGUS", wantErr: `unknown action "SCMP_ACT_BOGUS"`},
		{action: "scmp_act_allow", wantErr: `unknown action "scmp_act_allow"`},
		{action: "", wantErr: "action is empty"},
	}
	for _, tc := range tests {
		name := string(tc.action)
		if tc.errnoRet != nil {
			name += "/errno" + strconv.FormatUint(uint64(*tc.errnoRet), 10)
		}
		t.Run(name, func(t *testing.T) {
			// As a syscall rule, with ALLOW/KILL defaults so the rule
			// is never dropped as equal to the default.
			def := specs.ActKillProcess
			if tc.action == specs.ActKillProcess {
				def = specs.ActAllow
			}
			p, err := convert(&specs.LinuxSeccomp{
				DefaultAction: def,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: tc.action, ErrnoRet: tc.errnoRet}},
			})
			checkErr(t, err, tc.wantErr)
			if err != nil {
				if !strings.Contains(err.Error(), "syscalls[0]") {
					t.Errorf("error %q does not say which entry is wrong", err)
				}
			} else if got := p.rules[0].action; got != tc.want {
				t.Errorf("rule action = %#x, want %#x", uint(got), uint(tc.want))
			}

			// As the default action.
			p, err = convert(&specs.LinuxSeccomp{DefaultAction: tc.action, DefaultErrnoRet: tc.errnoRet})
			if tc.action == "" {
				checkErr(t, err, "defaultAction is required")
				return
			}
			checkErr(t, err, tc.wantErr)
			if err == nil && p.defaultAction != tc.want {
				t.Errorf("default action = %#x, want %#x", uint(p.defaultAction), uint(tc.want))
			}
			if err == nil && p.notify != (tc.action == specs.ActNotify) {
				t.Errorf("notify = %v", p.notify)
			}
		})
	}
}

func TestConvertConditions(t *testing.T) {
	tests := []struct {
		name    string
		args    []specs.LinuxSeccompArg
		want    [][]libseccomp.ScmpCondition
		wantErr string
	}{
		{name: "none", args: nil, want: nil},
		{
			name: "every operator",
			args: []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpNotEqual, Value: 1},
				{Index: 1, Op: specs.OpLessThan, Value: 2},
				{Index: 2, Op: specs.OpLessEqual, Value: 3},
				{Index: 3, Op: specs.OpEqualTo, Value: 4, ValueTwo: 99}, // valueTwo ignored
				{Index: 4, Op: specs.OpGreaterEqual, Value: 5},
				{Index: 5, Op: specs.OpGreaterThan, Value: 6},
			},
			want: [][]libseccomp.ScmpCondition{{
				cond(t, 0, libseccomp.CompareNotEqual, 1),
				cond(t, 1, libseccomp.CompareLess, 2),
				cond(t, 2, libseccomp.CompareLessOrEqual, 3),
				cond(t, 3, libseccomp.CompareEqual, 4),
				cond(t, 4, libseccomp.CompareGreaterEqual, 5),
				cond(t, 5, libseccomp.CompareGreater, 6),
			}},
		},
		{
			name: "masked equal uses value as mask and valueTwo as datum",
			args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 0xff00, ValueTwo: 0x1200}},
			want: [][]libseccomp.ScmpCondition{{cond(t, 0, libseccomp.CompareMaskedEqual, 0xff00, 0x1200)}},
		},
		{
			name: "repeated index makes alternatives",
			args: []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpEqualTo, Value: 1},
				{Index: 0, Op: specs.OpEqualTo, Value: 2},
				{Index: 1, Op: specs.OpEqualTo, Value: 3},
			},
			want: [][]libseccomp.ScmpCondition{
				{cond(t, 0, libseccomp.CompareEqual, 1)},
				{cond(t, 0, libseccomp.CompareEqual, 2)},
				{cond(t, 1, libseccomp.CompareEqual, 3)},
			},
		},
		{name: "index too high", args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}, wantErr: "syscalls[0].args[0]: argument index 6 is out of range"},
		{name: "unknown op", args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_FOO"}}, wantErr: `syscalls[0].args[0]: unknown operator "SCMP_CMP_FOO"`},
		{name: "empty op", args: []specs.LinuxSeccompArg{{Index: 1, Op: specs.OpEqualTo}, {Index: 0}}, wantErr: "syscalls[0].args[1]: op is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := convert(&specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpgid", "getsid"}, Action: specs.ActErrno, Args: tc.args}},
			})
			checkErr(t, err, tc.wantErr)
			if err != nil {
				return
			}
			if len(p.rules) != 2 {
				t.Fatalf("got %d rules, want one per name", len(p.rules))
			}
			for _, r := range p.rules {
				if !reflect.DeepEqual(r.condSets, tc.want) {
					t.Errorf("%s: conditions = %+v, want %+v", r.syscall, r.condSets, tc.want)
				}
			}
		})
	}
}

func TestConvertConfig(t *testing.T) {
	tests := []struct {
		name    string
		spec    *specs.LinuxSeccomp
		check   func(t *testing.T, p *program)
		wantErr string
	}{
		{name: "nil", spec: nil, wantErr: "no seccomp config"},
		{name: "no default action", spec: &specs.LinuxSeccomp{}, wantErr: "defaultAction is required"},
		{
			name: "default errno",
			spec: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uintp(uint(unix.ENOSYS))},
			check: func(t *testing.T, p *program) {
				if p.defaultAction != errnoAct(unix.ENOSYS) || p.notify || p.flags != 0 || len(p.rules) != 0 {
					t.Errorf("program = %+v", p)
				}
			},
		},
		{
			name: "architectures",
			spec: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64}},
			check: func(t *testing.T, p *program) {
				want := []libseccomp.ScmpArch{libseccomp.ArchAMD64, libseccomp.ArchX86, libseccomp.ArchX32, libseccomp.ArchARM64}
				if !reflect.DeepEqual(p.arches, want) {
					t.Errorf("arches = %v, want %v", p.arches, want)
				}
			},
		},
		{
			name:    "unknown architecture",
			spec:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, "SCMP_ARCH_Z80"}},
			wantErr: `architectures[1]: unknown architecture "SCMP_ARCH_Z80"`,
		},
		{
			name: "flags",
			spec: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{
				flagTSYNC, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv, specs.LinuxSeccompFlagLog,
			}},
			check: func(t *testing.T, p *program) {
				want := uint(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
				if p.flags != want || len(p.flagNames) != 4 {
					t.Errorf("flags = %#x %v, want %#x and 4 names", p.flags, p.flagNames, want)
				}
			},
		},
		{
			name:    "unknown flag",
			spec:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, "SECCOMP_FILTER_FLAG_NEW_LISTENER"}},
			wantErr: `flags[1]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"`,
		},
		{
			name:    "no names",
			spec:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActLog}, {Action: specs.ActErrno}}},
			wantErr: "syscalls[1]: names must contain at least one syscall",
		},
		{
			name:    "empty name",
			spec:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", ""}, Action: specs.ActLog}}},
			wantErr: "syscalls[0].names[1] is empty",
		},
		{
			name: "rules equal to the default are dropped",
			spec: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getcwd"}, Action: specs.ActErrno},                                     // EPERM == default: dropped
				{Names: []string{"mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))}, // other errno: kept
				{Names: []string{"read", "write"}, Action: specs.ActAllow},
				{Names: []string{"mount"}, Action: specs.ActNotify},
			}},
			check: func(t *testing.T, p *program) {
				var got []string
				for _, r := range p.rules {
					got = append(got, r.syscall)
				}
				if want := []string{"mkdirat", "read", "write", "mount"}; !slices.Equal(got, want) {
					t.Errorf("rules for %v, want %v", got, want)
				}
				if !p.notify {
					t.Error("notify not detected")
				}
			},
		},
		{
			name: "unknown syscall names are kept for the build step",
			spec: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"no_such_syscall"}, Action: specs.ActKill}}},
			check: func(t *testing.T, p *program) {
				if len(p.rules) != 1 || p.rules[0].syscall != "no_such_syscall" {
					t.Errorf("rules = %+v", p.rules)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := convert(tc.spec)
			checkErr(t, err, tc.wantErr)
			if err == nil && tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	native := nativeSpecArch(t)
	tests := []struct {
		name    string
		spec    *specs.LinuxSeccomp
		wantErr string
	}{
		{name: "nil", spec: nil},
		{name: "allow all", spec: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}},
		{name: "bad action", spec: &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_NOPE"}, wantErr: `unknown action "SCMP_ACT_NOPE"`},
		{
			name: "docker-like profile",
			spec: &specs.LinuxSeccomp{
				DefaultAction:   specs.ActErrno,
				DefaultErrnoRet: uintp(uint(unix.EPERM)),
				Architectures:   []specs.Arch{native},
				Flags:           []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
				Syscalls: []specs.LinuxSyscall{
					{Names: []string{"read", "write", "openat", "exit_group", "no_such_syscall", "socketcall", "stat64"}, Action: specs.ActAllow},
					{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0}}},
					{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 8}}},
					{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpMaskedEqual, Value: 0x7e020000, ValueTwo: 0}}},
					{Names: []string{"ptrace"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.ENOSYS))},
				},
			},
		},
		{
			name:    "metadata without listener",
			spec:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerMetadata: "x"},
			wantErr: "listenerMetadata is set but listenerPath is not",
		},
		{
			name:    "notify without listener",
			spec:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActNotify}}},
			wantErr: "SCMP_ACT_NOTIFY is used but listenerPath is empty",
		},
		{
			name: "notify with listener",
			spec: &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow, ListenerPath: "/run/agent.sock", ListenerMetadata: "m",
				Flags:    []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv},
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mount"}, Action: specs.ActNotify}},
			},
		},
		{
			name: "wait killable without notify is accepted",
			spec: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}},
		},
	}
	if runtime.GOARCH == "amd64" {
		tests = append(tests, struct {
			name    string
			spec    *specs.LinuxSeccomp
			wantErr string
		}{
			name:    "architecture of the other byte order",
			spec:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, specs.ArchS390X}},
			wantErr: "architectures[1]: SCMP_ARCH_S390X cannot share a filter with the native architecture SCMP_ARCH_X86_64",
		})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkErr(t, Validate(tc.spec), tc.wantErr)
		})
	}
}

func TestFeatures(t *testing.T) {
	f := Features()
	if f.Enabled == nil || !*f.Enabled {
		t.Fatal("seccomp not reported as enabled")
	}
	if len(f.Actions) != 9 || !slices.Contains(f.Actions, string(specs.ActNotify)) {
		t.Errorf("actions = %v", f.Actions)
	}
	if len(f.Operators) != 7 || !slices.Contains(f.Operators, string(specs.OpMaskedEqual)) {
		t.Errorf("operators = %v", f.Operators)
	}
	if native := nativeSpecArch(t); !slices.Contains(f.Archs, string(native)) {
		t.Errorf("archs = %v, missing native %s", f.Archs, native)
	}
	wantFlags := []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"}
	if !slices.Equal(f.KnownFlags, wantFlags) {
		t.Errorf("known flags = %v, want %v", f.KnownFlags, wantFlags)
	}
	if f.SupportedFlags == nil {
		t.Fatal("supported flags unknown: cannot probe seccomp(2) here")
	}
	for _, fl := range f.SupportedFlags {
		if !slices.Contains(f.KnownFlags, fl) {
			t.Errorf("supported flag %s is not a known flag", fl)
		}
	}
	// Every kernel a container runtime runs on today has these.
	for _, fl := range []string{"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"} {
		if !slices.Contains(f.SupportedFlags, fl) {
			t.Errorf("supported flags %v lack %s", f.SupportedFlags, fl)
		}
	}
	// Every arch Features lists must be accepted by Validate.
	for _, a := range f.Archs {
		if err := Validate(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.Arch(a)}}); err != nil {
			t.Errorf("Features lists %s but Validate refuses it: %v", a, err)
		}
	}
	t.Logf("features: %+v", *f)
}

func TestFlagString(t *testing.T) {
	if got := flagString(0); got != "none" {
		t.Errorf("flagString(0) = %q", got)
	}
	got := flagString(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | 0x400)
	if got != "TSYNC|NEW_LISTENER|0x400" {
		t.Errorf("flagString = %q", got)
	}
}

func nativeSpecArch(t *testing.T) specs.Arch {
	t.Helper()
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range arches {
		if a == native {
			return name
		}
	}
	t.Fatalf("native arch %v has no runtime-spec name", native)
	return ""
}

func checkErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want one containing %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	}
}
