package initproc

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/berth-dev/berth/internal/runtime/seccomp/bpf"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// roundTrip sends m over a real sync socket pair and returns what the
// other end receives and the packet's size.
func roundTrip(t *testing.T, m Msg) (Msg, int) {
	t.Helper()
	a, b, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	defer b.Close()
	raw, err := encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := (Conn{F: a}).Send(m); err != nil {
		t.Fatal(err)
	}
	got, err := Conn{F: b}.Recv()
	if err != nil {
		t.Fatal(err)
	}
	return got, len(raw)
}

// TestSendConfig: a config's seccomp filter travels as raw bytes after the
// JSON (any bytes, newlines included) and the spec's process, when it is
// the config's, once; what arrives is the config that was sent.
func TestSendConfig(t *testing.T) {
	filter := bytes.Repeat([]byte{0x15, '\n', 0, 0xff, '{', 0x06, 0, 0}, 979)
	proc := &specs.Process{Args: []string{"/bin/true"}, Env: []string{"PATH=/bin"}, Cwd: "/"}
	spec := &specs.Spec{Version: specs.Version, Hostname: "h", Process: proc, Linux: &specs.Linux{MaskedPaths: []string{"/proc/kcore"}}}
	cfg := &Config{Mode: ModeInit, ID: "c1", Spec: spec, Process: proc, Seccomp: &bpf.Program{Filter: filter, Flags: 3}}
	got, size := roundTrip(t, Msg{Type: MsgConfig, Config: cfg})
	c := got.Config
	if got.Type != MsgConfig || c == nil || c.Seccomp == nil {
		t.Fatalf("received %+v", got)
	}
	if !bytes.Equal(c.Seccomp.Filter, filter) || c.Seccomp.Flags != 3 {
		t.Errorf("filter: %d bytes, flags %d; sent %d bytes, flags 3", len(c.Seccomp.Filter), c.Seccomp.Flags, len(filter))
	}
	if c.Spec.Process != c.Process || !reflect.DeepEqual(c.Process, proc) || c.Spec.Hostname != "h" {
		t.Errorf("process %+v, spec's %p (config's %p)", c.Process, c.Spec.Process, c.Process)
	}
	if got.SpecProcess {
		t.Error("SpecProcess left set")
	}
	// The sender's config is untouched.
	if cfg.Seccomp.Filter == nil || spec.Process != proc {
		t.Error("encode changed the config it sent")
	}
	// What it saves: base64 of the filter and the process once more.
	old, _ := json.Marshal(Msg{Type: MsgConfig, Config: cfg})
	if size >= len(old)-len(filter)/3 {
		t.Errorf("packet %d bytes, plain JSON %d", size, len(old))
	}

	// An exec's process is not the spec's: both go, as they are.
	other := &specs.Process{Args: []string{"sh"}, Cwd: "/tmp"}
	got, _ = roundTrip(t, Msg{Type: MsgConfig, Config: &Config{Mode: ModeExec, Spec: spec, Process: other}})
	if c := got.Config; c == nil || c.Seccomp != nil || !reflect.DeepEqual(c.Process, other) || !reflect.DeepEqual(c.Spec.Process, proc) {
		t.Errorf("exec config received %+v", got.Config)
	}
	got, _ = roundTrip(t, Msg{Type: MsgError, Message: "line1\nline2"})
	if got.Type != MsgError || got.Message != "line1\nline2" || got.Config != nil {
		t.Errorf("error message received %+v", got)
	}
}

// TestDecodeTailWithoutSeccomp: raw bytes after the JSON are refused
// unless the config has a seccomp program to put them in.
func TestDecodeTailWithoutSeccomp(t *testing.T) {
	var m Msg
	if err := decode([]byte(`{"type":"config","config":{"mode":"init"}}`+"\nxx"), &m); err == nil {
		t.Error("no error")
	}
}
