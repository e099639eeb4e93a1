package shim

// SpareWaiting says whether a warm spare shim is waiting for a container
// (refillSpare has put it in place): tests wait for it rather than for
// a while.
func SpareWaiting() bool {
	spareMu.Lock()
	defer spareMu.Unlock()
	return spare != nil
}
