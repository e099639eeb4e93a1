package network

import (
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
)

func openTestDB(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := openStore(db); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestIPAM: addresses are handed out once, skipping network, gateway and
// broadcast; --ip is honoured and refused when taken or outside; the
// pool runs out with a clear error; releases free an address, which is
// not reused at once; allocations survive a reopen of the database;
// releaseUnless keeps only what the filter keeps.
func TestIPAM(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.db")
	db := openTestDB(t, path)
	r := &Record{ID: "n1", Name: "n1", Subnet: netip.MustParsePrefix("10.9.0.0/29"), Gateway: netip.MustParseAddr("10.9.0.1")}
	// The network records exist: allocations of unknown networks are not
	// written.
	for _, id := range []string{"n1", "n2"} {
		if err := putRecord(db, &Record{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := newIPAM(db)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; i < 5; i++ {
		a, err := m.allocate(r, netip.Addr{}, "c"+string(rune('a'+i)))
		if err != nil {
			t.Fatalf("allocate %d: %v", i, err)
		}
		got = append(got, a.String())
	}
	want := []string{"10.9.0.2", "10.9.0.3", "10.9.0.4", "10.9.0.5", "10.9.0.6"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocations %v, want %v", got, want)
		}
	}
	if _, err := m.allocate(r, netip.Addr{}, "cx"); !errdefs.Is(err, errdefs.Unavailable) {
		t.Fatalf("exhausted pool: %v", err)
	}
	if _, err := m.allocate(r, netip.MustParseAddr("10.9.0.3"), "cy"); !errdefs.Is(err, errdefs.Conflict) {
		t.Fatalf("taken --ip: %v", err)
	}
	if _, err := m.allocate(r, netip.MustParseAddr("10.9.0.1"), "cy"); !errdefs.Is(err, errdefs.Conflict) {
		t.Fatalf("gateway as --ip: %v", err)
	}
	if _, err := m.allocate(r, netip.MustParseAddr("10.8.0.3"), "cy"); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("--ip outside the subnet: %v", err)
	}
	// Releasing needs the owner.
	if err := m.release("n1", netip.MustParseAddr("10.9.0.3"), "nobody"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.allocate(r, netip.Addr{}, "cx"); err == nil {
		t.Fatal("a release by another owner freed the address")
	}
	if err := m.release("n1", netip.MustParseAddr("10.9.0.3"), "cb"); err != nil {
		t.Fatal(err)
	}
	if err := m.release("n1", netip.MustParseAddr("10.9.0.4"), "cc"); err != nil {
		t.Fatal(err)
	}
	a, err := m.allocate(r, netip.Addr{}, "cz")
	if err != nil || a.String() != "10.9.0.3" {
		t.Fatalf("after release: %v %v", a, err)
	}
	// Reopen: allocations are on disk.
	m.close()
	db.Close()
	db = openTestDB(t, path)
	defer db.Close()
	m, err = newIPAM(db)
	if err != nil {
		t.Fatal(err)
	}
	defer m.close()
	all, err := m.allocations()
	if err != nil {
		t.Fatal(err)
	}
	if len(all["n1"]) != 4 || all["n1"][netip.MustParseAddr("10.9.0.3")] != "cz" {
		t.Fatalf("after reopen: %v", all)
	}
	if a, err := m.allocate(r, netip.Addr{}, "c9"); err != nil || a.String() != "10.9.0.4" {
		t.Fatalf("after reopen, the free address: %v %v", a, err)
	}
	// reconcile keeps exactly what runs, and records what a crash lost.
	m.reconcile(map[string]map[netip.Addr]string{"n1": {netip.MustParseAddr("10.9.0.3"): "cz", netip.MustParseAddr("10.9.0.6"): "lost"}})
	all, _ = m.allocations()
	if len(all["n1"]) != 2 || all["n1"][netip.MustParseAddr("10.9.0.6")] != "lost" {
		t.Fatalf("reconcile kept %v", all)
	}
	m.sync()
	var onDisk int
	_ = db.View(func(tx *bolt.Tx) error {
		onDisk = tx.Bucket(bucketIPAM).Bucket([]byte("n1")).Stats().KeyN
		return nil
	})
	if onDisk != 2 {
		t.Fatalf("%d allocations on disk after reconcile, want 2", onDisk)
	}
	// An ip-range limits where fresh addresses come from.
	r2 := &Record{ID: "n2", Name: "n2", Subnet: netip.MustParsePrefix("10.9.1.0/24"), Gateway: netip.MustParseAddr("10.9.1.1"), IPRange: netip.MustParsePrefix("10.9.1.128/30")}
	a, err = m.allocate(r2, netip.Addr{}, "c1")
	if err != nil || a.String() != "10.9.1.128" {
		t.Fatalf("ip-range: %v %v", a, err)
	}
}

func TestPickSubnet(t *testing.T) {
	pools := []Pool{{Base: netip.MustParsePrefix("10.1.0.0/16"), Size: 24}}
	used := []inUse{{prefix: netip.MustParsePrefix("10.1.0.0/23"), by: "route via eth9"}, {prefix: netip.MustParsePrefix("10.1.2.0/24"), by: "network x"}}
	p, err := pickSubnet(pools, used)
	if err != nil || p.String() != "10.1.3.0/24" {
		t.Fatalf("pick: %v %v", p, err)
	}
	_, err = pickSubnet([]Pool{{Base: netip.MustParsePrefix("10.1.0.0/23"), Size: 24}}, used)
	if err == nil || !errdefs.Is(err, errdefs.Unavailable) {
		t.Fatalf("exhausted: %v", err)
	}
	for _, want := range []string{"10.1.0.0/23 used by route via eth9", "10.1.0.0/23/size 24"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	if _, err := ParsePool("base=10.10.0.0/16,size=24"); err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePool("base=10.10.0.0/16,size=8"); err == nil {
		t.Fatal("size smaller than the base accepted")
	}
	n := 0
	for _, p := range DefaultPools {
		p.subnets(func(netip.Prefix) bool { n++; return true })
	}
	if n <= 31 {
		t.Fatalf("default pools hold %d networks, not more than Docker's 31", n)
	}
}
