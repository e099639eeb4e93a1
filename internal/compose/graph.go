package compose

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/types"
)

// graph is the dependency graph of a project's services: an edge a → b
// when a depends on b (depends_on, links, network_mode/ipc/pid
// service:b, volumes_from b). Services that do not depend on each other
// are independent and run in parallel.
type graph struct {
	nodes []string            // sorted service names
	deps  map[string][]string // service → services it depends on (sorted)
	rdeps map[string][]string // service → services depending on it (sorted)
}

// serviceDependencies lists the services s needs before it can start.
func serviceDependencies(s types.ServiceConfig) []string {
	set := map[string]bool{}
	for d := range s.DependsOn {
		set[d] = true
	}
	for _, l := range s.Links {
		name, _, _ := strings.Cut(l, ":")
		set[name] = true
	}
	for _, mode := range []string{s.NetworkMode, s.Ipc, s.Pid} {
		if name, ok := strings.CutPrefix(mode, types.ServicePrefix); ok {
			set[name] = true
		}
	}
	for _, v := range s.VolumesFrom {
		if !strings.HasPrefix(v, types.ContainerPrefix) {
			name, _, _ := strings.Cut(v, ":")
			set[name] = true
		}
	}
	out := make([]string, 0, len(set))
	for d := range set {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// newGraph builds the graph of p's services, refusing dependency cycles.
// Dependencies on services outside p (disabled by a profile, or not
// selected) are dropped: they are not started by this command.
func newGraph(p *types.Project) (*graph, error) {
	g := &graph{deps: map[string][]string{}, rdeps: map[string][]string{}}
	for name := range p.Services {
		g.nodes = append(g.nodes, name)
	}
	sort.Strings(g.nodes)
	for _, name := range g.nodes {
		for _, d := range serviceDependencies(p.Services[name]) {
			if _, ok := p.Services[d]; !ok {
				continue
			}
			g.deps[name] = append(g.deps[name], d)
			g.rdeps[d] = append(g.rdeps[d], name)
		}
	}
	for _, v := range g.rdeps {
		sort.Strings(v)
	}
	return g, g.checkCycle()
}

// checkCycle fails with the services of the first cycle found, e.g.
// "dependency cycle detected: a -> b -> a".
func (g *graph) checkCycle() error {
	const (
		unvisited = iota
		visiting
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(n string) error
	visit = func(n string) error {
		state[n] = visiting
		path = append(path, n)
		for _, d := range g.deps[n] {
			switch state[d] {
			case visiting:
				i := 0
				for path[i] != d {
					i++
				}
				cycle := append(append([]string{}, path[i:]...), d)
				return fmt.Errorf("dependency cycle detected: %s", strings.Join(cycle, " -> "))
			case unvisited:
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = done
		return nil
	}
	for _, n := range g.nodes {
		if state[n] == unvisited {
			if err := visit(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// order is a deterministic topological order: dependencies first (reverse
// gives dependents first).
func (g *graph) order(reverse bool) []string {
	var out []string
	seen := map[string]bool{}
	var visit func(n string)
	visit = func(n string) {
		if seen[n] {
			return
		}
		seen[n] = true
		for _, d := range g.deps[n] {
			visit(d)
		}
		out = append(out, n)
	}
	for _, n := range g.nodes {
		visit(n)
	}
	if reverse {
		for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
			out[i], out[j] = out[j], out[i]
		}
	}
	return out
}

// walk calls fn for every service once all the services it depends on
// (reverse: all the services depending on it) are done, running
// independent services concurrently. The first error cancels the walk: no
// new service is visited and walk returns that error once running visits
// end.
func (g *graph) walk(ctx context.Context, reverse bool, fn func(ctx context.Context, service string) error) error {
	return g.walkLimit(ctx, reverse, 0, fn)
}

// walkLimit is walk with at most limit visits running at once (0:
// unlimited).
func (g *graph) walkLimit(ctx context.Context, reverse bool, limit int, fn func(ctx context.Context, service string) error) error {
	var sem chan struct{}
	if limit > 0 {
		sem = make(chan struct{}, limit)
	}
	before, after := g.deps, g.rdeps
	if reverse {
		before, after = g.rdeps, g.deps
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		firstErr error
		pending  = map[string]int{}
	)
	for _, n := range g.nodes {
		pending[n] = len(before[n])
	}
	var start func(n string)
	start = func(n string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sem != nil {
				select {
				case sem <- struct{}{}:
					defer func() { <-sem }()
				case <-ctx.Done():
				}
			}
			err := ctx.Err()
			if err == nil {
				err = fn(ctx, n)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
					cancel()
				}
				return
			}
			for _, m := range after[n] {
				pending[m]--
				if pending[m] == 0 {
					start(m)
				}
			}
		}()
	}
	mu.Lock()
	for _, n := range g.nodes {
		if pending[n] == 0 {
			start(n)
		}
	}
	mu.Unlock()
	wg.Wait()
	return firstErr
}
