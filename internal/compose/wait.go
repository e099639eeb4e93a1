package compose

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// pollInterval is how often health and state are re-read while waiting.
const pollInterval = 100 * time.Millisecond

// waitDependencies blocks until the depends_on conditions of s hold:
// service_started is implied by the dependency order; service_healthy
// waits for every container of the dependency to report healthy;
// service_completed_successfully waits for them to exit with status 0.
func (e *Engine) waitDependencies(ctx context.Context, p *types.Project, s types.ServiceConfig, containers func(string) []container.Summary) error {
	deps := make([]string, 0, len(s.DependsOn))
	for d := range s.DependsOn {
		deps = append(deps, d)
	}
	sort.Strings(deps)
	for _, dep := range deps {
		cond := s.DependsOn[dep]
		if _, ok := p.Services[dep]; !ok {
			continue
		}
		if cond.Condition != types.ServiceConditionHealthy && cond.Condition != types.ServiceConditionCompletedSuccessfully {
			continue
		}
		cs := containers(dep)
		if len(cs) == 0 {
			if cond.Required {
				return fmt.Errorf("%s is missing dependency %s", s.Name, dep)
			}
			continue
		}
		for _, ctr := range cs {
			res := "Container " + containerName(ctr)
			e.event(res, "Waiting")
			var err error
			if cond.Condition == types.ServiceConditionHealthy {
				err = e.waitContainerHealthy(ctx, ctr.ID, containerName(ctr))
			} else {
				err = e.waitContainerExit0(ctx, dep, ctr.ID)
			}
			if err != nil {
				e.event(res, "Error")
				if !cond.Required {
					e.Warnf("optional dependency %q failed: %v", dep, err)
					continue
				}
				return fmt.Errorf("dependency failed to start: %w", err)
			}
			if cond.Condition == types.ServiceConditionHealthy {
				e.event(res, "Healthy")
			} else {
				e.event(res, "Exited")
			}
		}
	}
	return nil
}

// waitContainerHealthy polls the container until its healthcheck reports
// healthy; a container without healthcheck, unhealthy or stopped fails.
func (e *Engine) waitContainerHealthy(ctx context.Context, id, name string) error {
	for {
		ins, err := e.API.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		st := ins.Container.State
		if st == nil {
			return fmt.Errorf("container %s has no state", name)
		}
		if ins.Container.Config != nil && ins.Container.Config.Healthcheck == nil && st.Health == nil {
			return fmt.Errorf("container %s has no healthcheck configured", name)
		}
		if st.Health != nil {
			switch st.Health.Status {
			case container.Healthy:
				return nil
			case container.Unhealthy:
				return fmt.Errorf("container %s is unhealthy", name)
			}
		}
		if !st.Running && st.Status != container.StateCreated && st.Status != container.StateRestarting {
			return fmt.Errorf("container %s exited (%d)", name, st.ExitCode)
		}
		if err := sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

// waitContainerExit0 waits for the container to stop and fails unless it
// exited with status 0.
func (e *Engine) waitContainerExit0(ctx context.Context, service, id string) error {
	code, err := e.waitExit(ctx, id)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("service %q didn't complete successfully: exit %d", service, code)
	}
	return nil
}

// waitExit waits for the container to be not running and returns its
// exit status.
func (e *Engine) waitExit(ctx context.Context, id string) (int, error) {
	w := e.API.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
	select {
	case r := <-w.Result:
		if r.Error != nil && r.Error.Message != "" {
			return int(r.StatusCode), errors.New(r.Error.Message)
		}
		return int(r.StatusCode), nil
	case err := <-w.Error:
		return 0, err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// waitHealthy is `up --wait`: every container of services (all when
// empty) must be running, and healthy when it has a healthcheck; a
// container that exited with 0 is accepted when another service waits for
// its completion.
func (e *Engine) waitHealthy(ctx context.Context, p *types.Project, services []string, timeout time.Duration) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	completes := map[string]bool{}
	for _, s := range p.Services {
		for dep, d := range s.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				completes[dep] = true
			}
		}
	}
	cs, err := e.listContainers(ctx, p.Name, oneoffExclude, true, services...)
	if err != nil {
		return err
	}
	for _, ctr := range cs {
		name := containerName(ctr)
		for {
			ins, err := e.API.ContainerInspect(ctx, ctr.ID, client.ContainerInspectOptions{})
			if err != nil {
				return waitErr(ctx, timeout, err)
			}
			st := ins.Container.State
			if st.Running && (st.Health == nil || st.Health.Status == container.Healthy) {
				e.event("Container "+name, "Healthy")
				break
			}
			if st.Health != nil && st.Health.Status == container.Unhealthy {
				return fmt.Errorf("container %s is unhealthy", name)
			}
			if !st.Running && st.Status == container.StateExited {
				if st.ExitCode == 0 && completes[ctr.Labels[LabelService]] {
					e.event("Container "+name, "Exited")
					break
				}
				return fmt.Errorf("container %s exited (%d)", name, st.ExitCode)
			}
			if err := sleep(ctx, pollInterval); err != nil {
				return waitErr(ctx, timeout, err)
			}
		}
	}
	return nil
}

func waitErr(ctx context.Context, timeout time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) && timeout > 0 {
		return fmt.Errorf("application not healthy after %s", timeout)
	}
	return err
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
