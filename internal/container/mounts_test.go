package container

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	bolt "go.etcd.io/bbolt"

	"github.com/berth-dev/berth/internal/api/filters"
	"github.com/berth-dev/berth/internal/volume"
)

func filtersDangling(d bool) filters.Args {
	v := "false"
	if d {
		v = "true"
	}
	return filters.NewArgs(filters.Arg("dangling", v))
}

// mountService is a Service with only what resolveMounts needs: a real
// volume service on a temp root and the container index.
func mountService(t *testing.T) (*Service, *volume.Service) {
	t.Helper()
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "m.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	vs, err := volume.New(volume.Config{Root: root, DB: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vs.Close(); db.Close() })
	return &Service{cfg: Config{Volumes: vs}, log: slog.Default(), byID: map[string]*Container{}, names: map[string]string{}}, vs
}

func TestResolveMountsShapes(t *testing.T) {
	s, vs := mountService(t)
	ctx := context.Background()
	host := t.TempDir()
	// A container whose mounts --volumes-from inherits.
	src := Record{ID: strings.Repeat("a", 64), Name: "/src", Config: &container.Config{Volumes: map[string]struct{}{"/shared": {}}},
		Host: &container.HostConfig{Binds: []string{host + ":/hostdir:ro"}}}
	if _, err := s.resolveMounts(ctx, &src); err != nil {
		t.Fatal(err)
	}
	if len(src.MountPoints) != 2 || src.MountPoints[1].Destination != "/shared" {
		t.Fatalf("source mounts %+v", src.MountPoints)
	}
	s.byID[src.ID] = newContainer(src)
	s.names[src.Name] = src.ID

	r := Record{ID: strings.Repeat("b", 64), Config: &container.Config{Volumes: map[string]struct{}{
		"/img": {}, "/named": {}, "/tmp": {}, "/ro:ro": {},
	}}, Host: &container.HostConfig{
		VolumesFrom: []string{"src:rw"},
		Binds:       []string{"named:/named:nocopy", host + ":/bind:rshared", "/missing/made/at/start:/later"},
		Mounts: []mount.Mount{
			{Type: mount.TypeVolume, Source: "mv", Target: "/mv", ReadOnly: true, VolumeOptions: &mount.VolumeOptions{Subpath: "a/b", Labels: map[string]string{"k": "v"}}},
			{Type: mount.TypeBind, Source: host, Target: "/mb"},
			{Type: mount.TypeTmpfs, Target: "/mt"},
		},
		Tmpfs: map[string]string{"/tmp": ""},
	}}
	put, err := s.resolveMounts(ctx, &r)
	if err != nil {
		t.Fatal(err)
	}
	if put == nil {
		t.Fatal("new anonymous volumes need their records written with the container's")
	}
	got := map[string]container.MountPoint{}
	for _, m := range apiMounts(r.MountPoints) {
		got[m.Destination] = m
	}
	vol := func(name, mode string, rw bool) container.MountPoint {
		return container.MountPoint{Type: mount.TypeVolume, Name: name, Source: vs.Path(name), Driver: "local", Mode: mode, RW: rw}
	}
	anonName := func(dst string) string {
		n := got[dst].Name
		if len(n) != 64 {
			t.Errorf("%s: anonymous volume name %q", dst, n)
		}
		return n
	}
	want := map[string]container.MountPoint{
		// Docker's shapes: -v name → Mode "z"; image VOLUME → Mode "";
		// binds → Propagation rprivate unless given; --mount volume "z".
		"/named":   vol("named", "nocopy", true),
		"/img":     vol(anonName("/img"), "", true),
		"/ro":      vol(anonName("/ro"), "ro", false),
		"/shared":  vol(src.MountPoints[1].Name, "rw", true),
		"/hostdir": {Type: mount.TypeBind, Source: host, Destination: "/hostdir", Mode: "rw", RW: true, Propagation: "rprivate"},
		"/bind":    {Type: mount.TypeBind, Source: host, Destination: "/bind", Mode: "rshared", RW: true, Propagation: "rshared"},
		"/later":   {Type: mount.TypeBind, Source: "/missing/made/at/start", Destination: "/later", RW: true, Propagation: "rprivate"},
		"/mv":      vol("mv", "z", false),
		"/mb":      {Type: mount.TypeBind, Source: host, Destination: "/mb", RW: true, Propagation: "rprivate"},
		"/mt":      {Type: mount.TypeTmpfs, Destination: "/mt", RW: true},
	}
	for dst, w := range want {
		w.Destination = dst
		if got[dst] != w {
			t.Errorf("%s:\n got %+v\nwant %+v", dst, got[dst], w)
		}
	}
	if _, ok := got["/tmp"]; ok || len(got) != len(want) {
		t.Errorf("mounts %v (an image volume under --tmpfs must give way)", got)
	}
	for _, mp := range r.MountPoints {
		switch mp.Destination {
		case "/named":
			if mp.CopyUp || !mp.Named {
				t.Errorf("nocopy named: %+v", mp)
			}
		case "/img", "/ro":
			if !mp.CopyUp || mp.Named {
				t.Errorf("image volume: %+v", mp)
			}
		case "/mv":
			if mp.Subpath != "a/b" || mp.CopyUp {
				t.Errorf("subpath volume: %+v", mp)
			}
		case "/shared", "/hostdir":
			if !mp.Inherited {
				t.Errorf("volumes-from: %+v", mp)
			}
		case "/later":
			if !mp.CreateSource {
				t.Errorf("-v bind: %+v", mp)
			}
		}
	}
	if in, _ := vs.Get(ctx, "mv"); in == nil || in.Labels["k"] != "v" {
		t.Errorf("volume-label not applied: %+v", in)
	}
}

func TestResolveMountsErrors(t *testing.T) {
	s, vs := mountService(t)
	ctx := context.Background()
	for _, tc := range []struct {
		binds  []string
		mounts []mount.Mount
		from   []string
		want   string
	}{
		{binds: []string{"aa:/x", "bb:/x"}, want: "Duplicate mount point: /x"},
		{binds: []string{"aa:/x"}, mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/x"}}, want: "Duplicate mount point"},
		{binds: []string{"../etc:/x"}, want: "includes invalid characters"},
		{binds: []string{"a:/x"}, want: "volume name is too short"},
		{binds: []string{"aa:rel"}, want: "mount path must be absolute"},
		{binds: []string{"aa:/x:bogus"}, want: "invalid mode: bogus"},
		{binds: []string{"aa:/x:ro,rw"}, want: "invalid mode"},
		{binds: []string{"aa:/"}, want: "destination can't be '/'"},
		{mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/no/such/dir", Target: "/x"}}, want: "bind source path does not exist: /no/such/dir"},
		{mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "v1", Target: "/x", VolumeOptions: &mount.VolumeOptions{Subpath: "../up"}}}, want: "subpath must be a relative path"},
		{mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "v1", Target: "/x", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: "nfsplugin"}}}}, want: "plugin \"nfsplugin\" not found"},
		{mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "v1", Target: "/x", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Options: map[string]string{"nope": "1"}}}}}, want: "invalid option"},
		{mounts: []mount.Mount{{Type: "image", Source: "img", Target: "/x"}}, want: "not supported"},
		{from: []string{"ghost"}, want: "No such container: ghost"},
		{from: []string{"ghost:rx"}, want: "invalid mode for volumes-from"},
	} {
		r := Record{ID: strings.Repeat("c", 64), Config: &container.Config{Volumes: map[string]struct{}{"/anon": {}}},
			Host: &container.HostConfig{Binds: tc.binds, Mounts: tc.mounts, VolumesFrom: tc.from}}
		if _, err := s.resolveMounts(ctx, &r); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v %v: %v, want %q", tc.binds, tc.mounts, tc.from, err, tc.want)
		}
		if len(r.MountPoints) != 0 {
			t.Errorf("%v: mount points recorded on error", tc)
		}
	}
	// Nothing was acquired: no volume is referenced.
	list, _ := vs.List(ctx, filtersDangling(false))
	if len(list) != 0 {
		t.Errorf("volumes referenced after failed resolutions: %v", list)
	}
}
