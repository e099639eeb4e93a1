package initproc

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestWarmJSON: the warming message codes without error and reaches the
// spec's nested types (a failed Marshal would leave them cold).
func TestWarmJSON(t *testing.T) {
	var m Msg
	fill(reflect.ValueOf(&m).Elem(), 0)
	b, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	var out Msg
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	c := out.Config
	if c == nil || c.Spec == nil || c.Spec.Process == nil || c.Spec.Process.Capabilities == nil ||
		c.Spec.Linux == nil || c.Spec.Linux.Resources == nil || c.Spec.Linux.Resources.Memory == nil ||
		len(c.Spec.Mounts) != 1 || len(c.Spec.Linux.Namespaces) != 1 || c.Seccomp == nil {
		t.Fatalf("not filled: %s", b)
	}
	WarmJSON()
}
