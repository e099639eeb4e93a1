//go:build linux

package spec

import (
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestPresetDeviceRules: the rules a pre-forked init is programmed with
// are exactly those Generate gives a container without device options
// (so create keeps them), and there are none for a container with any.
func TestPresetDeviceRules(t *testing.T) {
	s := mustGen(t, nil)
	rules, ok := PresetDeviceRules(&container.HostConfig{})
	if !ok || !reflect.DeepEqual(rules, s.Linux.Resources.Devices) {
		t.Errorf("preset rules %+v (%v), Generate's %+v", rules, ok, s.Linux.Resources.Devices)
	}
	for name, hc := range map[string]*container.HostConfig{
		"privileged":  {Privileged: true},
		"device":      {Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/null"}}}},
		"cgroup rule": {Resources: container.Resources{DeviceCgroupRules: []string{"c 1:3 r"}}},
		"request":     {Resources: container.Resources{DeviceRequests: []container.DeviceRequest{{Driver: "x"}}}},
	} {
		if _, ok := PresetDeviceRules(hc); ok {
			t.Errorf("%s: preset rules offered", name)
		}
	}
}
