package apitest

import "testing"

func TestFakeContainersConformance(t *testing.T) {
	ContainerBackendSuite(t, NewContainers(), "busybox")
}
