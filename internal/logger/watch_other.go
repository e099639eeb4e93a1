//go:build !linux

package logger

// newWatcher polls: inotify is Linux-only.
func newWatcher(dir string) *watcher { return &watcher{ch: make(chan struct{}, 1)} }
