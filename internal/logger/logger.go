package logger

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Driver names accepted in Config.Type.
const (
	JSONFile = "json-file"
	Local    = "local"
	None     = "none"
	Syslog   = "syslog"
	Journald = "journald"
)

// Config selects and configures a log driver for one container. The shim
// builds a Logger from it; the daemon validates it at create time and builds
// a LogReader from the same value.
type Config struct {
	Type string            // driver name; "" means "json-file"
	Opts map[string]string // Docker's --log-opt keys and values
	// Dir is the container's log directory. File drivers create it if
	// needed and name their files in it: json-file writes
	// <Dir>/<ContainerID>-json.log (rotated .1, .2, … or .1.gz, …), local
	// writes <Dir>/local-logs/container.log.
	Dir string

	ContainerID, ContainerName, ImageID, ImageName string
	// Labels and Env feed the labels/labels-regex/env/env-regex options.
	Labels, Env map[string]string
	// DaemonName is the value of the {{.DaemonName}} tag field ("berth"
	// when empty).
	DaemonName string
	// JournalSocket overrides the journald socket path (tests).
	JournalSocket string
}

// Message is one log record.
//
// Line never contains the record's trailing newline. Partial is true when
// the original output had no newline after Line: a line longer than
// MaxLineSize is cut into MaxLineSize chunks, all but the last of which are
// Partial. To reproduce the container's bytes write Line and then "\n"
// unless Partial. (json-file stores "log":"text\n" for a complete line and
// "log":"text" for a partial one, exactly like Docker.)
type Message struct {
	Line      []byte
	Source    string // "stdout" or "stderr"
	Timestamp time.Time
	Partial   bool
	// Attrs holds the extra attributes (labels/env options) stored with
	// the record; only readers fill it, writers take them from Config.
	Attrs map[string]string
}

// MaxLineSize is the length at which the Copier cuts a line into partial
// messages (Docker's 16 KiB).
const MaxLineSize = 16 * 1024

// Logger writes a container's log records. Log must not retain m or
// m.Line after it returns; it is safe for concurrent use. Close flushes
// and releases the driver's resources; Log after Close returns an error.
type Logger interface {
	Log(m *Message) error
	Close() error
}

// ErrReadNotSupported is returned by NewReader for drivers whose logs
// cannot be read back (Docker answers 501 with the same text).
var ErrReadNotSupported = errdefs.Newf(errdefs.NotImplemented, "configured logging driver does not support reading")

// commonOpts are accepted by every driver (Docker's daemon-level log
// options). berth accepts them and always logs in blocking mode.
var commonOpts = []string{"mode", "max-buffer-size"}

var driverOpts = map[string][]string{
	JSONFile: {"max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
	Local:    {"max-file", "max-size", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
	Syslog: {"syslog-address", "syslog-facility", "syslog-tls-ca-cert", "syslog-tls-cert", "syslog-tls-key",
		"syslog-tls-skip-verify", "tag", "syslog-format", "labels", "labels-regex", "env", "env-regex"},
	Journald: {"tag", "labels", "labels-regex", "env", "env-regex"},
}

func driverType(cfg Config) string {
	if cfg.Type == "" {
		return JSONFile
	}
	return cfg.Type
}

// ValidateConfig checks the driver name and its options without touching
// the file system or the network. Errors are errdefs.InvalidArgument (or
// NotImplemented for options berth does not support).
func ValidateConfig(cfg Config) error {
	typ := driverType(cfg)
	switch typ {
	case None:
		return nil // Docker accepts and ignores any option for "none"
	case JSONFile, Local:
		if _, err := fileOptions(cfg); err != nil {
			return err
		}
	case Syslog:
		if _, err := syslogOptions(cfg); err != nil {
			return err
		}
	case Journald:
		if err := checkOpts(cfg); err != nil {
			return err
		}
	default:
		return errdefs.Newf(errdefs.InvalidArgument, "logger: no log driver named '%s' is registered", typ)
	}
	if err := checkOpts(cfg); err != nil {
		return err
	}
	if _, err := parseTag(cfg); err != nil {
		return err
	}
	if _, err := extraAttrs(cfg); err != nil {
		return err
	}
	if m, ok := cfg.Opts["mode"]; ok && m != "blocking" && m != "non-blocking" {
		return errdefs.Newf(errdefs.InvalidArgument, "logger: logging mode not supported: %s", m)
	}
	if s, ok := cfg.Opts["max-buffer-size"]; ok {
		if _, err := parseSize(s); err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "logger: max-buffer-size: %w", err)
		}
	}
	return nil
}

func checkOpts(cfg Config) error {
	typ := driverType(cfg)
	valid := driverOpts[typ]
	keys := make([]string, 0, len(cfg.Opts))
	for k := range cfg.Opts {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic error for several bad keys
	for _, k := range keys {
		if !contains(valid, k) && !contains(commonOpts, k) {
			if typ == Local { // Docker's wording differs for local
				return errdefs.Newf(errdefs.InvalidArgument, "unknown log opt '%s' for log driver %s", k, typ)
			}
			return errdefs.Newf(errdefs.InvalidArgument, "unknown log opt '%s' for %s log driver", k, typ)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// New validates cfg and opens the driver's writer. It is called in the
// shim; file drivers create Dir when it is missing.
func New(cfg Config) (Logger, error) {
	if err := ValidateConfig(cfg); err != nil {
		return nil, err
	}
	switch driverType(cfg) {
	case None:
		return nopLogger{}, nil
	case JSONFile:
		return newJSONFile(cfg)
	case Local:
		return newLocal(cfg)
	case Syslog:
		return newSyslog(cfg)
	case Journald:
		return newJournald(cfg)
	}
	panic("unreachable: validated driver")
}

// Path returns the LogPath Docker shows in inspect: the json-file path,
// "" for every other driver (Docker shows "" for local too).
func Path(cfg Config) string {
	if driverType(cfg) != JSONFile {
		return ""
	}
	return filePath(cfg)
}

// filePath is the current (unrotated) file of a file driver.
func filePath(cfg Config) string {
	if driverType(cfg) == Local {
		return filepath.Join(cfg.Dir, "local-logs", "container.log")
	}
	return filepath.Join(cfg.Dir, cfg.ContainerID+"-json.log")
}

// NewReader returns the reader of cfg's logs, or ErrReadNotSupported.
func NewReader(cfg Config) (LogReader, error) {
	switch driverType(cfg) {
	case JSONFile:
		return &fileReader{path: filePath(cfg), fmt: jsonFormat{}}, nil
	case Local:
		return &fileReader{path: filePath(cfg), fmt: localFormat{}}, nil
	case None, Syslog, Journald:
		return nil, ErrReadNotSupported
	}
	return nil, errdefs.Newf(errdefs.InvalidArgument, "logger: no log driver named '%s' is registered", driverType(cfg))
}

var _ Logger = nopLogger{}

// stamped returns m, or a copy timed now when m has no timestamp (the
// Copier always sets one; direct callers may not).
func stamped(m *Message) *Message {
	if !m.Timestamp.IsZero() {
		return m
	}
	c := *m
	c.Timestamp = time.Now().UTC()
	return &c
}

type nopLogger struct{}

func (nopLogger) Log(*Message) error { return nil }
func (nopLogger) Close() error       { return nil }

// fileOpts are the rotation options of json-file and local.
type fileOpts struct {
	maxSize  int64 // <= 0: unlimited
	maxFiles int
	compress bool
}

// fileOptions applies berth's defaults. Docker's json-file default is a
// single unbounded file; berth bounds it at 10m x 5 unless max-size=-1.
func fileOptions(cfg Config) (fileOpts, error) {
	o := fileOpts{maxSize: 10_000_000, maxFiles: 5}
	if driverType(cfg) == Local {
		o = fileOpts{maxSize: 20 * 1024 * 1024, maxFiles: 5, compress: true}
	}
	if err := checkOpts(cfg); err != nil {
		return o, err
	}
	if s, ok := cfg.Opts["max-size"]; ok {
		if s == "-1" {
			o.maxSize = -1
		} else {
			n, err := parseSize(s)
			if err != nil {
				return o, errdefs.With(errdefs.InvalidArgument, err)
			}
			if n <= 0 {
				return o, errdefs.Newf(errdefs.InvalidArgument, "max-size must be a positive number")
			}
			o.maxSize = n
		}
	}
	if s, ok := cfg.Opts["max-file"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil {
			return o, errdefs.Newf(errdefs.InvalidArgument, "invalid max-file %q: %w", s, err)
		}
		if n < 1 {
			return o, errdefs.Newf(errdefs.InvalidArgument, "max-file cannot be less than 1")
		}
		o.maxFiles = n
	}
	if s, ok := cfg.Opts["compress"]; ok {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return o, errdefs.Newf(errdefs.InvalidArgument, "invalid compress %q: %w", s, err)
		}
		o.compress = b
		if b && (o.maxFiles < 2 || o.maxSize <= 0) {
			return o, errdefs.Newf(errdefs.InvalidArgument, "compress cannot be true when max-file is less than 2 or max-size is not set")
		}
	}
	if o.maxSize <= 0 || o.maxFiles < 2 {
		o.compress = false // nothing is ever rotated into a second file
	}
	return o, nil
}

// parseSize parses a human size with decimal units like Docker's
// units.FromHumanSize: "10", "10k", "1.5m", "2g", "10MB", "3kib".
func parseSize(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(t, "b")
	t = strings.TrimSuffix(t, "i")
	mult := 1.0
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'k':
			mult = 1e3
		case 'm':
			mult = 1e6
		case 'g':
			mult = 1e9
		case 't':
			mult = 1e12
		case 'p':
			mult = 1e15
		}
		if mult != 1 {
			t = strings.TrimSpace(t[:n-1])
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" || strings.ContainsAny(t, "eExX+-_") || f < 0 {
		return 0, fmt.Errorf("invalid size: '%s'", s)
	}
	return int64(f * mult), nil
}

// parseTag expands the tag option, a template of {{.ID}} {{.FullID}}
// {{.Name}} {{.ImageID}} {{.ImageFullID}} {{.ImageName}} {{.DaemonName}}
// (a small subset of Go templates, without reflection, so the shim stays
// light). The default is {{.ID}}.
func parseTag(cfg Config) (string, error) {
	tmpl, ok := cfg.Opts["tag"]
	if !ok || tmpl == "" {
		tmpl = "{{.ID}}"
	}
	var b strings.Builder
	for {
		i := strings.Index(tmpl, "{{")
		if i < 0 {
			b.WriteString(tmpl)
			return b.String(), nil
		}
		b.WriteString(tmpl[:i])
		j := strings.Index(tmpl[i:], "}}")
		if j < 0 {
			return "", errdefs.Newf(errdefs.InvalidArgument, "logger: tag template %q: unclosed action", cfg.Opts["tag"])
		}
		field := strings.TrimSpace(tmpl[i+2 : i+j])
		field = strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(field, "-"), "-"))
		v, ok := tagField(cfg, field)
		if !ok {
			return "", errdefs.Newf(errdefs.InvalidArgument, "logger: tag template %q: unsupported field %q", cfg.Opts["tag"], field)
		}
		b.WriteString(v)
		tmpl = tmpl[i+j+2:]
	}
}

func tagField(cfg Config, f string) (string, bool) {
	switch f {
	case ".ID":
		return short(cfg.ContainerID), true
	case ".FullID":
		return cfg.ContainerID, true
	case ".Name":
		return strings.TrimPrefix(cfg.ContainerName, "/"), true
	case ".ImageID":
		return short(strings.TrimPrefix(cfg.ImageID, "sha256:")), true
	case ".ImageFullID":
		return cfg.ImageID, true
	case ".ImageName":
		return cfg.ImageName, true
	case ".DaemonName":
		if cfg.DaemonName == "" {
			return "berth", true
		}
		return cfg.DaemonName, true
	}
	return "", false
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// extraAttrs computes the attributes chosen by the labels, labels-regex,
// env and env-regex options (Docker's ExtraAttributes).
func extraAttrs(cfg Config) (map[string]string, error) {
	attrs := map[string]string{}
	if s := cfg.Opts["labels"]; s != "" {
		for _, k := range strings.Split(s, ",") {
			if v, ok := cfg.Labels[strings.TrimSpace(k)]; ok {
				attrs[strings.TrimSpace(k)] = v
			}
		}
	}
	if s := cfg.Opts["env"]; s != "" {
		for _, k := range strings.Split(s, ",") {
			if v, ok := cfg.Env[strings.TrimSpace(k)]; ok {
				attrs[strings.TrimSpace(k)] = v
			}
		}
	}
	for _, o := range []struct {
		opt string
		src map[string]string
	}{{"labels-regex", cfg.Labels}, {"env-regex", cfg.Env}} {
		s, ok := cfg.Opts[o.opt]
		if !ok {
			continue
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "logger: %s: %w", o.opt, err)
		}
		for k, v := range o.src {
			if re.MatchString(k) {
				attrs[k] = v
			}
		}
	}
	if len(attrs) == 0 {
		return nil, nil
	}
	return attrs, nil
}

// closeQuietly is for read paths where the close error adds nothing.
func closeQuietly(c io.Closer) { _ = c.Close() }

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "localhost"
	}
	return h
}
