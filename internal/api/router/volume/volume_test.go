package volume_test

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apivolume "github.com/moby/moby/api/types/volume"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/api/apitest"
	"github.com/berth-dev/berth/internal/api/filters"
	volumerouter "github.com/berth-dev/berth/internal/api/router/volume"
	"github.com/berth-dev/berth/internal/volume"
)

// backend adapts the real volume service (on a temp root) as the daemon
// does.
type backend struct{ s *volume.Service }

func (b backend) VolumeList(ctx context.Context, f filters.Args) ([]apivolume.Volume, error) {
	return b.s.List(ctx, f)
}
func (b backend) VolumeCreate(ctx context.Context, r apivolume.CreateRequest) (*apivolume.Volume, error) {
	return b.s.Create(ctx, volume.CreateOptions{Name: r.Name, Driver: r.Driver, Options: r.DriverOpts, Labels: r.Labels})
}
func (b backend) VolumeInspect(ctx context.Context, name string) (*apivolume.Volume, error) {
	return b.s.Get(ctx, name)
}
func (b backend) VolumeRemove(ctx context.Context, name string, force bool) error {
	return b.s.Remove(ctx, name, force)
}
func (b backend) VolumePrune(ctx context.Context, f filters.Args) (*apivolume.PruneReport, error) {
	return b.s.Prune(ctx, f)
}

func TestVolumeRoutes(t *testing.T) {
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "m.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := volume.New(volume.Config{Root: root, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	h := apitest.NewServer(t, volumerouter.New(backend{s}))
	body := func(v string) *strings.Reader { return strings.NewReader(v) }
	ct := []string{"Content-Type", "application/json"}

	w := apitest.Do(t, h, "POST", "/volumes/create", body(`{"Name":"data","Labels":{"a":"b"}}`), ct...)
	if w.Code != 201 || !strings.Contains(w.Body.String(), `"Mountpoint":"`+filepath.Join(root, "volumes", "data", "_data")+`"`) {
		t.Fatalf("create: %d %s", w.Code, w.Body)
	}
	if w := apitest.Do(t, h, "POST", "/volumes/create", body(`{"Name":"../x"}`), ct...); w.Code != 400 {
		t.Fatalf("bad name: %d %s", w.Code, w.Body)
	}
	if w := apitest.Do(t, h, "POST", "/volumes/create", body(`{"Name":"y1","Driver":"weird"}`), ct...); w.Code != 404 {
		t.Fatalf("bad driver: %d %s", w.Code, w.Body)
	}
	if w := apitest.Do(t, h, "POST", "/volumes/create", body(`{}`), ct...); w.Code != 201 || !strings.Contains(w.Body.String(), `"com.docker.volume.anonymous":""`) {
		t.Fatalf("anonymous: %d %s", w.Code, w.Body)
	}
	w = apitest.Do(t, h, "GET", "/volumes?filters="+url.QueryEscape(`{"label":{"a=b":true}}`), nil)
	var list apivolume.ListResponse
	if err := decode(w.Body.Bytes(), &list); err != nil || w.Code != 200 || len(list.Volumes) != 1 || list.Volumes[0].Name != "data" || !strings.Contains(w.Body.String(), `"Warnings":null`) {
		t.Fatalf("list: %d %s", w.Code, w.Body)
	}
	if w := apitest.Do(t, h, "GET", "/volumes?filters="+url.QueryEscape(`{"nope":{"x":true}}`), nil); w.Code != 400 || apitest.Message(t, w) != "invalid filter 'nope'" {
		t.Fatalf("bad filter: %d %s", w.Code, w.Body)
	}
	if w := apitest.Do(t, h, "GET", "/volumes/ghost", nil); w.Code != 404 || apitest.Message(t, w) != "get ghost: no such volume" {
		t.Fatalf("inspect ghost: %d %s", w.Code, w.Body)
	}
	// Prune: anonymous only for current clients; everything unused for
	// clients older than 1.42.
	w = apitest.Do(t, h, "POST", "/volumes/prune", nil)
	var rep apivolume.PruneReport
	if err := decode(w.Body.Bytes(), &rep); err != nil || len(rep.VolumesDeleted) != 1 {
		t.Fatalf("prune: %d %s", w.Code, w.Body)
	}
	w = apitest.Do(t, h, "POST", "/v1.41/volumes/prune", nil)
	if err := decode(w.Body.Bytes(), &rep); err != nil || len(rep.VolumesDeleted) != 1 || rep.VolumesDeleted[0] != "data" {
		t.Fatalf("prune 1.41: %d %s", w.Code, w.Body)
	}
	if w := apitest.Do(t, h, "DELETE", "/volumes/data", nil); w.Code != 404 {
		t.Fatalf("delete gone: %d", w.Code)
	}
	if w := apitest.Do(t, h, "DELETE", "/volumes/data?force=1", nil); w.Code != 204 {
		t.Fatalf("delete -f gone: %d", w.Code)
	}
}

func decode(b []byte, v any) error { return json.Unmarshal(b, v) }
