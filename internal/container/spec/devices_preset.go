//go:build linux

package spec

import (
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// PresetDeviceRules returns the linux.resources.devices Generate gives a
// container with host config hc when they are the defaults (Docker's
// rules: no --privileged, --device, --device-cgroup-rule or device
// request), and false otherwise. A pre-forked container init has its
// devices cgroup programmed with them at idle time
// (runtime.PreforkOpts.Devices); create then leaves it as it is when the
// spec has these very rules.
func PresetDeviceRules(hc *container.HostConfig) ([]specs.LinuxDeviceCgroup, bool) {
	if hc == nil || hc.Privileged || len(hc.Devices) > 0 || len(hc.DeviceCgroupRules) > 0 || len(hc.DeviceRequests) > 0 {
		return nil, false
	}
	return defaultDeviceRules(), true
}
