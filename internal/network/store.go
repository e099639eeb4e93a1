package network

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/errdefs"
)

var (
	bucketNetworks = []byte("networks")
	bucketIPAM     = []byte("network-ipam")
)

// Record is a network as persisted (the JSON value of the "networks"
// bucket, keyed by ID).
type Record struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Driver  string    `json:"driver"` // bridge, host, null
	Created time.Time `json:"created"`
	// Subnet, Gateway and IPRange are the IPv4 configuration (bridge only).
	Subnet  netip.Prefix `json:"subnet,omitzero"`
	Gateway netip.Addr   `json:"gateway,omitzero"`
	IPRange netip.Prefix `json:"ip_range,omitzero"`
	// UserSubnet is set when the subnet came from the user (--subnet,
	// --bip): only then is --ip allowed, as with Docker.
	UserSubnet bool              `json:"user_subnet,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	// Bridge is the Linux bridge's name.
	Bridge string `json:"bridge,omitempty"`
	MTU    int    `json:"mtu,omitempty"`
	// ICC allows traffic between containers of the network (default).
	ICC bool `json:"icc"`
	// Masquerade NATs traffic leaving the host (default, off for internal).
	Masquerade bool `json:"masquerade"`
	// Default marks the predefined "bridge" network: no embedded DNS.
	Default bool `json:"default,omitempty"`
	// Parent is the host interface of a macvlan or ipvlan network;
	// OwnParent is set when berth created it (a dummy, for a network
	// created without -o parent, which is then internal). Mode is the
	// macvlan or ipvlan mode.
	Parent    string `json:"parent,omitempty"`
	OwnParent bool   `json:"own_parent,omitempty"`
	Mode      string `json:"mode,omitempty"`
	// Subnet6 and Gateway6 are the IPv6 side of a dual-stack bridge
	// network (--ipv6).
	Subnet6  netip.Prefix `json:"subnet6,omitzero"`
	Gateway6 netip.Addr   `json:"gateway6,omitzero"`
}

// subIf reports whether r's endpoints are macvlan or ipvlan interfaces
// of a parent rather than veth pairs on a bridge.
func (r *Record) subIf() bool { return r.Driver == "macvlan" || r.Driver == "ipvlan" }

// predefined reports whether r is one of bridge, host, none (which cannot
// be removed).
func (r *Record) predefined() bool {
	return r.Default || r.Driver == "host" || r.Driver == "null"
}

// userDefined reports whether containers on r get the embedded DNS.
func (r *Record) userDefined() bool { return (r.Driver == "bridge" || r.subIf()) && !r.Default }

func openStore(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketNetworks, bucketIPAM} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
}

func loadRecords(db *bolt.DB) ([]*Record, error) {
	var out []*Record
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNetworks).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("network record %s: %w", k, err)
			}
			out = append(out, &r)
			return nil
		})
	})
	return out, err
}

func putRecord(db *bolt.DB, r *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		if _, err := tx.Bucket(bucketIPAM).CreateBucketIfNotExists([]byte(r.ID)); err != nil {
			return err
		}
		return tx.Bucket(bucketNetworks).Put([]byte(r.ID), b)
	})
}

func deleteRecord(db *bolt.DB, id string) error {
	return db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketIPAM).DeleteBucket([]byte(id)); err != nil && err != bolt.ErrBucketNotFound {
			return err
		}
		return tx.Bucket(bucketNetworks).Delete([]byte(id))
	})
}

// ipam hands out addresses of networks' subnets. The allocations are
// held in memory, which is authoritative while berthd runs (one mutex:
// an address is never given twice), and written to the network's
// sub-bucket of "network-ipam" (key: the 4 address bytes, value: the
// owner, a container ID) by one writer goroutine, in order, many
// changes per transaction: an fsync per container start would cost
// about a millisecond. After a restart the allocations are loaded and
// reconciled with the containers that still run (Restore: kept and,
// if a crash lost the write, recorded again; every other one released),
// so a lost write can neither leak an address nor hand one out twice.
// Fresh addresses are taken after the last one handed out (wrapping
// around), so a released address is not reused at once.
type ipam struct {
	db   *bolt.DB
	mu   sync.Mutex
	mem  map[string]map[netip.Addr]string // network ID -> address -> owner
	next map[string]netip.Addr            // network ID -> where the next search starts
	ops  chan ipamOp
	done chan struct{}
}

type ipamOp struct {
	net   string
	addr  netip.Addr
	owner string // "" = delete
	flush chan struct{}
}

func newIPAM(db *bolt.DB) (*ipam, error) {
	m := &ipam{db: db, mem: map[string]map[netip.Addr]string{}, next: map[string]netip.Addr{},
		ops: make(chan ipamOp, 4096), done: make(chan struct{})}
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIPAM).ForEachBucket(func(k []byte) error {
			a := map[netip.Addr]string{}
			m.mem[string(k)] = a
			return tx.Bucket(bucketIPAM).Bucket(k).ForEach(func(ab, owner []byte) error {
				if addr, ok := netip.AddrFromSlice(ab); ok {
					a[addr] = string(owner)
				}
				return nil
			})
		})
	})
	if err != nil {
		return nil, err
	}
	go m.writer()
	return m, nil
}

// writer applies queued changes in order, as many per transaction as
// are waiting.
func (m *ipam) writer() {
	defer close(m.done)
	for op := range m.ops {
		batch := []ipamOp{op}
	more:
		for {
			select {
			case o, ok := <-m.ops:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		err := m.db.Update(func(tx *bolt.Tx) error {
			nets := tx.Bucket(bucketNetworks)
			root := tx.Bucket(bucketIPAM)
			for _, o := range batch {
				if o.flush != nil {
					continue
				}
				b := root.Bucket([]byte(o.net))
				if b == nil {
					if o.owner == "" || nets.Get([]byte(strings.TrimSuffix(o.net, "/6"))) == nil {
						continue // the network is gone
					}
					var err error
					if b, err = root.CreateBucket([]byte(o.net)); err != nil {
						return err
					}
				}
				var err error
				if o.owner == "" {
					err = b.Delete(o.addr.AsSlice())
				} else {
					err = b.Put(o.addr.AsSlice(), []byte(o.owner))
				}
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			slog.Error("network: persist address allocations", "err", err)
		}
		for _, o := range batch {
			if o.flush != nil {
				close(o.flush)
			}
		}
	}
}

// sync waits until every change so far is written.
func (m *ipam) sync() {
	ch := make(chan struct{})
	m.ops <- ipamOp{flush: ch}
	<-ch
}

// close writes what is queued and stops the writer.
func (m *ipam) close() {
	close(m.ops)
	<-m.done
}

var errAddrInUse = errdefs.Newf(errdefs.Conflict, "Address already in use")

// allocate returns an address of r for owner: want if valid, else the
// next free one of r.IPRange (or r.Subnet). The network and broadcast
// addresses and the gateway are never handed out.
func (m *ipam) allocate(r *Record, want netip.Addr, owner string) (netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	used := m.mem[r.ID]
	if used == nil {
		used = map[netip.Addr]string{}
		m.mem[r.ID] = used
	}
	take := func(a netip.Addr) (netip.Addr, error) {
		used[a] = owner
		m.ops <- ipamOp{net: r.ID, addr: a, owner: owner}
		return a, nil
	}
	if want.IsValid() {
		if !r.Subnet.Contains(want) {
			return netip.Addr{}, errdefs.Newf(errdefs.InvalidArgument, "no configured subnet or ip-range contain the IP address %s", want)
		}
		if want == r.Gateway || want == r.Subnet.Masked().Addr() || want == lastAddr(r.Subnet) {
			return netip.Addr{}, errAddrInUse
		}
		if cur, ok := used[want]; ok && cur != owner {
			return netip.Addr{}, errAddrInUse
		}
		return take(want)
	}
	rng := r.Subnet
	if r.IPRange.IsValid() {
		rng = r.IPRange
	}
	first, last := rng.Masked().Addr(), lastAddr(rng)
	start := m.next[r.ID]
	if !start.IsValid() || !rng.Contains(start) {
		start = first
	}
	a := start
	for {
		if _, taken := used[a]; !taken && a != r.Gateway && a != r.Subnet.Masked().Addr() && a != lastAddr(r.Subnet) {
			if n := a.Next(); rng.Contains(n) {
				m.next[r.ID] = n
			} else {
				m.next[r.ID] = first
			}
			return take(a)
		}
		if a == last {
			a = first
		} else {
			a = a.Next()
		}
		if a == start {
			return netip.Addr{}, errdefs.Newf(errdefs.Unavailable, "no available IPv4 addresses on network %s (%s)", r.Name, rng)
		}
	}
}

// release frees addr of network id if owner holds it.
func (m *ipam) release(id string, addr netip.Addr, owner string) error {
	if !addr.IsValid() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.mem[id][addr]; ok && cur == owner {
		delete(m.mem[id], addr)
		m.ops <- ipamOp{net: id, addr: addr}
	}
	return nil
}

// forget drops a removed network's allocations (its bucket is deleted
// with its record).
func (m *ipam) forget(id string) {
	m.mu.Lock()
	delete(m.mem, id)
	delete(m.next, id)
	m.mu.Unlock()
}

// allocations lists every allocation: network ID -> address -> owner.
func (m *ipam) allocations() (map[string]map[netip.Addr]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]map[netip.Addr]string{}
	for n, a := range m.mem {
		c := map[netip.Addr]string{}
		for k, v := range a {
			c[k] = v
		}
		out[n] = c
	}
	return out, nil
}

// reconcile makes the allocations exactly keep (after a restart: the
// addresses of containers that still run): others are released, missing
// ones recorded.
func (m *ipam) reconcile(keep map[string]map[netip.Addr]string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for n, a := range m.mem {
		for addr, owner := range a {
			if keep[n][addr] != owner {
				delete(a, addr)
				m.ops <- ipamOp{net: n, addr: addr}
			}
		}
	}
	for n, a := range keep {
		if m.mem[n] == nil {
			m.mem[n] = map[netip.Addr]string{}
		}
		for addr, owner := range a {
			if m.mem[n][addr] != owner {
				m.mem[n][addr] = owner
				m.ops <- ipamOp{net: n, addr: addr, owner: owner}
			}
		}
	}
}

// lastAddr is the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	if p.Addr().Is6() {
		a := p.Masked().Addr().As16()
		for i := p.Bits(); i < 128; i++ {
			a[i/8] |= 1 << (7 - i%8)
		}
		return netip.AddrFrom16(a)
	}
	a := p.Masked().Addr().As4()
	bits := p.Bits()
	for i := 0; i < 4; i++ {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				a[i] |= 1 << (7 - j)
			}
		}
	}
	return netip.AddrFrom4(a)
}

// v6 is the IPAM view of r's IPv6 subnet: allocations are kept under
// "<id>/6".
func (r *Record) v6() *Record {
	return &Record{ID: r.ID + "/6", Name: r.Name, Subnet: r.Subnet6, Gateway: r.Gateway6}
}
