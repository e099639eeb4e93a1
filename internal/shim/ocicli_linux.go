package shim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// The operations berthd runs itself on a container of an external OCI
// runtime (the shim is not involved: they act on the runtime's state
// under Root and on the container's cgroups). They wait for the runtime
// binary with os/exec: berthd is no subreaper.

// Pause freezes the container (`<rt> pause ID`).
func (o *OCIRuntime) Pause(ctx context.Context, id string) error {
	return o.command(ctx, nil, "pause", id)
}

// Resume thaws it (`<rt> resume ID`).
func (o *OCIRuntime) Resume(ctx context.Context, id string) error {
	return o.command(ctx, nil, "resume", id)
}

// Update applies new resource limits (`<rt> update --resources - ID`).
func (o *OCIRuntime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return o.command(ctx, b, "update", "--resources", "-", id)
}

// ForceDelete kills what is left of the container and removes its
// runtime state (`<rt> delete --force ID`); a container the runtime does
// not know is not an error.
func (o *OCIRuntime) ForceDelete(ctx context.Context, id string) error {
	err := o.command(ctx, nil, "delete", "--force", id)
	if errdefs.Is(err, errdefs.NotFound) {
		// See ociRuntime.Delete: a half-made directory the runtime
		// does not know.
		_ = os.RemoveAll(o.StateDir(id))
		return nil
	}
	return err
}

// StateDir is the runtime's state directory of container id.
func (o *OCIRuntime) StateDir(id string) string { return filepath.Join(o.Root, id) }

func (o *OCIRuntime) command(ctx context.Context, stdin []byte, args ...string) error {
	argv := append(append([]string(nil), o.Args...), "--root", o.Root)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, o.Path, argv...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		err := fmt.Errorf("%s %s: %s", o.Name, args[0], msg)
		switch {
		case strings.Contains(msg, "does not exist"):
			return errdefs.With(errdefs.NotFound, err)
		case strings.Contains(msg, "not running"), strings.Contains(msg, "not paused"), strings.Contains(msg, "is paused"):
			return errdefs.With(errdefs.Conflict, err)
		}
		return err
	}
	return nil
}

// Stat checks the runtime binary is there and executable.
func (o *OCIRuntime) Stat() error {
	st, err := os.Stat(o.Path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", o.Path)
	}
	return nil
}
