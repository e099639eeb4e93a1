package compose

import (
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

func strPtr(s string) *string { return &s }

// dockerComposeFixture is the service Docker Compose v2's own hash test
// uses (pkg/compose/hash_test.go, richServiceFixture); the expected values
// below are the goldens that test pins, i.e. what Docker Compose records in
// com.docker.compose.config-hash for this service.
func dockerComposeFixture() types.ServiceConfig {
	replicas := 3
	s := types.ServiceConfig{Name: "web", Restart: types.RestartPolicyAlways}
	s.Image = "nginx:latest"
	s.Command = types.ShellCommand{"nginx", "-g", "daemon off;"}
	s.User = "nobody"
	s.Tty = true
	s.StdinOpen = true
	s.Environment = types.MappingWithEquals{"A": strPtr("1"), "B": nil}
	s.Labels = types.Labels{"com.example": "v"}
	s.Annotations = types.Mapping{"note": "x"}
	s.CapAdd = []string{"NET_ADMIN"}
	s.ExtraHosts = types.HostsList{"alpha": []string{"10.0.0.1"}}
	s.Deploy = &types.DeployConfig{Replicas: &replicas}
	s.Ports = []types.ServicePortConfig{{Target: 80, Published: "8080", Protocol: "tcp"}}
	s.HealthCheck = &types.HealthCheckConfig{Test: types.HealthCheckTest{"CMD", "true"}}
	s.Volumes = []types.ServiceVolumeConfig{{Type: types.VolumeTypeVolume, Source: "data", Target: "/data"}}
	s.Networks = map[string]*types.ServiceNetworkConfig{"default": nil}
	return s
}

func TestHashesMatchDockerCompose(t *testing.T) {
	svc := dockerComposeFixture()
	got, err := ServiceHash(svc)
	if err != nil {
		t.Fatal(err)
	}
	if want := "75bc312132c71fac4971d123202631b6978ac9d796336621af744d46611b42a2"; got != want {
		t.Errorf("service hash %s, Docker Compose computes %s", got, want)
	}
	nw, err := NetworkHash(types.NetworkConfig{Name: "proj_default", Driver: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "eeef29d8955b1d4e9382986e213c80789065d989d7a6d035163e0180159aaac0"; nw != want {
		t.Errorf("network hash %s, Docker Compose computes %s", nw, want)
	}
	vol, err := VolumeHash(types.VolumeConfig{Name: "proj_data"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "dd3953f0ff20e0f9044086b0483690f2cc2b4653e57aaaa5fa8ea2735da61000"; vol != want {
		t.Errorf("volume hash %s, Docker Compose computes %s", vol, want)
	}
}

func TestServiceHashIgnoresWhatDoesNotRecreate(t *testing.T) {
	base := dockerComposeFixture()
	h0, _ := ServiceHash(base)
	same := []func(*types.ServiceConfig){
		func(s *types.ServiceConfig) { n := 5; s.Scale = &n },
		func(s *types.ServiceConfig) { n := 7; s.Deploy = &types.DeployConfig{Replicas: &n} },
		func(s *types.ServiceConfig) { s.Build = &types.BuildConfig{Context: "."} },
		func(s *types.ServiceConfig) { s.PullPolicy = types.PullPolicyAlways },
		func(s *types.ServiceConfig) {
			s.DependsOn = types.DependsOnConfig{"db": {Condition: types.ServiceConditionHealthy}}
		},
		func(s *types.ServiceConfig) { s.Profiles = []string{"x"} },
		func(s *types.ServiceConfig) { s.CustomLabels = types.Labels{LabelImage: "sha256:1"} },
	}
	for i, mut := range same {
		s := dockerComposeFixture()
		mut(&s)
		if h, _ := ServiceHash(s); h != h0 {
			t.Errorf("change %d moved the hash", i)
		}
	}
	// The caller's deploy config is not modified.
	if *base.Deploy.Replicas != 3 {
		t.Errorf("ServiceHash cleared the caller's replicas")
	}
	differ := []func(*types.ServiceConfig){
		func(s *types.ServiceConfig) { s.Image = "nginx:1" },
		func(s *types.ServiceConfig) { s.Command = types.ShellCommand{"true"} },
		func(s *types.ServiceConfig) { s.Environment["A"] = strPtr("2") },
		func(s *types.ServiceConfig) { s.Labels = types.Labels{"com.example": "w"} },
		func(s *types.ServiceConfig) { s.Umask = new(uint32) }, // a key outside the historical list
	}
	for i, mut := range differ {
		s := dockerComposeFixture()
		mut(&s)
		if h, _ := ServiceHash(s); h == h0 {
			t.Errorf("change %d did not move the hash", i)
		}
	}
}

func TestOrderKeys(t *testing.T) {
	got, err := orderKeys([]byte(`{"zz":2,"image":"i","aa":1,"profiles":["p"]}`), serviceHashKeyOrder)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"profiles":["p"],"image":"i","aa":1,"zz":2}`; string(got) != want {
		t.Fatalf("got %s want %s", got, want)
	}
}

func TestNames(t *testing.T) {
	s := types.ServiceConfig{Name: "web"}
	if got := ContainerName("proj", s, 2); got != "proj-web-2" {
		t.Errorf("container name %q", got)
	}
	if got := OneoffContainerName("proj", "web", "0123456789abcdef"); got != "proj-web-run-0123456789ab" {
		t.Errorf("one-off name %q", got)
	}
	if got := ImageName("proj", s); got != "proj-web" {
		t.Errorf("built image name %q", got)
	}
	s.ContainerName = "custom"
	s.Image = "busybox"
	if ContainerName("proj", s, 1) != "custom" || ImageName("proj", s) != "busybox" {
		t.Errorf("custom names ignored")
	}
}

func TestDependsOnLabel(t *testing.T) {
	s := types.ServiceConfig{Name: "api"}
	s.DependsOn = types.DependsOnConfig{
		"db":    {Condition: types.ServiceConditionHealthy, Restart: true},
		"cache": {Condition: types.ServiceConditionStarted},
	}
	if got := dependsOnLabel(s); got != "cache:service_started:false,db:service_healthy:true" {
		t.Fatalf("depends_on label %q", got)
	}
}
