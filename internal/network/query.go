package network

import (
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/errdefs"
)

// inspect renders r in Docker's shape; mu must be held.
func (s *Service) inspect(r *Record, withContainers bool) network.Inspect {
	out := network.Inspect{Network: network.Network{
		Name: r.Name, ID: r.ID, Created: r.Created, Scope: "local", Driver: r.Driver,
		EnableIPv4: true, Internal: r.Internal, Attachable: r.Attachable,
		IPAM:    network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
		Options: map[string]string{}, Labels: map[string]string{},
	}}
	for k, v := range r.Options {
		out.Options[k] = v
	}
	for k, v := range r.Labels {
		out.Labels[k] = v
	}
	if r.Subnet.IsValid() {
		c := network.IPAMConfig{Subnet: r.Subnet, Gateway: r.Gateway}
		if r.IPRange.IsValid() {
			c.IPRange = r.IPRange
		}
		out.IPAM.Config = append(out.IPAM.Config, c)
	}
	if r.Subnet6.IsValid() {
		out.EnableIPv6 = true
		out.IPAM.Config = append(out.IPAM.Config, network.IPAMConfig{Subnet: r.Subnet6, Gateway: r.Gateway6})
	}
	if r.Driver == "host" || r.Driver == "null" {
		out.EnableIPv4 = false
	}
	if withContainers {
		out.Containers = s.endpointsOf(r.ID)
	}
	return out
}

// Inspect is GET /networks/{id}.
func (s *Service) Inspect(ctx context.Context, ref string) (network.Inspect, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.lookup(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	return s.inspect(r, true), nil
}

var listFilters = map[string]bool{"dangling": true, "driver": true, "id": true, "label": true, "name": true, "scope": true, "type": true}

// List is GET /networks with Docker's filters (dangling, driver, id,
// label, name, scope, type), sorted by name.
func (s *Service) List(ctx context.Context, filters map[string][]string) ([]network.Summary, error) {
	for k := range filters {
		if !listFilters[k] {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid filter '%s'", k)
		}
	}
	for _, v := range filters["type"] {
		if v != "custom" && v != "builtin" {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid filter: 'type'='%s'", v)
		}
	}
	for _, v := range filters["dangling"] {
		if v != "true" && v != "false" && v != "1" && v != "0" {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid filter 'dangling=%s'", v)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []network.Summary{}
	for _, r := range s.nets {
		if !s.matches(r, filters) {
			continue
		}
		out = append(out, network.Summary{Network: s.inspect(r, false).Network})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func anyOf(vals []string, fn func(string) bool) bool {
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if fn(v) {
			return true
		}
	}
	return false
}

func (s *Service) matches(r *Record, f map[string][]string) bool {
	return anyOf(f["driver"], func(v string) bool { return v == r.Driver }) &&
		anyOf(f["id"], func(v string) bool { return strings.HasPrefix(r.ID, v) }) &&
		anyOf(f["name"], func(v string) bool { return strings.Contains(r.Name, v) }) &&
		anyOf(f["scope"], func(v string) bool { return v == "local" }) &&
		anyOf(f["type"], func(v string) bool { return (v == "builtin") == r.predefined() }) &&
		anyOf(f["dangling"], func(v string) bool {
			dangling := !r.predefined() && s.endpointCount(r.ID) == 0
			return (v == "true" || v == "1") == dangling
		}) &&
		allLabels(f["label"], r.Labels)
}

func allLabels(want []string, have map[string]string) bool {
	for _, w := range want {
		k, v, withValue := strings.Cut(w, "=")
		hv, ok := have[k]
		if !ok || (withValue && hv != v) {
			return false
		}
	}
	return true
}

// Prune removes the user-defined networks no running container uses
// (filters: label, label!, until) and returns their names.
func (s *Service) Prune(ctx context.Context, filters map[string][]string, inUse func(id string) bool) ([]string, error) {
	for k := range filters {
		if k != "label" && k != "label!" && k != "until" {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "invalid filter '%s'", k)
		}
	}
	var until time.Time
	for _, v := range filters["until"] {
		t, err := parseUntil(v)
		if err != nil {
			return nil, err
		}
		until = t
	}
	s.mu.Lock()
	var cands []*Record
	for _, r := range s.nets {
		if r.predefined() || s.endpointCount(r.ID) > 0 || !allLabels(filters["label"], r.Labels) {
			continue
		}
		if !until.IsZero() && !r.Created.Before(until) {
			continue
		}
		skip := false
		for _, l := range filters["label!"] {
			if allLabels([]string{l}, r.Labels) {
				skip = true
			}
		}
		if !skip {
			cands = append(cands, r)
		}
	}
	s.mu.Unlock()
	var removed []string
	for _, r := range cands {
		if inUse != nil && inUse(r.ID) {
			continue
		}
		if err := s.Remove(ctx, r.ID); err == nil {
			removed = append(removed, r.Name)
		}
	}
	sort.Strings(removed)
	return removed, nil
}

// parseUntil accepts a Go duration ("10m": that long ago), an RFC 3339
// time or a Unix timestamp (seconds, optionally with a fraction), as
// Docker's until filter.
func parseUntil(v string) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, errdefs.Newf(errdefs.InvalidArgument, "invalid filter 'until=%s'", v)
}
