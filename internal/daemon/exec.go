package daemon

import (
	"context"
	"errors"

	apicontainer "github.com/moby/moby/api/types/container"

	ctrrouter "github.com/berth-dev/berth/internal/api/router/container"
	execrouter "github.com/berth-dev/berth/internal/api/router/exec"
	"github.com/berth-dev/berth/internal/container"
)

// execBackend adapts the container service's execs to the exec router.
type execBackend struct{ d *Daemon }

var _ execrouter.Backend = execBackend{}

func (b execBackend) ExecCreate(ctx context.Context, name string, o apicontainer.ExecCreateRequest) (string, error) {
	return b.d.containers.ExecCreate(ctx, name, o)
}

func (b execBackend) ExecStart(ctx context.Context, id string, o execrouter.StartOptions) error {
	err := b.d.containers.ExecStart(ctx, id, o.Detach, o.ConsoleSize, func(tty, stdin, stdout, stderr bool) (container.Client, error) {
		st, err := o.Streams(tty, stdin, stdout, stderr)
		if err != nil {
			return nil, err
		}
		return &attachClient{streams: &ctrrouter.AttachStreams{Stdin: st.Stdin, Stdout: st.Stdout, Stderr: st.Stderr}, tty: tty}, nil
	})
	if errors.Is(err, container.ErrDetached) {
		return nil
	}
	return err
}

func (b execBackend) ExecInspect(ctx context.Context, id string) (*apicontainer.ExecInspectResponse, error) {
	return b.d.containers.ExecInspect(ctx, id)
}

func (b execBackend) ExecResize(ctx context.Context, id string, height, width uint32) error {
	return b.d.containers.ExecResize(ctx, id, uint(height), uint(width))
}
