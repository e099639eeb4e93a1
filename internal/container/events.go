package container

// LogEvent publishes a container event with the container's attributes
// (name, image, labels) plus extra, for actions other parts of the daemon
// perform (top, export, copy...).
func (s *Service) LogEvent(ref, action string, extra map[string]string) {
	c, err := s.Get(ref)
	if err != nil {
		return
	}
	rec := c.snapshot()
	s.event(action, &rec, extra)
}
