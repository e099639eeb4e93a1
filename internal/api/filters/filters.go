// Package filters parses the Engine API's "filters" query parameter and
// answers the questions list and prune handlers ask of it. It is separate
// from package api so the daemon's services, which receive filters through
// the router backends, can import it without the HTTP server.
//
// The wire form is JSON map[string]map[string]bool ({"label":{"a=b":true}});
// the legacy map[string][]string form ({"label":["a=b"]}) is accepted too.
package filters

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Args is a set of filter values per key. The zero value is empty and
// usable.
type Args struct {
	m map[string]map[string]bool
}

// KeyValue is one filter term.
type KeyValue struct{ Key, Value string }

// Arg makes a KeyValue.
func Arg(key, value string) KeyValue { return KeyValue{key, value} }

// NewArgs returns Args holding kvs.
func NewArgs(kvs ...KeyValue) Args {
	a := Args{m: map[string]map[string]bool{}}
	for _, kv := range kvs {
		a.Add(kv.Key, kv.Value)
	}
	return a
}

// FromJSON parses the filters parameter; "" is no filters. Malformed input
// is an invalid argument.
func FromJSON(s string) (Args, error) {
	a := NewArgs()
	if strings.TrimSpace(s) == "" {
		return a, nil
	}
	var cur map[string]map[string]bool
	if err := json.Unmarshal([]byte(s), &cur); err == nil {
		for k, vs := range cur {
			for v := range vs {
				a.Add(k, v)
			}
			if _, ok := a.m[k]; !ok {
				a.m[k] = map[string]bool{}
			}
		}
		return a, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(s), &legacy); err != nil {
		return a, errdefs.Newf(errdefs.InvalidArgument, "invalid filter: %w", err)
	}
	for k, vs := range legacy {
		for _, v := range vs {
			a.Add(k, v)
		}
	}
	return a, nil
}

// ToJSON is the current wire form ("" for no filters).
func (a Args) ToJSON() string {
	if a.Len() == 0 {
		return ""
	}
	b, _ := json.Marshal(a.m)
	return string(b)
}

// MarshalJSON encodes the current wire form.
func (a Args) MarshalJSON() ([]byte, error) {
	if a.m == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(a.m)
}

// Add adds value under key.
func (a *Args) Add(key, value string) {
	if a.m == nil {
		a.m = map[string]map[string]bool{}
	}
	if a.m[key] == nil {
		a.m[key] = map[string]bool{}
	}
	a.m[key][value] = true
}

// Len is the number of keys.
func (a Args) Len() int { return len(a.m) }

// Keys are the keys, sorted.
func (a Args) Keys() []string {
	ks := make([]string, 0, len(a.m))
	for k := range a.m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Contains reports whether key is present.
func (a Args) Contains(key string) bool {
	_, ok := a.m[key]
	return ok
}

// Get returns the values of key, sorted.
func (a Args) Get(key string) []string {
	vs := make([]string, 0, len(a.m[key]))
	for v := range a.m[key] {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	return vs
}

// Validate refuses keys not in accepted, as dockerd: "invalid filter 'k'".
func (a Args) Validate(accepted ...string) error {
	ok := map[string]bool{}
	for _, k := range accepted {
		ok[k] = true
	}
	for _, k := range a.Keys() {
		if !ok[k] {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid filter '%s'", k)
		}
	}
	return nil
}

// ExactMatch reports whether value is one of key's values, or key is
// absent (no constraint).
func (a Args) ExactMatch(key, value string) bool {
	vs, ok := a.m[key]
	if !ok || len(vs) == 0 {
		return true
	}
	return vs[value]
}

// FuzzyMatch reports whether one of key's values is a prefix of value, or
// key is absent (dockerd uses it for IDs).
func (a Args) FuzzyMatch(key, value string) bool {
	vs, ok := a.m[key]
	if !ok || len(vs) == 0 {
		return true
	}
	for v := range vs {
		if strings.HasPrefix(value, v) {
			return true
		}
	}
	return false
}

// Match reports whether one of key's values, read as a regular expression,
// matches value (name filters), or key is absent. An invalid expression
// matches nothing.
func (a Args) Match(key, value string) bool {
	vs, ok := a.m[key]
	if !ok || len(vs) == 0 {
		return true
	}
	for v := range vs {
		if re, err := regexp.Compile(v); err == nil && re.MatchString(value) {
			return true
		}
	}
	return false
}

// MatchKVList reports whether labels satisfy every "key" or "key=value"
// (also "key!=value") term under key, or key is absent.
func (a Args) MatchKVList(key string, labels map[string]string) bool {
	vs, ok := a.m[key]
	if !ok || len(vs) == 0 {
		return true
	}
	for term := range vs {
		if k, v, neg := strings.Cut(term, "!="); neg {
			if got, has := labels[k]; has && got == v {
				return false
			}
			continue
		}
		k, v, hasValue := strings.Cut(term, "=")
		got, has := labels[k]
		if !has || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// GetBoolOrDefault reads a boolean key ("true"/"1", "false"/"0"); def when
// absent. Several or other values are invalid.
func (a Args) GetBoolOrDefault(key string, def bool) (bool, error) {
	vs := a.Get(key)
	if len(vs) == 0 {
		return def, nil
	}
	if len(vs) > 1 {
		return def, errdefs.Newf(errdefs.InvalidArgument, "invalid filter '%s': only one value is allowed", key)
	}
	switch strings.ToLower(vs[0]) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return def, errdefs.Newf(errdefs.InvalidArgument, "invalid filter '%s=%s'", key, vs[0])
}

// String is the JSON form, for logs and test messages.
func (a Args) String() string { return fmt.Sprint(a.ToJSON()) }
