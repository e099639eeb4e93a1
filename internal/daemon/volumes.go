package daemon

import (
	"context"

	apievents "github.com/moby/moby/api/types/events"
	apivolume "github.com/moby/moby/api/types/volume"

	"github.com/berth-dev/berth/internal/api/filters"
	"github.com/berth-dev/berth/internal/volume"
)

// newVolumes builds the volume service on the daemon's data root and
// metadata database.
func (d *Daemon) newVolumes() (*volume.Service, error) {
	return volume.New(volume.Config{
		Root: d.cfg.DataRoot, DB: d.db, Log: d.log.With("svc", "volume"),
		Events: func(action, name string, attrs map[string]string) {
			d.events.Publish(apievents.VolumeEventType, apievents.Action(action), name, attrs)
		},
	})
}

// volumeBackend adapts the volume service to the /volumes router.
type volumeBackend struct{ d *Daemon }

func (b volumeBackend) VolumeList(ctx context.Context, f filters.Args) ([]apivolume.Volume, error) {
	return b.d.volumes.List(ctx, f)
}

func (b volumeBackend) VolumeCreate(ctx context.Context, req apivolume.CreateRequest) (*apivolume.Volume, error) {
	return b.d.volumes.Create(ctx, volume.CreateOptions{Name: req.Name, Driver: req.Driver, Options: req.DriverOpts, Labels: req.Labels})
}

func (b volumeBackend) VolumeInspect(ctx context.Context, name string) (*apivolume.Volume, error) {
	return b.d.volumes.Get(ctx, name)
}

func (b volumeBackend) VolumeRemove(ctx context.Context, name string, force bool) error {
	return b.d.volumes.Remove(ctx, name, force)
}

func (b volumeBackend) VolumePrune(ctx context.Context, f filters.Args) (*apivolume.PruneReport, error) {
	return b.d.volumes.Prune(ctx, f)
}
