package cli

import (
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
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

func joinLines(ss []string) string { return strings.Join(ss, "\n") }

func isNotFound(err error) bool { return cerrdefs.IsNotFound(err) }
