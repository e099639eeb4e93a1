package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/template"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newEventsCommand is `events` (also `system events`): the daemon's
// events, past ones with --since, until --until or interrupted.
func (c *Cli) newEventsCommand() *cobra.Command {
	var (
		since, until, format string
		filter               filterOpts
	)
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var tmpl *template.Template
			switch format {
			case "", "json":
			default:
				t, err := parseTemplate(format)
				if err != nil {
					return StatusError{Status: err.Error(), StatusCode: 64}
				}
				tmpl = t
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			res := api.Events(cmd.Context(), client.EventsListOptions{Since: since, Until: until, Filters: filter.f})
			for {
				select {
				case m := <-res.Messages:
					if err := printEvent(c.out, m, format, tmpl); err != nil {
						return err
					}
				case err := <-res.Err:
					if err == nil || errors.Is(err, io.EOF) {
						return nil
					}
					return err
				}
			}
		},
	}
	f := cmd.Flags()
	f.VarP(&filter, "filter", "f", "Filter output based on conditions provided")
	f.StringVar(&format, "format", "", "Format output using a custom template:\n'json':             Print in JSON format\n'TEMPLATE':         Print output using the given Go template.")
	f.StringVar(&since, "since", "", "Show all events created since timestamp")
	f.StringVar(&until, "until", "", "Stream events until this timestamp")
	return cmd
}

// rfc3339NanoFixed is docker's event time layout (fixed nanoseconds).
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// printEvent writes one event as docker does: its template or JSON, or
// "TIME TYPE ACTION ID (k=v, ...)" with the attributes sorted.
func printEvent(out io.Writer, m events.Message, format string, tmpl *template.Template) error {
	switch {
	case format == "json":
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return err
	case tmpl != nil:
		if err := tmpl.Execute(out, m); err != nil {
			return err
		}
		_, err := fmt.Fprintln(out)
		return err
	}
	var b strings.Builder
	switch {
	case m.TimeNano != 0:
		b.WriteString(time.Unix(0, m.TimeNano).Format(rfc3339NanoFixed) + " ")
	case m.Time != 0:
		b.WriteString(time.Unix(m.Time, 0).Format(rfc3339NanoFixed) + " ")
	}
	fmt.Fprintf(&b, "%s %s %s", m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, 0, len(keys))
		for _, k := range keys {
			attrs = append(attrs, k+"="+m.Actor.Attributes[k])
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(attrs, ", "))
	}
	b.WriteString("\n")
	_, err := io.WriteString(out, b.String())
	return err
}
