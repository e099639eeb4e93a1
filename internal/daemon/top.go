package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	apicontainer "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
)

// top is GET /containers/{id}/top: the host's ps with the client's
// options (default -ef), limited to the container's pids with -q (and
// without it when the options do not combine with -q), keeping the rows
// whose PID belongs to the container plus the thread rows ("-" in the
// PID column) that follow them. ps is a host binary; this is what dockerd
// does.
func (d *Daemon) top(ctx context.Context, name, psArgs string) (*apicontainer.TopResponse, error) {
	if psArgs == "" {
		psArgs = "-ef"
	}
	if err := validatePSArgs(psArgs); err != nil {
		return nil, err
	}
	pids, err := d.containers.Pids(ctx, name)
	if err != nil {
		return nil, err
	}
	args := strings.Fields(psArgs)
	q := make([]string, len(pids))
	for i, p := range pids {
		q[i] = strconv.Itoa(p)
	}
	out, err := runPS(ctx, append(args, "-q", strings.Join(q, ",")))
	if err != nil {
		// Some options (f, for one) refuse -q: list everything and filter.
		if out, err = runPS(ctx, args); err != nil {
			return nil, err
		}
	}
	return parsePS(out, pids)
}

// psKeyPID catches "-o user=PID"-style renames of a column to PID, which
// would make the PID column ambiguous (dockerd refuses them too).
var psKeyPID = regexp.MustCompile(`\s+([^\s]*)=\s*(PID[^\s]*)`)

func validatePSArgs(psArgs string) error {
	for _, g := range psKeyPID.FindAllStringSubmatch(psArgs, -1) {
		if len(g) >= 3 && g[1] != "pid" {
			return errdefs.Newf(errdefs.InvalidArgument, "specifying \"%s=%s\" is not allowed", g[1], g[2])
		}
	}
	return nil
}

func runPS(ctx context.Context, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ps", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if line, _, _ := strings.Cut(stderr.String(), "\n"); line != "" {
				return nil, errdefs.Newf(errdefs.Internal, "ps: %s", line)
			}
		}
		return nil, errdefs.With(errdefs.Internal, fmt.Errorf("ps: %w", err))
	}
	return out, nil
}

// parsePS keeps the rows of ps output whose PID is in pids (and the
// thread rows after them); the last column takes the rest of the line.
func parsePS(out []byte, pids []int) (*apicontainer.TopResponse, error) {
	lines := strings.Split(string(out), "\n")
	resp := &apicontainer.TopResponse{Titles: strings.Fields(lines[0]), Processes: [][]string{}}
	pidCol := -1
	for i, t := range resp.Titles {
		if t == "PID" {
			pidCol = i
			break
		}
	}
	if pidCol < 0 {
		return nil, errdefs.Newf(errdefs.Internal, "Couldn't find PID field in ps output")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	keepThreads := false
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if len(f) <= pidCol {
			continue
		}
		if f[pidCol] == "-" {
			if keepThreads {
				resp.Processes = append(resp.Processes, row(f, len(resp.Titles)))
			}
			continue
		}
		p, err := strconv.Atoi(f[pidCol])
		if err != nil {
			return nil, errdefs.Newf(errdefs.Internal, "Unexpected pid '%s': %s", f[pidCol], err)
		}
		keepThreads = in[p]
		if in[p] {
			resp.Processes = append(resp.Processes, row(f, len(resp.Titles)))
		}
	}
	return resp, nil
}

// row fits fields to n titles, joining the overhang into the last one.
func row(f []string, n int) []string {
	if len(f) <= n {
		return f
	}
	return append(f[:n-1:n-1], strings.Join(f[n-1:], " "))
}
