package container

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/network"
)

// TestLinkVars: Docker's legacy link variables: the lowest port (TCP
// first) as <ALIAS>_PORT, one set per port, a range set for three or
// more consecutive ports (53/tcp, 53/udp is no run), the name, and the
// linked container's variables but HOME/PATH.
func TestLinkVars(t *testing.T) {
	ports := []network.Port{network.MustParsePort("6380/tcp"), network.MustParsePort("53/udp"), network.MustParsePort("53/tcp"),
		network.MustParsePort("6379/tcp"), network.MustParsePort("6381/tcp")}
	got := linkVars("/web/my-db", "10.0.0.5", ports, []string{"PATH=/bin", "HOME=/root", "PASS=x=y"})
	want := []string{
		"MY_DB_PORT=tcp://10.0.0.5:53",
		"MY_DB_PORT_6379_TCP_START=tcp://10.0.0.5:6379",
		"MY_DB_PORT_6379_TCP_ADDR=10.0.0.5",
		"MY_DB_PORT_6379_TCP_PROTO=tcp",
		"MY_DB_PORT_6379_TCP_PORT_START=6379",
		"MY_DB_PORT_6379_TCP_END=tcp://10.0.0.5:6381",
		"MY_DB_PORT_6379_TCP_PORT_END=6381",
		"MY_DB_PORT_53_TCP=tcp://10.0.0.5:53",
		"MY_DB_PORT_53_TCP_ADDR=10.0.0.5",
		"MY_DB_PORT_53_TCP_PORT=53",
		"MY_DB_PORT_53_TCP_PROTO=tcp",
		"MY_DB_PORT_53_UDP=udp://10.0.0.5:53",
		"MY_DB_PORT_53_UDP_ADDR=10.0.0.5",
		"MY_DB_PORT_53_UDP_PORT=53",
		"MY_DB_PORT_53_UDP_PROTO=udp",
		"MY_DB_PORT_6379_TCP=tcp://10.0.0.5:6379",
		"MY_DB_PORT_6379_TCP_ADDR=10.0.0.5",
		"MY_DB_PORT_6379_TCP_PORT=6379",
		"MY_DB_PORT_6379_TCP_PROTO=tcp",
		"MY_DB_PORT_6380_TCP=tcp://10.0.0.5:6380",
		"MY_DB_PORT_6380_TCP_ADDR=10.0.0.5",
		"MY_DB_PORT_6380_TCP_PORT=6380",
		"MY_DB_PORT_6380_TCP_PROTO=tcp",
		"MY_DB_PORT_6381_TCP=tcp://10.0.0.5:6381",
		"MY_DB_PORT_6381_TCP_ADDR=10.0.0.5",
		"MY_DB_PORT_6381_TCP_PORT=6381",
		"MY_DB_PORT_6381_TCP_PROTO=tcp",
		"MY_DB_NAME=/web/my-db",
		"MY_DB_ENV_PASS=x=y",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	// The container's own variables win; a variable the range set
	// repeats with the same value (_ADDR, _PROTO) is there once.
	env := withLinkEnv([]string{"MY_DB_NAME=mine"}, got)
	if env[0] != "MY_DB_NAME=mine" || slices.Contains(env, "MY_DB_NAME=/web/my-db") || len(env) != len(got)-2 {
		t.Fatalf("withLinkEnv: %q", env)
	}
	for _, v := range got {
		if v != "MY_DB_NAME=/web/my-db" && !slices.Contains(env, v) {
			t.Fatalf("withLinkEnv lost %s", v)
		}
	}
}
