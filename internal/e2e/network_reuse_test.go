package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// TestNetworkStaticAddressReusedAtOnce: a container stopped and removed
// gives its static address and fixed host port back before its
// replacement starts, however quickly that comes (Compose's recreate:
// stop, create, remove, start, back to back through the API).
func TestNetworkStaticAddressReusedAtOnce(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	ctx := context.Background()
	sn, release := d.freeSubnets(1)
	release()
	pfx := netip.MustParsePrefix(sn[0])
	if _, err := d.client.NetworkCreate(ctx, "reuse", client.NetworkCreateOptions{
		IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: pfx}}}}); err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr(hostPart(sn[0], 10))
	port := freePorts(t, 1)
	create := func(name string) string {
		t.Helper()
		res, err := d.client.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
			Config:     &container.Config{Image: "busybox", Cmd: []string{"sleep", "300"}, ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}}},
			HostConfig: &container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: fmt.Sprint(port)}}}},
			NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
				"reuse": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: ip}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return res.ID
	}
	prev := create("reuse-0")
	if _, err := d.client.ContainerStart(ctx, prev, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	zero := 0
	for i := 1; i <= 5; i++ {
		if _, err := d.client.ContainerStop(ctx, prev, client.ContainerStopOptions{Timeout: &zero}); err != nil {
			t.Fatal(err)
		}
		next := create(fmt.Sprintf("reuse-%d", i))
		if _, err := d.client.ContainerRemove(ctx, prev, client.ContainerRemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.client.ContainerStart(ctx, next, client.ContainerStartOptions{}); err != nil {
			t.Fatalf("round %d: start of the replacement: %v", i, err)
		}
		prev = next
	}
	if _, err := d.client.ContainerRemove(ctx, prev, client.ContainerRemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.client.NetworkRemove(ctx, "reuse", client.NetworkRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
}
