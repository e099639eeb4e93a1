package daemon

import (
	"context"
	"io"
)

// exportContainer streams a tar of the container's filesystem (its image
// layers with the writable layer on top).
func (d *Daemon) exportContainer(ctx context.Context, name string) (io.ReadCloser, error) {
	key, err := d.containers.SnapshotKey(name)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(d.images.ExportSnapshot(ctx, key, pw))
	}()
	d.containers.LogEvent(name, "export", nil)
	return pr, nil
}
