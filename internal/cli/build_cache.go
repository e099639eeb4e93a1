package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
)

// CacheToHeader carries `build --cache-to` to berthd (a berth extension
// of POST /build, the same JSON array as its cacheto query parameter: the
// Go client cannot add query parameters).
const CacheToHeader = "X-Berth-Build-Cache-To"

// cacheOptions sets the --cache-to header; local directories are made
// absolute (berthd writes them, on this host for a local daemon).
func (c *Cli) cacheOptions(to []string) error {
	if len(to) == 0 {
		return nil
	}
	b, err := json.Marshal(absCacheSpecs(to))
	if err != nil {
		return err
	}
	if c.headers == nil {
		c.headers = map[string]string{}
	}
	c.headers[CacheToHeader] = string(b)
	return nil
}

// absCacheSpecs makes the src= and dest= of type=local specs absolute.
func absCacheSpecs(specs []string) []string {
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		if !strings.HasPrefix(s, "type=") {
			out = append(out, s)
			continue
		}
		parts := strings.Split(s, ",")
		for i, kv := range parts {
			k, v, _ := strings.Cut(kv, "=")
			if (k == "src" || k == "dest") && v != "" && !filepath.IsAbs(v) {
				if abs, err := filepath.Abs(v); err == nil {
					parts[i] = k + "=" + abs
				}
			}
		}
		out = append(out, strings.Join(parts, ","))
	}
	return out
}
