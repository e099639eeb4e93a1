package initproc

import (
	"encoding/json"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestDecodeSpec: a spec decoded with its seccomp profile skipped is the
// full decode with an empty profile in its place (none when the config
// has none, or null); a config without linux gets an empty one; bad JSON
// is an error.
func TestDecodeSpec(t *testing.T) {
	ret := uint(1)
	full := &specs.Spec{
		Version: specs.Version, Hostname: "h", Process: &specs.Process{Args: []string{"true"}, Env: []string{"A=\n\"b\""}},
		Mounts: []specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}},
		Linux: &specs.Linux{
			MaskedPaths: []string{"/proc/kcore"}, Sysctl: map[string]string{"k": "v"},
			Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow, ErrnoRet: &ret}}},
		},
	}
	b, err := json.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	var want specs.Spec
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	want.Linux.Seccomp = &specs.LinuxSeccomp{}
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("decoded %+v\nwant %+v", got, &want)
	}

	for _, tc := range []struct{ in, linux string }{
		{`{"ociVersion":"1.0.2","linux":{"seccomp":null,"maskedPaths":["/x"]}}`, "no seccomp"},
		{`{"ociVersion":"1.0.2","linux":{"maskedPaths":["/x"]}}`, "no seccomp"},
		{`{"ociVersion":"1.0.2"}`, "empty"},
	} {
		s, err := DecodeSpec([]byte(tc.in))
		if err != nil || s.Linux == nil || s.Linux.Seccomp != nil {
			t.Errorf("%s: %+v %v", tc.in, s, err)
			continue
		}
		if tc.linux == "empty" && !reflect.DeepEqual(s.Linux, &specs.Linux{}) {
			t.Errorf("%s: linux %+v", tc.in, s.Linux)
		}
	}
	if _, err := DecodeSpec([]byte(`{"linux":{"seccomp":{`)); err == nil {
		t.Error("bad JSON decoded")
	}
}

// TestSendSpecAhead: MsgSpec carries config.json as it is (newlines and
// all) after its JSON; a config sent with SpecSent leaves the spec out
// and keeps its process.
func TestSendSpecAhead(t *testing.T) {
	raw := []byte("{\n  \"ociVersion\": \"1.0.2\",\n  \"hostname\": \"h\"\n}\n")
	got, _ := roundTrip(t, Msg{Type: MsgSpec, Raw: raw})
	if got.Type != MsgSpec || string(got.Raw) != string(raw) {
		t.Errorf("spec received %+v", got)
	}
	proc := &specs.Process{Args: []string{"/bin/true"}}
	spec := &specs.Spec{Version: specs.Version, Hostname: "not-sent", Process: proc}
	got, size := roundTrip(t, Msg{Type: MsgConfig, SpecSent: true, Config: &Config{Mode: ModeInit, Spec: spec, Process: proc}})
	if got.Type != MsgConfig || !got.SpecSent || got.Config == nil || got.Config.Spec != nil || !reflect.DeepEqual(got.Config.Process, proc) {
		t.Errorf("config received %+v", got)
	}
	full, _ := encode(Msg{Type: MsgConfig, Config: &Config{Mode: ModeInit, Spec: spec, Process: proc}})
	if size >= len(full) {
		t.Errorf("config without the spec: %d bytes, with it %d", size, len(full))
	}
	var m Msg
	if err := decode([]byte(`{"type":"spec"}`), &m); err == nil {
		t.Error("a spec message without the spec decoded")
	}
}
