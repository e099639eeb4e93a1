package compose

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestConvertGolden converts every replica of testdata/convert/compose.yaml
// into its POST /containers/create body and compares it with the golden
// JSON (the testdata directory's absolute path shown as $DIR).
func TestConvertGolden(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "convert"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Load(context.Background(), LoadOptions{
		WorkingDir: dir, ConfigPaths: []string{filepath.Join(dir, "compose.yaml")},
		Environ: []string{"INHERITED=from-os", "API_KEY=k"}, Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		s.CustomLabels[LabelImage] = "sha256:0000"
		opts, err := ContainerCreateOptions(p, s, CreateOptions{Number: 1, UseNetworkAliases: true})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body := struct {
			Name             string
			Config           any
			HostConfig       any
			NetworkingConfig any
		}{opts.Name, opts.Config, opts.HostConfig, opts.NetworkingConfig}
		b, err := json.MarshalIndent(body, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(dir), []byte("$DIR"))
		// The config hash covers bind sources, absolute paths that depend
		// on where the checkout is: TestHashesMatchDockerCompose checks the
		// algorithm.
		b = configHashRE.ReplaceAll(b, []byte(`"com.docker.compose.config-hash": "$$HASH"`))
		b = append(b, '\n')
		golden := filepath.Join("testdata", "convert", name+".golden")
		if *update {
			if err := os.WriteFile(golden, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s: create body differs from %s:\n%s", name, golden, b)
		}
	}
}

// TestConvertSemantics spells out the conversions the goldens hold, so a
// regenerated golden cannot silently lose them.
var configHashRE = regexp.MustCompile(`"com\.docker\.compose\.config-hash": "[0-9a-f]{64}"`)

func TestConvertSemantics(t *testing.T) {
	dir, _ := filepath.Abs(filepath.Join("testdata", "convert"))
	p, err := Load(context.Background(), LoadOptions{WorkingDir: dir, ConfigPaths: []string{filepath.Join(dir, "compose.yaml")}, Environ: []string{"API_KEY=k"}})
	if err != nil {
		t.Fatal(err)
	}
	api := p.Services["api"]
	o, err := ContainerCreateOptions(p, api, CreateOptions{Number: 3, UseNetworkAliases: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg, hc := o.Config, o.HostConfig
	check := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("%s", what)
		}
	}
	check("name", o.Name == "golden-api-3")
	check("labels", cfg.Labels[LabelProject] == "golden" && cfg.Labels[LabelService] == "api" &&
		cfg.Labels[LabelContainerNumber] == "3" && cfg.Labels[LabelOneoff] == "False" &&
		cfg.Labels["com.example.team"] == "core" && cfg.Labels[LabelDependsOn] == "db:service_healthy:true" &&
		len(cfg.Labels[LabelConfigHash]) == 64)
	check("env_file merged", strings.Contains(strings.Join(cfg.Env, " "), "FROM_ENV_FILE=1"))
	check("healthcheck", cfg.Healthcheck != nil && cfg.Healthcheck.Retries == 3 && cfg.Healthcheck.Test[0] == "CMD")
	check("stop timeout", cfg.StopTimeout != nil && *cfg.StopTimeout == 20)
	check("restart", hc.RestartPolicy.Name == "on-failure" && hc.RestartPolicy.MaximumRetryCount == 3)
	check("limits", hc.Memory == 512<<20 && hc.NanoCPUs == 1.5e9 && *hc.PidsLimit == 100 && hc.MemoryReservation == 128<<20)
	check("init", hc.Init != nil && *hc.Init)
	check("read_only", hc.ReadonlyRootfs)
	check("unconfined system paths", hc.MaskedPaths != nil && len(hc.MaskedPaths) == 0)
	check("seccomp inlined", contains(hc.SecurityOpt, `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`))
	check("bind as Binds", len(hc.Binds) == 1 && hc.Binds[0] == dir+"/conf:/etc/api:ro")
	var targets []string
	for _, m := range hc.Mounts {
		targets = append(targets, string(m.Type)+":"+m.Source+":"+m.Target)
	}
	for _, want := range []string{
		"volume:golden_data:/var/lib/api", "volume::/var/cache", "tmpfs::/scratch",
		"bind:" + dir + "/logs:/logs", "bind:" + dir + "/secrets/db_password.txt:/run/secrets/db_password",
		"bind:" + dir + "/app.conf:/app_config", "bind:" + dir + "/app.conf:/etc/app.conf",
	} {
		check("mount "+want, contains(targets, want))
	}
	// api_key comes from the environment: copied in after create, not mounted.
	for _, m := range hc.Mounts {
		check("env secret not mounted", !strings.Contains(m.Target, "key"))
	}
	check("network mode is the primary (highest priority) network", hc.NetworkMode == "golden_front")
	front := o.NetworkingConfig.EndpointsConfig["golden_front"]
	check("aliases", front != nil && strings.Join(front.Aliases, ",") == "golden-api-3,api,api.front")
	check("static address", front != nil && front.IPAMConfig.IPv4Address.String() == "172.28.0.10")
	check("second network", o.NetworkingConfig.EndpointsConfig["golden_back"] != nil)

	db := p.Services["db"]
	o, err = ContainerCreateOptions(p, db, CreateOptions{Number: 1})
	if err != nil {
		t.Fatal(err)
	}
	check("network_mode none", o.HostConfig.NetworkMode == "none" && o.NetworkingConfig == nil)
	check("healthcheck disabled", o.Config.Healthcheck != nil && o.Config.Healthcheck.Test[0] == "NONE")

	job := p.Services["job"]
	o, err = ContainerCreateOptions(p, job, CreateOptions{Name: "golden-job-run-abc", Oneoff: true, Slug: "abc", AutoRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	check("built image name", o.Config.Image == "golden-job")
	check("deploy restart policy", o.HostConfig.RestartPolicy.Name == "always" && o.HostConfig.RestartPolicy.MaximumRetryCount == 5)
	check("one-off labels", o.Config.Labels[LabelOneoff] == "True" && o.Config.Labels[LabelSlug] == "abc" && o.HostConfig.AutoRemove)
}

// TestConvertInheritsAnonymousVolumes: a recreated container keeps the
// anonymous volumes (service and image ones) of the container it
// replaces, but not where the service now mounts something else.
func TestConvertInheritsAnonymousVolumes(t *testing.T) {
	p := &types.Project{Name: "p", Volumes: types.Volumes{"named": {Name: "p_named"}}}
	s := types.ServiceConfig{Name: "db"}
	s.Image = "busybox"
	s.NetworkMode = "none"
	s.Volumes = []types.ServiceVolumeConfig{
		{Type: types.VolumeTypeVolume, Target: "/anon"},
		{Type: types.VolumeTypeVolume, Source: "named", Target: "/named"},
	}
	old := []container.MountPoint{
		{Type: mount.TypeVolume, Name: "abc", Destination: "/anon", RW: true},
		{Type: mount.TypeVolume, Name: "imgvol", Destination: "/var/lib/data", RW: true},
		{Type: mount.TypeVolume, Name: "stale", Destination: "/named", RW: true},
		{Type: mount.TypeBind, Source: "/host", Destination: "/bind", RW: true},
	}
	o, err := ContainerCreateOptions(p, s, CreateOptions{Number: 1, Inherit: old})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range o.HostConfig.Mounts {
		got = append(got, string(m.Type)+":"+m.Source+":"+m.Target)
	}
	want := "volume:abc:/anon volume:p_named:/named volume:imgvol:/var/lib/data"
	if strings.Join(got, " ") != want {
		t.Fatalf("mounts %v, want %s", got, want)
	}
}
