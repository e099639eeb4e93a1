package runtime

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestPersistedRawConfig: a record whose config carries the JSON it was
// parsed from is saved with those bytes in place of an encoding of it,
// and reads back the same as the plain encoding (strings that look like
// the field do not confuse it).
func TestPersistedRawConfig(t *testing.T) {
	raw := []byte("{\n \"ociVersion\": \"1.0.2\", \"hostname\": \"\\\"config\\\":null\",\n \"linux\": {\"seccomp\": {\"defaultAction\": \"SCMP_ACT_ALLOW\"}}\n}\n")
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	p := &persisted{
		ID: "c", Bundle: `/b/"config":null`, Rootfs: "/r", InitPid: 7, Created: time.Unix(1, 0).UTC(), Owner: "root",
		CgroupPaths:    map[string]string{"config": "null", "": "/sys/fs/cgroup/x"},
		NamespacePaths: map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "/proc/7/ns/pid"},
		Config:         &spec, Creating: true, configJSON: raw,
	}
	b, err := p.marshal()
	if err != nil {
		t.Fatal(err)
	}
	var got, want persisted
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%v:\n%s", err, b)
	}
	plain, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(plain, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %+v\nwant %+v\n%s", got, want, b)
	}
	// Without the bytes: the plain encoding.
	p.configJSON = nil
	if b, _ := p.marshal(); string(b) != string(plain) {
		t.Errorf("without raw config: %s", b)
	}
}
