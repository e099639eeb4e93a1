package content

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// refLocks gives one holder at a time per ingest key. Goroutines of this
// process queue on a channel (so waiting honours ctx without polling);
// other processes are excluded with flock on locks/<key>, polled because
// flock cannot be interrupted by a context.
type refLocks struct {
	dir  string
	mu   sync.Mutex
	held map[string]chan struct{} // closed when the holder releases
}

func newRefLocks(dir string) *refLocks {
	return &refLocks{dir: dir, held: map[string]chan struct{}{}}
}

// lock blocks until key is free or ctx ends, and returns the release func.
func (l *refLocks) lock(ctx context.Context, key string) (func(), error) {
	var mine chan struct{}
	for {
		l.mu.Lock()
		ch, busy := l.held[key]
		if !busy {
			mine = make(chan struct{})
			l.held[key] = mine
			l.mu.Unlock()
			break
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	releaseLocal := func() {
		l.mu.Lock()
		delete(l.held, key)
		l.mu.Unlock()
		close(mine)
	}
	f, err := l.flock(ctx, key)
	if err != nil {
		releaseLocal()
		return nil, err
	}
	return func() {
		// Unlink while still holding the lock, so a process that opened
		// the old file notices (inode check in flock) and retries.
		_ = os.Remove(filepath.Join(l.dir, key))
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
		releaseLocal()
	}, nil
}

func (l *refLocks) flock(ctx context.Context, key string) (*os.File, error) {
	path := filepath.Join(l.dir, key)
	wait := time.Millisecond
	for {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("ingest lock: %w", err)
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			// The previous holder may have unlinked the file after we
			// opened it: only the file still at path counts.
			var held, cur unix.Stat_t
			if unix.Fstat(int(f.Fd()), &held) == nil && unix.Stat(path, &cur) == nil &&
				held.Ino == cur.Ino && held.Dev == cur.Dev {
				return f, nil
			}
			_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
			f.Close()
			continue
		}
		f.Close()
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return nil, fmt.Errorf("ingest lock: %w", err)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if wait < 100*time.Millisecond {
			wait *= 2
		}
	}
}
