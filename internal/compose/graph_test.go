package compose

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// project builds a project from service → dependencies.
func project(deps map[string][]string) *types.Project {
	p := &types.Project{Name: "p", Services: types.Services{}}
	for name, ds := range deps {
		s := types.ServiceConfig{Name: name}
		if len(ds) > 0 {
			s.DependsOn = types.DependsOnConfig{}
			for _, d := range ds {
				s.DependsOn[d] = types.ServiceDependency{Condition: types.ServiceConditionStarted, Required: true}
			}
		}
		p.Services[name] = s
	}
	return p
}

func TestGraphOrder(t *testing.T) {
	g, err := newGraph(project(map[string][]string{
		"proxy": {"api"}, "api": {"db", "cache"}, "db": nil, "cache": nil, "worker": {"db"},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g.order(false), ","); got != "api,cache,db,proxy,worker" && !validOrder(g, g.order(false)) {
		t.Fatalf("order %s", got)
	}
	if !validOrder(g, g.order(false)) {
		t.Fatalf("dependency order violated: %v", g.order(false))
	}
	rev := g.order(true)
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	if !validOrder(g, rev) {
		t.Fatalf("reverse order violated: %v", g.order(true))
	}
}

func validOrder(g *graph, order []string) bool {
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	for n, ds := range g.deps {
		for _, d := range ds {
			if pos[d] > pos[n] {
				return false
			}
		}
	}
	return len(order) == len(g.nodes)
}

func TestGraphCycles(t *testing.T) {
	cases := []struct {
		deps map[string][]string
		want string
	}{
		{map[string][]string{"a": {"a"}}, "a -> a"},
		{map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}}, "a -> b -> c -> a"},
		{map[string][]string{"x": {"a"}, "a": {"b"}, "b": {"a"}}, "a -> b -> a"},
	}
	for _, tc := range cases {
		_, err := newGraph(project(tc.deps))
		if err == nil || !strings.Contains(err.Error(), "dependency cycle detected: "+tc.want) {
			t.Errorf("%v: err %v, want cycle %s", tc.deps, err, tc.want)
		}
	}
	// Other reference kinds make edges too.
	p := project(map[string][]string{"a": nil, "b": nil})
	a := p.Services["a"]
	a.NetworkMode = "service:b"
	p.Services["a"] = a
	b := p.Services["b"]
	b.VolumesFrom = []string{"a:ro"}
	p.Services["b"] = b
	if _, err := newGraph(p); err == nil {
		t.Error("network_mode/volumes_from cycle accepted")
	}
}

// TestGraphWalkParallel proves independent services run concurrently and
// dependents wait: db and cache both block until the other has started,
// which only completes if they run at the same time; api must see both
// done.
func TestGraphWalkParallel(t *testing.T) {
	g, err := newGraph(project(map[string][]string{"api": {"db", "cache"}, "db": nil, "cache": nil}))
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		done    = map[string]bool{}
		started sync.WaitGroup
	)
	started.Add(2)
	err = g.walk(context.Background(), false, func(ctx context.Context, s string) error {
		switch s {
		case "db", "cache":
			started.Done()
			started.Wait() // deadlocks unless db and cache run in parallel
		case "api":
			mu.Lock()
			ok := done["db"] && done["cache"]
			mu.Unlock()
			if !ok {
				return errors.New("api visited before its dependencies finished")
			}
		}
		mu.Lock()
		done[s] = true
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != 3 {
		t.Fatalf("visited %v", done)
	}
}

func TestGraphWalkReverseAndError(t *testing.T) {
	g, err := newGraph(project(map[string][]string{"api": {"db"}, "db": nil, "other": nil}))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []string
	err = g.walk(context.Background(), true, func(ctx context.Context, s string) error {
		mu.Lock()
		defer mu.Unlock()
		if s == "db" && !contains(seen, "api") {
			return errors.New("db stopped before api")
		}
		seen = append(seen, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// An error stops the walk before dependents are visited.
	boom := errors.New("boom")
	visited := map[string]bool{}
	err = g.walk(context.Background(), false, func(ctx context.Context, s string) error {
		mu.Lock()
		visited[s] = true
		mu.Unlock()
		if s == "db" {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || visited["api"] {
		t.Fatalf("err %v visited %v", err, visited)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestGraphWalkLimit(t *testing.T) {
	g, err := newGraph(project(map[string][]string{"a": nil, "b": nil, "c": nil, "d": {"a"}}))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	running, peak, visited := 0, 0, 0
	err = g.walkLimit(context.Background(), false, 1, func(ctx context.Context, s string) error {
		mu.Lock()
		running++
		visited++
		if running > peak {
			peak = running
		}
		mu.Unlock()
		for i := 0; i < 1000; i++ {
			runtime.Gosched() // give other visits every chance to overlap
		}
		mu.Lock()
		running--
		mu.Unlock()
		return nil
	})
	if err != nil || peak != 1 || visited != 4 {
		t.Fatalf("err %v peak %d visited %d", err, peak, visited)
	}
}
