package cli

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// The exported surface below is what internal/cli/composecli (the
// berth-compose binary) needs from the berth CLI: the streams, the
// terminal and stream plumbing of attach/exec, docker's argument checks and
// the container listing. Keep it to that; a command of the berth binary
// itself uses the unexported names.

// MainCommand runs args as Main does, on a root command with berth's global
// options (-H, --context, --config, --log-level, TLS...) and the one
// command built by newCmd. berth-compose runs the argv `berth compose`
// was given this way, so the global options keep their meaning.
func MainCommand(args []string, stdin io.Reader, stdout, stderr io.Writer, newCmd func(*Cli) *cobra.Command) int {
	c := &Cli{in: stdin, out: stdout, err: stderr, args: append([]string(nil), args...)}
	defer c.close()
	root := c.newBareRootCommand()
	root.AddCommand(newCmd(c))
	setFlagErrorFunc(root)
	return c.execute(root, args)
}

// In, Out and Err are the invocation's streams.
func (c *Cli) In() io.Reader  { return c.in }
func (c *Cli) Out() io.Writer { return c.out }
func (c *Cli) Err() io.Writer { return c.err }

// Confirm asks a yes/no question on the streams, as prune does.
func (c *Cli) Confirm(msg string) bool { return c.confirm(msg) }

// EncodedAuth returns the X-Registry-Auth value for pulling or pushing ref
// from config.json, or "" when it has no credentials for ref's registry.
func (c *Cli) EncodedAuth(ref string) (string, error) { return c.encodedAuth(ref) }

// TerminalSize returns the size of the terminal behind stdout.
func (c *Cli) TerminalSize() (h, w uint, ok bool) { return c.terminalSize() }

// MonitorTTYSize calls resize with the terminal size now and on every
// SIGWINCH until ctx ends.
func (c *Cli) MonitorTTYSize(ctx context.Context, resize func(h, w uint)) {
	c.monitorTTYSize(ctx, resize)
}

// RawTerminal puts stdin's terminal into raw mode when tty and stdin are
// both set, and returns the function that restores it.
func (c *Cli) RawTerminal(tty, stdin bool) (restore func()) { return c.rawTerminal(tty, stdin) }

// PumpStreams copies between the invocation's streams and a hijacked
// attach or exec connection (stdin only when stdin is set; output
// demultiplexed unless tty) until the output ends.
func (c *Cli) PumpStreams(ctx context.Context, resp *client.HijackedResponse, tty, stdin bool) error {
	so := streamOptions{stdout: c.out, stderr: c.err, tty: tty}
	if stdin {
		so.stdin = c.in
	}
	return pumpStreams(ctx, resp, so)
}

// ProxySignals forwards the signals the process receives to container id
// until ctx ends, as `docker run --sig-proxy` does.
func ProxySignals(ctx context.Context, api *client.Client, id string) { proxySignals(ctx, api, id) }

// NoArgs, ExactArgs and RequiresMinArgs check positional arguments with
// docker's messages.
func NoArgs(cmd *cobra.Command, args []string) error { return noArgs(cmd, args) }
func ExactArgs(n int) cobra.PositionalArgs           { return exactArgs(n) }
func RequiresMinArgs(n int) cobra.PositionalArgs     { return requiresMinArgs(n) }

// ContainerRow is a container as `ps` lists it, with the template fields of
// docker's ContainerContext (ID, Image, Command, Status, Ports, Names...).
// Embed it to add columns, and give the embedding type a MarshalJSON that
// returns FieldsJSON of itself so that {{json .}} shows them too.
type ContainerRow struct{ psRow }

// NewContainerRow returns the row of s; trunc shortens IDs, image names and
// commands as ps does without --no-trunc.
func NewContainerRow(s container.Summary, trunc bool) ContainerRow {
	return ContainerRow{psRow{s: s, trunc: trunc}}
}

// ContainerHeaders returns (a copy of) ps's column headers by field name.
func ContainerHeaders() map[string]string {
	m := make(map[string]string, len(psHeaders))
	for k, v := range psHeaders {
		m[k] = v
	}
	return m
}

// FieldsJSON marshals the exported no-argument methods of a row, the way
// docker's formatter contexts render {{json .}}.
func FieldsJSON(v any) ([]byte, error) { return fieldsJSON(v) }

// WriteList prints rows as docker's listings do: format is the user's
// --format ("", "table", "table TEMPLATE", "json" or a template),
// defaultFormat the table used for "" and "table", headers the column
// headers by field name.
func WriteList(out io.Writer, format, defaultFormat string, headers map[string]string, rows []any) error {
	return listFormat{Format: format, Default: defaultFormat, Headers: headers}.write(out, rows)
}
