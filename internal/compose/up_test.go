package compose

import (
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestMustRecreate(t *testing.T) {
	s := types.ServiceConfig{Name: "web"}
	s.CustomLabels = types.Labels{LabelImage: "sha256:new"}
	hash, _ := ServiceHash(s)
	fresh := container.Summary{State: container.StateRunning, Labels: map[string]string{LabelConfigHash: hash, LabelImage: "sha256:new"},
		NetworkSettings: &container.NetworkSettingsSummary{Networks: map[string]*network.EndpointSettings{"p_default": {}}}}
	cases := []struct {
		name   string
		ctr    container.Summary
		policy string
		nets   []string
		want   bool
	}{
		{"up to date", fresh, RecreateDiverged, []string{"p_default"}, false},
		{"forced", fresh, RecreateForce, nil, true},
		{"config changed", container.Summary{Labels: map[string]string{LabelConfigHash: "old", LabelImage: "sha256:new"}}, RecreateDiverged, nil, true},
		{"config changed, never", container.Summary{Labels: map[string]string{LabelConfigHash: "old"}}, RecreateNever, nil, false},
		{"image changed", container.Summary{Labels: map[string]string{LabelConfigHash: hash, LabelImage: "sha256:old"}}, RecreateDiverged, nil, true},
		{"network missing", fresh, RecreateDiverged, []string{"p_default", "p_back"}, true},
	}
	for _, tc := range cases {
		if got := mustRecreate(s, hash, tc.ctr, tc.policy, tc.nets...); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestOrphans(t *testing.T) {
	p := &types.Project{Name: "p", Services: types.Services{"web": {Name: "web"}}, DisabledServices: types.Services{"debug": {Name: "debug"}}}
	cs := []container.Summary{
		{ID: "1", Labels: map[string]string{LabelService: "web"}},
		{ID: "2", Labels: map[string]string{LabelService: "debug"}},
		{ID: "3", Labels: map[string]string{LabelService: "gone"}},
	}
	o := orphans(p, cs)
	if len(o) != 1 || o[0].ID != "3" {
		t.Fatalf("orphans %v", o)
	}
}

func TestCheckContainerNames(t *testing.T) {
	two := 2
	p := &types.Project{Services: types.Services{"a": {Name: "a", Scale: &two}}}
	a := p.Services["a"]
	a.ContainerName = "fixed"
	p.Services["a"] = a
	if err := checkContainerNames(p); err == nil {
		t.Error("scaled service with container_name accepted")
	}
	a.Scale = nil
	p.Services["a"] = a
	b := types.ServiceConfig{Name: "b"}
	b.ContainerName = "fixed"
	p.Services["b"] = b
	if err := checkContainerNames(p); err == nil {
		t.Error("duplicate container_name accepted")
	}
}

func TestWithRestartDependents(t *testing.T) {
	p := &types.Project{Services: types.Services{
		"db":     {Name: "db"},
		"api":    {Name: "api", WorkloadSpec: types.WorkloadSpec{DependsOn: types.DependsOnConfig{"db": {Restart: true}}}},
		"proxy":  {Name: "proxy", WorkloadSpec: types.WorkloadSpec{DependsOn: types.DependsOnConfig{"api": {Restart: true}}}},
		"worker": {Name: "worker", WorkloadSpec: types.WorkloadSpec{DependsOn: types.DependsOnConfig{"db": {Restart: false}}}},
	}}
	got := map[string]bool{}
	for _, s := range withRestartDependents(p, []string{"db"}) {
		got[s] = true
	}
	if !got["db"] || !got["api"] || !got["proxy"] || got["worker"] || len(got) != 3 {
		t.Fatalf("restart set %v", got)
	}
}
