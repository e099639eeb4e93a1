package daemon

import (
	"context"

	apievents "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/api"
	ctrrouter "github.com/berth-dev/berth/internal/api/router/container"
	execrouter "github.com/berth-dev/berth/internal/api/router/exec"
	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	systemrouter "github.com/berth-dev/berth/internal/api/router/system"
	"github.com/berth-dev/berth/internal/errdefs"
)

// routers are the API's route groups, each over its backend adapter.
func (d *Daemon) routers() []api.Router {
	images := &imagerouter.Images{Service: d.images, InUse: d.containers.ImageInUse, Containers: d.containers.CountByImage,
		Events: func(action, id string, attrs map[string]string) {
			d.events.Publish(apievents.ImageEventType, apievents.Action(action), id, attrs)
		}}
	return []api.Router{
		systemrouter.New(systemBackend{d}),
		ctrrouter.New(containerBackend{d}),
		execrouter.New(execBackend{d}),
		imagerouter.New(images, commitBackend{d}, imagerouter.Registry{Client: d.registry}),
	}
}

// commitBackend makes images from containers (POST /commit).
type commitBackend struct{ d *Daemon }

func (b commitBackend) Commit(ctx context.Context, o imagerouter.CommitOptions) (string, error) {
	return "", errdefs.Newf(errdefs.NotImplemented, "commit is not implemented yet")
}
