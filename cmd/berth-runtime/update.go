package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

func updateCmd(g *globals) *cobra.Command {
	var resFile string
	var (
		memory, memRes, memSwap, cpuQuota, pidsLimit int64
		cpuShares, cpuPeriod, blkioWeight            uint64
		cpusetCpus, cpusetMems                       string
	)
	cmd := &cobra.Command{
		Use: "update [flags] <container-id>", Short: "update a container's resource limits", Args: idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			cfg, err := r.Config(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			res := &specs.LinuxResources{}
			if cfg.Linux != nil && cfg.Linux.Resources != nil {
				*res = *cfg.Linux.Resources
			}
			if resFile != "" {
				var rd io.Reader = os.Stdin
				if resFile != "-" {
					f, err := os.Open(resFile)
					if err != nil {
						return err
					}
					defer f.Close()
					rd = f
				}
				res = &specs.LinuxResources{}
				if err := json.NewDecoder(rd).Decode(res); err != nil {
					return fmt.Errorf("decode resources: %w", err)
				}
			}
			fl := cmd.Flags()
			mem := func() *specs.LinuxMemory {
				if res.Memory == nil {
					res.Memory = &specs.LinuxMemory{}
				}
				return res.Memory
			}
			cpu := func() *specs.LinuxCPU {
				if res.CPU == nil {
					res.CPU = &specs.LinuxCPU{}
				}
				return res.CPU
			}
			if fl.Changed("memory") {
				mem().Limit = &memory
			}
			if fl.Changed("memory-reservation") {
				mem().Reservation = &memRes
			}
			if fl.Changed("memory-swap") {
				mem().Swap = &memSwap
			}
			if fl.Changed("cpu-shares") {
				cpu().Shares = &cpuShares
			}
			if fl.Changed("cpu-quota") {
				cpu().Quota = &cpuQuota
			}
			if fl.Changed("cpu-period") {
				cpu().Period = &cpuPeriod
			}
			if fl.Changed("cpuset-cpus") {
				cpu().Cpus = cpusetCpus
			}
			if fl.Changed("cpuset-mems") {
				cpu().Mems = cpusetMems
			}
			if fl.Changed("pids-limit") {
				res.Pids = &specs.LinuxPids{Limit: &pidsLimit}
			}
			if fl.Changed("blkio-weight") {
				w := uint16(blkioWeight)
				res.BlockIO = &specs.LinuxBlockIO{Weight: &w}
			}
			return r.Update(cmd.Context(), args[0], res)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&resFile, "resources", "r", "", "path to a JSON file with linux resources (- for stdin)")
	f.Int64Var(&memory, "memory", 0, "memory limit in bytes")
	f.Int64Var(&memRes, "memory-reservation", 0, "memory reservation in bytes")
	f.Int64Var(&memSwap, "memory-swap", 0, "memory plus swap limit in bytes")
	f.Uint64Var(&cpuShares, "cpu-shares", 0, "CPU shares")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "CPU CFS quota in microseconds")
	f.Uint64Var(&cpuPeriod, "cpu-period", 0, "CPU CFS period in microseconds")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs to use")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes to use")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of pids")
	f.Uint64Var(&blkioWeight, "blkio-weight", 0, "block IO weight (10-1000)")
	return cmd
}

// psTable runs ps(1) with the given options and keeps the header plus the
// lines whose PID column is one of the container's.
func psTable(pids []int, psArgs []string) error {
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 {
		return nil
	}
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("ps output has no PID column")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	fmt.Println(lines[0])
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		if n, err := strconv.Atoi(f[col]); err == nil && want[n] {
			fmt.Println(l)
		}
	}
	return nil
}
