package cli

import (
	"bufio"
	"fmt"
	cerrdefs "github.com/containerd/errdefs"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
)

// filterOpts is a repeatable --filter name=value flag.
type filterOpts struct {
	f client.Filters
}

func (o *filterOpts) String() string { return "" }
func (o *filterOpts) Type() string   { return "filter" }

func (o *filterOpts) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("bad format of filter (expected name=value)")
	}
	if o.f == nil {
		o.f = client.Filters{}
	}
	o.f.Add(strings.ToLower(strings.TrimSpace(k)), strings.TrimSpace(val))
	return nil
}

// confirm asks a yes/no question on the terminal, as docker's prune does.
func (c *Cli) confirm(msg string) bool {
	fmt.Fprintf(c.out, "%s\nAre you sure you want to continue? [y/N] ", msg)
	line, _ := bufio.NewReader(c.in).ReadString('\n')
	line = strings.ToLower(strings.TrimSpace(line))
	return line == "y" || line == "yes"
}

func humanSize(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

func humanSince(unix int64) string {
	if unix <= 0 {
		return "N/A"
	}
	return units.HumanDuration(time.Now().UTC().Sub(time.Unix(unix, 0))) + " ago"
}

// truncateID shortens an ID to docker's 12 characters, dropping the
// algorithm prefix.
func truncateID(id string) string {
	if i := strings.IndexRune(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// ellipsis truncates s to max runes, ending with "…" when cut.
func ellipsis(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	if max <= 1 {
		return string([]rune(s)[:max])
	}
	return string([]rune(s)[:max-1]) + "…"
}

func joinLines(ss []string) string { return strings.Join(ss, "\n") }

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
