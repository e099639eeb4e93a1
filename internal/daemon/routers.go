package daemon

import (
	"context"

	apievents "github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/api"
	buildrouter "github.com/berth-dev/berth/internal/api/router/build"
	ctrrouter "github.com/berth-dev/berth/internal/api/router/container"
	execrouter "github.com/berth-dev/berth/internal/api/router/exec"
	imagerouter "github.com/berth-dev/berth/internal/api/router/image"
	netrouter "github.com/berth-dev/berth/internal/api/router/network"
	systemrouter "github.com/berth-dev/berth/internal/api/router/system"
	volumerouter "github.com/berth-dev/berth/internal/api/router/volume"
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
		volumerouter.New(volumeBackend{d}),
		buildrouter.New(buildBackend{d}),
		netrouter.New(networkBackend{d}),
	}
}

// commitBackend makes images from containers (POST /commit).
type commitBackend struct{ d *Daemon }

func (b commitBackend) Commit(ctx context.Context, o imagerouter.CommitOptions) (string, error) {
	return b.d.commit(ctx, o)
}
