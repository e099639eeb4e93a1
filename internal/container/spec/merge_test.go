package spec

import (
	"reflect"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispecv1 "github.com/opencontainers/image-spec/specs-go/v1"
)

func imageConfig(c ocispecv1.ImageConfig, ext dockerspec.DockerOCIImageConfigExt) *dockerspec.DockerOCIImageConfig {
	return &dockerspec.DockerOCIImageConfig{ImageConfig: c, DockerOCIImageConfigExt: ext}
}

func TestMergeImageConfig(t *testing.T) {
	img := imageConfig(ocispecv1.ImageConfig{
		User:         "app",
		Env:          []string{"PATH=/image/bin", "LANG=C.UTF-8", "A=image"},
		Entrypoint:   []string{"/entry.sh"},
		Cmd:          []string{"serve", "--flag"},
		WorkingDir:   "/srv",
		Labels:       map[string]string{"a": "image", "b": "image"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		StopSignal:   "SIGQUIT",
	}, dockerspec.DockerOCIImageConfigExt{
		Healthcheck: &dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 3},
		OnBuild:     []string{"RUN false"},
		Shell:       []string{"/bin/bash", "-c"},
	})
	tests := []struct {
		name string
		cfg  container.Config
		want func(c *container.Config)
	}{
		{
			name: "empty container config takes everything",
			want: func(c *container.Config) {
				c.User = "app"
				c.Env = []string{"PATH=/image/bin", "LANG=C.UTF-8", "A=image"}
				c.Entrypoint = []string{"/entry.sh"}
				c.Cmd = []string{"serve", "--flag"}
				c.WorkingDir = "/srv"
				c.Labels = map[string]string{"a": "image", "b": "image"}
				c.ExposedPorts = network.PortSet{network.MustParsePort("80/tcp"): {}, network.MustParsePort("53/udp"): {}}
				c.Volumes = map[string]struct{}{"/data": {}}
				c.StopSignal = "SIGQUIT"
				c.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 3}
				c.Shell = []string{"/bin/bash", "-c"}
			},
		},
		{
			name: "container values win, env merged by key, cmd alone replaces image cmd",
			cfg: container.Config{
				User: "0:0", Env: []string{"A=ctr", "NEW=1"}, Cmd: []string{"sh"}, WorkingDir: "/w",
				Labels: map[string]string{"a": "ctr"}, ExposedPorts: network.PortSet{network.MustParsePort("8080/tcp"): {}},
				Healthcheck: &container.HealthConfig{Timeout: 2 * time.Second}, StopSignal: "SIGTERM",
			},
			want: func(c *container.Config) {
				c.User = "0:0"
				c.Env = []string{"A=ctr", "NEW=1", "PATH=/image/bin", "LANG=C.UTF-8"}
				c.Entrypoint = []string{"/entry.sh"}
				c.Cmd = []string{"sh"}
				c.WorkingDir = "/w"
				c.Labels = map[string]string{"a": "ctr", "b": "image"}
				c.ExposedPorts = network.PortSet{network.MustParsePort("8080/tcp"): {}, network.MustParsePort("80/tcp"): {}, network.MustParsePort("53/udp"): {}}
				c.Volumes = map[string]struct{}{"/data": {}}
				c.StopSignal = "SIGTERM"
				c.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 3}
				c.Shell = []string{"/bin/bash", "-c"}
			},
		},
		{
			name: "entrypoint set drops the image cmd",
			cfg:  container.Config{Entrypoint: []string{"/bin/other"}},
			want: func(c *container.Config) {
				c.User = "app"
				c.Env = []string{"PATH=/image/bin", "LANG=C.UTF-8", "A=image"}
				c.Entrypoint = []string{"/bin/other"}
				c.WorkingDir = "/srv"
				c.Labels = map[string]string{"a": "image", "b": "image"}
				c.ExposedPorts = network.PortSet{network.MustParsePort("80/tcp"): {}, network.MustParsePort("53/udp"): {}}
				c.Volumes = map[string]struct{}{"/data": {}}
				c.StopSignal = "SIGQUIT"
				c.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 3}
				c.Shell = []string{"/bin/bash", "-c"}
			},
		},
		{
			name: "entrypoint reset with --entrypoint \"\" and a cmd",
			cfg:  container.Config{Entrypoint: []string{""}, Cmd: []string{"ls"}},
			want: func(c *container.Config) {
				c.User = "app"
				c.Env = []string{"PATH=/image/bin", "LANG=C.UTF-8", "A=image"}
				c.Entrypoint = []string{}
				c.Cmd = []string{"ls"}
				c.WorkingDir = "/srv"
				c.Labels = map[string]string{"a": "image", "b": "image"}
				c.ExposedPorts = network.PortSet{network.MustParsePort("80/tcp"): {}, network.MustParsePort("53/udp"): {}}
				c.Volumes = map[string]struct{}{"/data": {}}
				c.StopSignal = "SIGQUIT"
				c.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Retries: 3}
				c.Shell = []string{"/bin/bash", "-c"}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.cfg
			if err := MergeImageConfig(&got, img); err != nil {
				t.Fatal(err)
			}
			var want container.Config
			tc.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("merged config:\n got %+v\nwant %+v", got, want)
			}
		})
	}

	// The image's healthcheck is not shared with the container config.
	var c container.Config
	if err := MergeImageConfig(&c, img); err != nil {
		t.Fatal(err)
	}
	c.Healthcheck.Test[1] = "changed"
	if img.Healthcheck.Test[1] != "true" {
		t.Error("merge aliases the image's healthcheck")
	}

	bad := imageConfig(ocispecv1.ImageConfig{ExposedPorts: map[string]struct{}{"eighty/tcp": {}}}, dockerspec.DockerOCIImageConfigExt{})
	if err := MergeImageConfig(&container.Config{}, bad); !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Errorf("bad exposed port: err = %v, want invalid argument", err)
	}
	if err := MergeImageConfig(&container.Config{Cmd: []string{"x"}}, nil); err != nil {
		t.Errorf("nil image: %v", err)
	}
}
