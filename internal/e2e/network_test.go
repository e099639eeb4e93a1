package e2e

import (
	"strings"
	"testing"
)

// TestNetworkDefaultBridge: a container on the default network has an
// address of the daemon's bridge subnet, a default route and the
// address in its /etc/hosts.
func TestNetworkDefaultBridge(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	out, errOut, code := d.cli(bins.docker, nil, "run", "--rm", "busybox", "sh", "-c", "ip -4 addr show eth0; ip route; cat /etc/hosts")
	if code != 0 {
		t.Fatalf("run: %d %s %s", code, out, errOut)
	}
	if !strings.Contains(out, "inet 10.213.") || !strings.Contains(out, "default via 10.213.") {
		t.Fatalf("no bridge address or route:\n%s", out)
	}
	t.Log(out)
}
