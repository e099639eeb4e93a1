package build

import (
	"encoding/json"
	"net/http"

	"github.com/berth-dev/berth/internal/errdefs"
)

// CacheToHeader carries `berth build --cache-to` values (a JSON array of
// strings, as the cacheto query parameter): the Go client cannot add
// query parameters of its own to POST /build.
const CacheToHeader = "X-Berth-Build-Cache-To"

// parseCacheOptions reads cachefrom (Docker's: a JSON array of image
// references, to which berth adds BuildKit-style "type=registry,..." and
// "type=local,..." imports) and berth's cacheto (query parameter or
// header; a JSON array of "type=registry,ref=...[,mode=max]" or
// "type=local,dest=DIR" exports).
func parseCacheOptions(r *http.Request, o *Options) error {
	q := r.URL.Query()
	if v := q.Get("cachefrom"); v != "" {
		if err := json.Unmarshal([]byte(v), &o.CacheFrom); err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid cachefrom: %v", err)
		}
	}
	for _, v := range []string{q.Get("cacheto"), r.Header.Get(CacheToHeader)} {
		if v == "" {
			continue
		}
		var to []string
		if err := json.Unmarshal([]byte(v), &to); err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid cacheto: %v", err)
		}
		o.CacheTo = append(o.CacheTo, to...)
	}
	return nil
}
