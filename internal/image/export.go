package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/image/archive"
	"github.com/berth-dev/berth/internal/image/snapshot"
)

// ExportSnapshot writes the merged filesystem of snapshot key (a committed
// layer chain or a container's active snapshot) to w as a tar, for `docker
// export`. A committed snapshot is looked at through a temporary View; an
// active one is mounted read-only with its own directory as the top lower
// (never a second writable mount of a live upper). The mount is private to
// this call and removed before it returns.
func (s *Service) ExportSnapshot(ctx context.Context, key string, w io.Writer) (retErr error) {
	info, err := s.snaps.Stat(ctx, key)
	if err != nil {
		return err
	}
	var mounts []snapshot.Mount
	switch info.Kind {
	case snapshot.Committed:
		view := fmt.Sprintf("export-%d", time.Now().UnixNano())
		if mounts, err = s.snaps.View(ctx, view, key); err != nil {
			return err
		}
		defer func() {
			if err := s.snaps.Remove(context.WithoutCancel(ctx), view); err != nil && retErr == nil {
				retErr = err
			}
		}()
	case snapshot.Active:
		upper, lowers, err := s.snaps.Upper(ctx, key)
		if err != nil {
			return err
		}
		mounts = readOnlyMounts(append([]string{upper}, lowers...))
	default: // a View: its mounts are read-only already
		if mounts, err = s.snaps.Mounts(ctx, key); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp(s.cfg.Root, "export-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := snapshot.MountAll(mounts, dir); err != nil {
		return fmt.Errorf("export %s: %w", key, err)
	}
	terr := archive.Tar(ctx, dir, w)
	uerr := snapshot.Unmount(dir)
	if terr != nil {
		return fmt.Errorf("export %s: %w", key, terr)
	}
	if uerr != nil {
		return fmt.Errorf("export %s: unmount: %w", key, uerr)
	}
	return nil
}

// readOnlyMounts stacks dirs (top first) read-only.
func readOnlyMounts(dirs []string) []snapshot.Mount {
	if len(dirs) == 1 {
		return []snapshot.Mount{{Type: "bind", Source: dirs[0], Options: []string{"ro", "rbind"}}}
	}
	return []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=" + strings.Join(dirs, ":")}}}
}
