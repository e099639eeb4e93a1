package container

import (
	"math/rand/v2"
	"strconv"
)

// Generated names are "adjective_noun", as Docker's are, from berth's own
// harbour-themed word lists.
var (
	nameLeft = []string{"amber", "ardent", "bold", "brave", "brisk", "calm", "clever", "crisp", "daring", "eager",
		"fancy", "gentle", "glad", "golden", "hardy", "hasty", "jolly", "keen", "kind", "lively",
		"lucid", "merry", "misty", "nimble", "noble", "plucky", "proud", "quiet", "rapid", "salty",
		"serene", "sharp", "silent", "steady", "stoic", "sturdy", "sunny", "swift", "tidy", "trusty",
		"vivid", "wary", "wise", "witty", "zesty"}
	nameRight = []string{"anchor", "bay", "beacon", "bollard", "bow", "buoy", "cabin", "capstan", "cove", "crane",
		"deck", "dinghy", "dock", "ferry", "fjord", "galley", "gull", "harbor", "hatch", "hull",
		"inlet", "jetty", "keel", "lagoon", "lantern", "mast", "mooring", "oar", "pier", "port",
		"quay", "reef", "rudder", "sail", "schooner", "shoal", "skiff", "sloop", "stern", "tide",
		"tugboat", "wharf", "wake", "yacht", "yard"}
)

// freeName returns a generated name not used by any container; s.mu must
// not be held.
func (s *Service) freeName() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.freeNameLocked()
}

// freeNameLocked is freeName with s.mu held (read or write).
func (s *Service) freeNameLocked() string {
	for i := 0; ; i++ {
		n := "/" + nameLeft[rand.IntN(len(nameLeft))] + "_" + nameRight[rand.IntN(len(nameRight))]
		if i > 10 {
			n += strconv.Itoa(rand.IntN(100))
		}
		if _, taken := s.names[n]; !taken {
			return n
		}
	}
}
