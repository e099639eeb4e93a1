package network

import (
	"encoding/json"
	"fmt"
	"net/netip"
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
}

// predefined reports whether r is one of bridge, host, none (which cannot
// be removed).
func (r *Record) predefined() bool {
	return r.Default || r.Driver == "host" || r.Driver == "null"
}

// userDefined reports whether containers on r get the embedded DNS.
func (r *Record) userDefined() bool { return r.Driver == "bridge" && !r.Default }

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

// ipam hands out addresses of one network's subnet. Allocations live in
// the network's sub-bucket of "network-ipam" (key: the 4 address bytes,
// value: the owner, a container ID), written in the transaction that
// decides them, so an address is never given twice, even across
// restarts. Fresh addresses are taken after the last one handed out
// (wrapping around), so a released address is not reused at once.
type ipam struct {
	db   *bolt.DB
	next map[string]netip.Addr // network ID -> where the next search starts
}

var errAddrInUse = errdefs.Newf(errdefs.Conflict, "Address already in use")

// allocate returns an address of r for owner: want if valid, else the
// next free one of r.IPRange (or r.Subnet). The network and broadcast
// addresses and the gateway are never handed out.
func (m *ipam) allocate(r *Record, want netip.Addr, owner string) (netip.Addr, error) {
	var got netip.Addr
	err := m.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIPAM).Bucket([]byte(r.ID))
		if b == nil {
			var err error
			if b, err = tx.Bucket(bucketIPAM).CreateBucket([]byte(r.ID)); err != nil {
				return err
			}
		}
		if want.IsValid() {
			if !r.Subnet.Contains(want) {
				return errdefs.Newf(errdefs.InvalidArgument, "no configured subnet or ip-range contain the IP address %s", want)
			}
			if want == r.Gateway || want == r.Subnet.Masked().Addr() || want == lastAddr(r.Subnet) {
				return errAddrInUse
			}
			if cur := b.Get(want.AsSlice()); cur != nil && string(cur) != owner {
				return errAddrInUse
			}
			got = want
			return b.Put(want.AsSlice(), []byte(owner))
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
			if a != r.Gateway && a != r.Subnet.Masked().Addr() && a != lastAddr(r.Subnet) && b.Get(a.AsSlice()) == nil {
				got = a
				if n := a.Next(); rng.Contains(n) {
					m.next[r.ID] = n
				} else {
					m.next[r.ID] = first
				}
				return b.Put(a.AsSlice(), []byte(owner))
			}
			if a == last {
				a = first
			} else {
				a = a.Next()
			}
			if a == start {
				return errdefs.Newf(errdefs.Unavailable, "no available IPv4 addresses on network %s (%s)", r.Name, rng)
			}
		}
	})
	return got, err
}

// release frees addr of network id if owner holds it.
func (m *ipam) release(id string, addr netip.Addr, owner string) error {
	if !addr.IsValid() {
		return nil
	}
	return m.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIPAM).Bucket([]byte(id))
		if b == nil {
			return nil
		}
		if cur := b.Get(addr.AsSlice()); cur != nil && string(cur) == owner {
			return b.Delete(addr.AsSlice())
		}
		return nil
	})
}

// allocations lists every allocation: network ID -> address -> owner.
func (m *ipam) allocations() (map[string]map[netip.Addr]string, error) {
	out := map[string]map[netip.Addr]string{}
	err := m.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIPAM).ForEachBucket(func(k []byte) error {
			nb := tx.Bucket(bucketIPAM).Bucket(k)
			m := map[netip.Addr]string{}
			out[string(k)] = m
			return nb.ForEach(func(a, owner []byte) error {
				if addr, ok := netip.AddrFromSlice(a); ok {
					m[addr] = string(owner)
				}
				return nil
			})
		})
	})
	return out, err
}

// releaseUnless frees every allocation whose owner keep rejects (after a
// restart: addresses of containers that no longer run).
func (m *ipam) releaseUnless(keep func(netID string, addr netip.Addr, owner string) bool) error {
	return m.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketIPAM).ForEachBucket(func(k []byte) error {
			nb := tx.Bucket(bucketIPAM).Bucket(k)
			var drop [][]byte
			_ = nb.ForEach(func(a, owner []byte) error {
				addr, _ := netip.AddrFromSlice(a)
				if !keep(string(k), addr, string(owner)) {
					drop = append(drop, append([]byte{}, a...))
				}
				return nil
			})
			for _, a := range drop {
				if err := nb.Delete(a); err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// lastAddr is the broadcast address of p.
func lastAddr(p netip.Prefix) netip.Addr {
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
