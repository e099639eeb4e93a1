//go:build !linux

package container

// oomWatch is Linux-only (oom_linux.go).
type oomWatch struct{}

func (s *Service) watchOOM(c *Container, fresh bool) {}

func stopOOM(c *Container) bool { return false }
