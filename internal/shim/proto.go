package shim

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logger"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Files of a shim's state directory.
const (
	sockName = "shim.sock" // the shim's unix socket (0600)
	pidName  = "shim.pid"  // the shim's pid, while it runs
	exitName = "exit.json" // the container's Exit, written once (tmp + rename)
	logName  = "shim.log"  // the shim's own stderr: its errors only
)

// Operations, one per connection (see doc.go).
const (
	opPing       = "ping"
	opStart      = "start"
	opState      = "state"
	opWait       = "wait"
	opAttach     = "attach"
	opResize     = "resize"
	opKill       = "kill"
	opExec       = "exec"
	opExecStart  = "exec-start"
	opExecState  = "exec-state"
	opExecWait   = "exec-wait"
	opCloseStdin = "close-stdin"
	opShutdown   = "shutdown"
)

// request is the one frame a client sends first on a connection.
type request struct {
	Op      string         `json:"op"`
	ID      string         `json:"id,omitempty"` // exec id
	Stdin   bool           `json:"stdin,omitempty"`
	Stdout  bool           `json:"stdout,omitempty"`
	Stderr  bool           `json:"stderr,omitempty"`
	Height  uint16         `json:"h,omitempty"`
	Width   uint16         `json:"w,omitempty"`
	Signal  int            `json:"sig,omitempty"`
	All     bool           `json:"all,omitempty"`
	Detach  bool           `json:"detach,omitempty"`
	Process *specs.Process `json:"process,omitempty"`
	// Start (attach): start the container once the stream is registered
	// and answer with the start's result (Client.AttachStart).
	Start bool `json:"start,omitempty"`
}

// response is the one frame the shim answers with; streaming operations
// then carry the stream on the same connection.
type response struct {
	Err       string     `json:"err,omitempty"`
	Class     int        `json:"class,omitempty"`
	Pid       int        `json:"pid,omitempty"`
	Status    string     `json:"status,omitempty"`
	StartedAt *time.Time `json:"started,omitempty"`
	Exit      *Exit      `json:"exit,omitempty"`
	Running   bool       `json:"running,omitempty"`
	Code      int        `json:"code,omitempty"`
	// Preforked (create): the container's init was a pre-forked one.
	Preforked bool `json:"preforked,omitempty"`
	// Started (create with bootConfig.Start, attach with request.Start):
	// the container was started too; Pid is then the started init's, or
	// StartErr and StartClass say why the start failed (the shim serves
	// on, as after a failed start request).
	Started bool `json:"started_too,omitempty"`
	// Attached (create with bootConfig.Attach): the boot connection
	// carries the container's stream from now on.
	Attached   bool   `json:"attached,omitempty"`
	StartErr   string `json:"start_err,omitempty"`
	StartClass int    `json:"start_class,omitempty"`
}

func (r *response) err() error {
	if r.Err == "" {
		return nil
	}
	return errdefs.Newf(errdefs.Class(r.Class), "%s", r.Err)
}

func errResponse(err error) *response {
	return &response{Err: err.Error(), Class: int(errdefs.ClassOf(err))}
}

// bootConfig is what Spawn hands the new shim on its boot socket (fd 3).
type bootConfig struct {
	ID          string        `json:"id"`
	Bundle      string        `json:"bundle"`
	StateDir    string        `json:"state_dir"`
	RuntimeRoot string        `json:"runtime_root"`
	RuntimeInit string        `json:"runtime_init,omitempty"`
	Stdin       bool          `json:"stdin,omitempty"`
	StdinOnce   bool          `json:"stdin_once,omitempty"`
	Log         logger.Config `json:"log"`
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	// OCI is the external OCI runtime; nil: berth's own.
	OCI *OCIRuntime `json:"oci,omitempty"`
	// Start: start the container as soon as it is created and answer
	// both in one frame (SpawnOpts.Start).
	Start bool `json:"start,omitempty"`
	// Attach, with Start: the boot connection becomes this attach's
	// stream, registered before the start (SpawnOpts.Attach). The answer
	// frame is the attach's; the output follows it on the connection.
	Attach *AttachOpts `json:"attach,omitempty"`
	// Prefork, alone in a first frame, asks a prepared shim to pre-fork
	// the container's init (see Prepare); the boot config follows.
	Prefork *preforkConfig `json:"prefork,omitempty"`
	// SpecLen: the bundle's config.json follows the frame, this many
	// raw bytes (SpawnOpts.Spec), so the shim neither reads the file nor
	// scans the spec inside the frame's JSON.
	SpecLen int          `json:"spec_len,omitempty"`
	spec    []byte       // those bytes
	pre     *shimPrefork // what the shim pre-forked, if it fits
}

// maxFrame bounds a frame: a request carries at most a process spec.
const maxFrame = 4 << 20

// writeFrame writes v as one frame: a big-endian uint32 length, then JSON.
func writeFrame(w io.Writer, v any) error { return writeFrameTail(w, v, nil) }

// writeFrameTail writes v as one frame followed by tail's raw bytes, in
// one write (the reader knows tail's length from the frame).
func writeFrameTail(w io.Writer, v any, tail []byte) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	buf := make([]byte, 4, 4+len(b)+len(tail))
	binary.BigEndian.PutUint32(buf, uint32(len(b)))
	_, err = w.Write(append(append(buf, b...), tail...))
	return err
}

// readFrame reads one frame into v. It reads exactly the frame, never
// beyond, so that a stream can follow on the same connection.
func readFrame(r io.Reader, v any) error {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > maxFrame {
		return fmt.Errorf("shim protocol: frame of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return json.Unmarshal(b, v)
}

// Exit is how a container's init ended.
type Exit struct {
	// Code is the exit status, or 128+signal for a process killed by a
	// signal (Docker's rule); for a container that failed to start, 127
	// (command not found), 126 (not executable) or 128, as Docker.
	Code int `json:"code"`
	// OOMKilled is set when the kernel's OOM killer killed a process of
	// the container (its memory cgroup's oom_kill counter is not zero).
	OOMKilled bool      `json:"oom_killed,omitempty"`
	ExitedAt  time.Time `json:"exited_at"`
	// Error describes a failure of the start or of the shim itself.
	Error string `json:"error,omitempty"`
}

// ReadExit returns the recorded exit of the container whose shim used
// stateDir, errdefs.NotFound if none was recorded (the container did not
// exit, or its shim died before recording it).
func ReadExit(stateDir string) (*Exit, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, exitName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.Newf(errdefs.NotFound, "no exit recorded in %s", stateDir)
		}
		return nil, err
	}
	var e Exit
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("exit record in %s: %w", stateDir, err)
	}
	return &e, nil
}

// writeExit records e in dir atomically: a reader sees no file or the
// whole record.
func writeExit(dir string, e *Exit) error {
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+exitName+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, exitName))
}
