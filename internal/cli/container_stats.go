package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// stats: docker's output, computed as the docker CLI does (CPU %
// from the sample and its previous one, memory without the inactive file
// cache, network and block I/O summed).

const statsDefaultFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeaders = map[string]string{"ID": "CONTAINER ID", "Name": "NAME"}

// Header methods for the stats columns (headerCtx is format.go's).
func (h headerCtx) Container() string { return "CONTAINER" }
func (h headerCtx) CPUPerc() string   { return "CPU %" }
func (h headerCtx) MemUsage() string  { return "MEM USAGE / LIMIT" }
func (h headerCtx) MemPerc() string   { return "MEM %" }
func (h headerCtx) NetIO() string     { return "NET I/O" }
func (h headerCtx) BlockIO() string   { return "BLOCK I/O" }
func (h headerCtx) PIDs() string      { return "PIDS" }

// statsRow is one container's figures, the fields of stats --format.
type statsRow struct {
	container, id, name  string
	cpu, mem, limit, pct float64
	rx, tx, read, write  float64
	pids                 uint64
}

func (r statsRow) MarshalJSON() ([]byte, error) { return fieldsJSON(r) }
func (r statsRow) Container() string            { return r.container }
func (r statsRow) ID() string                   { return r.id }
func (r statsRow) Name() string                 { return r.name }
func (r statsRow) CPUPerc() string              { return fmt.Sprintf("%.2f%%", r.cpu) }
func (r statsRow) MemUsage() string {
	return units.BytesSize(r.mem) + " / " + units.BytesSize(r.limit)
}
func (r statsRow) MemPerc() string { return fmt.Sprintf("%.2f%%", r.pct) }
func (r statsRow) NetIO() string {
	return units.HumanSizeWithPrecision(r.rx, 3) + " / " + units.HumanSizeWithPrecision(r.tx, 3)
}
func (r statsRow) BlockIO() string {
	return units.HumanSizeWithPrecision(r.read, 3) + " / " + units.HumanSizeWithPrecision(r.write, 3)
}
func (r statsRow) PIDs() string { return fmt.Sprintf("%d", r.pids) }

// rowFromStats computes a row as the docker CLI does.
func rowFromStats(ref string, s *container.StatsResponse) statsRow {
	r := statsRow{container: ref, id: truncateID(s.ID), name: strings.TrimPrefix(s.Name, "/")}
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		r.cpu = cpuDelta / sysDelta * online * 100
	}
	m := s.MemoryStats
	r.mem = float64(m.Usage)
	if v, ok := m.Stats["total_inactive_file"]; ok && v < m.Usage {
		r.mem = float64(m.Usage - v)
	} else if v := m.Stats["inactive_file"]; v < m.Usage {
		r.mem = float64(m.Usage - v)
	}
	r.limit = float64(m.Limit)
	if r.limit != 0 {
		r.pct = r.mem / r.limit * 100
	}
	for _, n := range s.Networks {
		r.rx += float64(n.RxBytes)
		r.tx += float64(n.TxBytes)
	}
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		if e.Op == "" {
			continue
		}
		switch e.Op[0] {
		case 'r', 'R':
			r.read += float64(e.Value)
		case 'w', 'W':
			r.write += float64(e.Value)
		}
	}
	r.pids = s.PidsStats.Current
	return r
}

func (c *Cli) newStatsCommand() *cobra.Command {
	var (
		all, noStream, noTrunc bool
		format                 string
	)
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			refs := args
			if len(refs) == 0 {
				res, err := api.ContainerList(ctx, client.ContainerListOptions{All: all})
				if err != nil {
					return err
				}
				for _, s := range res.Items {
					refs = append(refs, s.ID)
				}
			}
			sample := func() ([]any, error) {
				rows := make([]any, len(refs))
				errs := make([]error, len(refs))
				var wg sync.WaitGroup
				for i, ref := range refs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						res, err := api.ContainerStats(ctx, ref, client.ContainerStatsOptions{IncludePreviousSample: true})
						if err != nil {
							errs[i] = err
							return
						}
						defer res.Body.Close()
						var s container.StatsResponse
						if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
							errs[i] = err
							return
						}
						row := rowFromStats(ref, &s)
						if noTrunc {
							row.id = s.ID
						}
						rows[i] = row
					}()
				}
				wg.Wait()
				for _, err := range errs {
					if err != nil {
						return nil, err
					}
				}
				return rows, nil
			}
			lf := listFormat{Format: format, Default: statsDefaultFormat, Headers: statsHeaders}
			if noStream {
				rows, err := sample()
				if err != nil {
					return err
				}
				return lf.write(c.out, rows)
			}
			tty := false
			if f, ok := c.out.(*os.File); ok {
				tty = term.IsTerminal(int(f.Fd()))
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				rows, err := sample()
				if err != nil {
					return err
				}
				if tty {
					io.WriteString(c.out, "\033[2J\033[H")
				}
				if err := lf.write(c.out, rows); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
			}
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	f.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	f.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	f.StringVar(&format, "format", "", formatHelp)
	return cmd
}
