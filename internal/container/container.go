package container

import (
	"encoding/json"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/shim"
)

// Record is what is persisted for one container: its configuration and
// its last known state. It is the JSON value of the "containers" bucket.
type Record struct {
	ID                   string                  `json:"id"`
	Name                 string                  `json:"name"` // with the leading "/"
	Created              time.Time               `json:"created"`
	Path                 string                  `json:"path"`
	Args                 []string                `json:"args"`
	Config               *container.Config       `json:"config"`
	Host                 *container.HostConfig   `json:"host_config"`
	Image                string                  `json:"image"` // image ID (sha256:...)
	Platform             string                  `json:"platform"`
	Snapshot             string                  `json:"snapshot"` // writable snapshot key
	State                State                   `json:"state"`
	Restarts             int                     `json:"restart_count"`
	LogPath              string                  `json:"log_path"`
	Networks             map[string]*NetworkInfo `json:"networks,omitempty"`
	HasBeenStartedBefore bool                    `json:"has_been_started_before"`
	// ManuallyStopped is set by stop and kill from the API and cleared by
	// start: restart policies (unless-stopped) read it.
	ManuallyStopped bool `json:"manually_stopped"`
	// MountPoints are the container's volumes, binds and tmpfs mounts as
	// resolved at create (mounts.go).
	MountPoints []MountPoint `json:"mount_points,omitempty"`

	// PrimaryNetwork is the network of the network mode (default route,
	// published ports); Sandbox is the live run's network sandbox.
	PrimaryNetwork string        `json:"primary_network,omitempty"`
	Sandbox        *SandboxState `json:"sandbox,omitempty"`

	// Seq is the number of the write that stored this value (store.seq):
	// the run-state file wins over the bbolt record when its number is
	// higher (runstate.go).
	Seq uint64 `json:"seq,omitempty"`
	// Ephemeral records (an auto-removed container without volumes) live
	// in a file of their own, unsynced; Boot is the boot that wrote it
	// (ephemeral.go).
	Ephemeral bool   `json:"ephemeral,omitempty"`
	Boot      string `json:"boot,omitempty"`
}

// NetworkInfo is a container's endpoint on one network: its
// configuration (aliases, --ip) and, while it runs, the address, MAC and
// gateway the network service gave it.
type NetworkInfo struct {
	NetworkID string                    `json:"network_id,omitempty"`
	Endpoint  *network.EndpointSettings `json:"endpoint,omitempty"`
	// MAC is the MAC address asked for (--mac-address), kept while
	// Endpoint.MacAddress is cleared at each stop.
	MAC string `json:"mac,omitempty"`
}

// State is a container's run state as Docker reports it.
type State struct {
	Status     container.ContainerState `json:"status"`
	Pid        int                      `json:"pid"`
	ExitCode   int                      `json:"exit_code"`
	OOMKilled  bool                     `json:"oom_killed"`
	Error      string                   `json:"error,omitempty"`
	StartedAt  time.Time                `json:"started_at"`
	FinishedAt time.Time                `json:"finished_at"`
	Paused     bool                     `json:"paused"`
	Restarting bool                     `json:"restarting"`
	Dead       bool                     `json:"dead"`
	Removing   bool                     `json:"removing"`
	// Health is the healthcheck's state (nil without a healthcheck).
	Health *container.Health `json:"health,omitempty"`
}

// Running reports whether the container has a live init process (paused
// containers are running).
func (s *State) Running() bool {
	return s.Status == container.StateRunning || s.Status == container.StatePaused
}

// Container is the in-memory object for one container. Its fields are
// guarded by mu; the record is a value copied out for readers.
type Container struct {
	mu  sync.Mutex
	rec Record
	// changed is closed and replaced on every state change; waiters
	// select on it.
	changed chan struct{}
	// shim is the live shim client while the container runs.
	shim *shim.Client
	// attaches are clients attached before start, handed a shim stream
	// when the container starts.
	pending []*pendingAttach
	// execs are the container's exec instances by ID.
	execs map[string]*execInstance
	// busy serialises lifecycle operations (start, stop, remove) so that
	// a start and a remove never interleave; it is held without mu.
	busy sync.Mutex
	// signalling is held while a signal is sent to the container and its
	// "kill" event emitted; handleExit passes it before the "die" event, so
	// a kill that ends the container is always reported before its death.
	signalling sync.Mutex
	// removed is closed once the container is gone.
	removed chan struct{}
	// teardown, when not nil, is closed once the last run's shim has
	// exited and its rootfs is unmounted.
	teardown chan struct{}
	// rs is the restart manager (restart.go), hs the health monitor
	// (health.go); both guarded by mu.
	rs restartState
	hs *healthMonitor
	// oom watches the run's memory cgroup (oom_linux.go); guarded by mu.
	oom *oomWatch
	// run is the container's run-state file (runstate.go).
	run runFile
	// premounted: the root is mounted already, for the first start
	// (snapmount_linux.go); guarded by mu.
	premounted bool
}

// waitTeardown waits until the last run is torn down.
func (c *Container) waitTeardown() {
	c.mu.Lock()
	t := c.teardown
	c.mu.Unlock()
	if t != nil {
		<-t
	}
}

func newContainer(rec Record) *Container {
	return &Container{rec: rec, changed: make(chan struct{}), execs: map[string]*execInstance{}, removed: make(chan struct{})}
}

// notify wakes every waiter; mu must be held.
func (c *Container) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// snapshot returns a deep-enough copy of the record for readers.
func (c *Container) snapshot() Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rec
}

// ID returns the container's ID.
func (c *Container) ID() string { return c.rec.ID }

func cloneRecord(r Record) (Record, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return Record{}, err
	}
	var out Record
	err = json.Unmarshal(b, &out)
	return out, err
}

// shortID is the 12-character form Docker prints.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// statusString renders Docker's human status column ("Up 3 seconds",
// "Exited (0) 2 minutes ago", "Created").
func statusString(s State, now time.Time) string {
	switch s.Status {
	case container.StateRunning:
		if h := healthString(s.Health); h != "" {
			return "Up " + humanDuration(now.Sub(s.StartedAt)) + " (" + h + ")"
		}
		return "Up " + humanDuration(now.Sub(s.StartedAt))
	case container.StatePaused:
		return "Up " + humanDuration(now.Sub(s.StartedAt)) + " (Paused)"
	case container.StateRestarting:
		return "Restarting (" + itoa(s.ExitCode) + ") " + humanDuration(now.Sub(s.FinishedAt)) + " ago"
	case container.StateExited:
		if s.FinishedAt.IsZero() {
			return "Exited (" + itoa(s.ExitCode) + ")"
		}
		return "Exited (" + itoa(s.ExitCode) + ") " + humanDuration(now.Sub(s.FinishedAt)) + " ago"
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	}
	return "Created"
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// humanDuration is Docker's units.HumanDuration wording.
func humanDuration(d time.Duration) string {
	seconds := int(d.Seconds())
	switch {
	case seconds < 1:
		return "Less than a second"
	case seconds == 1:
		return "1 second"
	case seconds < 60:
		return itoa(seconds) + " seconds"
	}
	minutes := int(d.Minutes())
	switch {
	case minutes == 1:
		return "About a minute"
	case minutes < 60:
		return itoa(minutes) + " minutes"
	}
	hours := int(d.Hours() + 0.5)
	switch {
	case hours == 1:
		return "About an hour"
	case hours < 48:
		return itoa(hours) + " hours"
	case hours < 24*7*2:
		return itoa(hours/24) + " days"
	case hours < 24*30*2:
		return itoa(hours/24/7) + " weeks"
	case hours < 24*365*2:
		return itoa(hours/24/30) + " months"
	}
	return itoa(int(d.Hours())/24/365) + " years"
}

// commandString is ps's COMMAND column: path and args, shell-quoted as
// Docker does (arguments with spaces in double quotes... Docker simply
// joins with spaces and quotes the whole).
func commandString(r Record) string {
	parts := append([]string{r.Path}, r.Args...)
	return strings.Join(parts, " ")
}
