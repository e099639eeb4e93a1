package build_test

import (
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/api/apitest"
	buildrouter "github.com/berth-dev/berth/internal/api/router/build"
)

func TestBuildCacheOptions(t *testing.T) {
	f := &fake{}
	h := apitest.NewServer(t, buildrouter.New(f))
	q := url.Values{}
	q.Set("cachefrom", `["app:1","type=registry,ref=r/c:1"]`)
	q.Set("cacheto", `["type=local,dest=/d"]`)
	w := apitest.Do(t, h, "POST", "/build?"+q.Encode(), strings.NewReader("ctx"),
		buildrouter.CacheToHeader, `["type=registry,ref=r/c:1,mode=max"]`)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if !reflect.DeepEqual(f.got.CacheFrom, []string{"app:1", "type=registry,ref=r/c:1"}) ||
		!reflect.DeepEqual(f.got.CacheTo, []string{"type=local,dest=/d", "type=registry,ref=r/c:1,mode=max"}) {
		t.Fatalf("from %q to %q", f.got.CacheFrom, f.got.CacheTo)
	}
	for _, bad := range []string{"cachefrom=app:1", "cacheto=type=local"} {
		if w := apitest.Do(t, h, "POST", "/build?"+bad, strings.NewReader("ctx")); w.Code != 400 {
			t.Errorf("%s: %d, want 400", bad, w.Code)
		}
	}
}
