// Command enginebench is the helper of bench/compare-engine.sh: it times
// CLI commands without a timing tool's own start-up inside the measured
// interval, and sums the RSS and PSS of daemons and per-container
// processes (shims, conmon) from /proc/PID/smaps_rollup.
//
//	enginebench time -- CMD [ARG...]
//	    runs CMD once (stdout discarded, stderr passed on) and prints the
//	    wall time from just before the fork to just after wait4, in ms.
//	enginebench loop -n 50 -- CMD [ARG...]
//	    runs CMD n times one after the other and prints the total, in ms.
//	enginebench mem [--pids PID[,PID...]] [--comm NAME[,NAME...]
//	        [--ids FILE] [--parent PID [--busy|--idle]]] [--settle 2s]
//	    prints "count=N rss_kib=R pss_kib=P anon_kib=A" summed over the
//	    selected processes (A: smaps_rollup's "Anonymous:", private heap
//	    and stacks), then "p50rss=R p50pss=P p50anon=A", the median
//	    process's figures; the processes are the union of
//	      - the PIDs of --pids;
//	      - with --ids: every process whose command name (or argv[0]'s
//	        base name) is one of NAMEs and whose command line contains one
//	        of the container IDs listed in FILE (one per line);
//	      - with --parent: every child of PID whose command name is one of
//	        NAMEs; with --busy only those that have a child process
//	        themselves other than a pre-forked berth-runtime-init (a
//	        berth-shim holding a container), with --idle only those that
//	        have none (a warm spare shim, counted together with the
//	        pre-forked init it holds).
//	    With --settle it waits until the count and the RSS sum stop
//	    changing (up to that long) first.
//	enginebench pids ...
//	    prints the PIDs the same flags select, one a line.
//	enginebench phases LOGFILE
//	    reads berthd's debug log and prints, for each "start phase" name,
//	    the median time since the previous phase (ms) and the number of
//	    starts seen.
//
// Any command that fails makes enginebench exit non-zero, so the script
// never records the time of a failed run.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "time":
		err = timeCmd(os.Args[2:])
	case "loop":
		err = loopCmd(os.Args[2:])
	case "mem":
		err = memCmd(os.Args[2:])
	case "pids":
		err = pidsCmd(os.Args[2:])
	case "phases":
		err = phasesCmd(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "enginebench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: enginebench time|loop|mem|pids|phases [flags] [-- CMD ARG...]")
	os.Exit(2)
}

// command returns the argv after "--".
func command(args []string) ([]string, error) {
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	if len(args) == 0 {
		return nil, errors.New("no command given")
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return nil, err
	}
	return append([]string{path}, args[1:]...), nil
}

// runOnce runs argv and returns its wall time, fork to wait.
func runOnce(argv []string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = nil // /dev/null
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return d, nil
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64)
}

func timeCmd(args []string) error {
	argv, err := command(args)
	if err != nil {
		return err
	}
	d, err := runOnce(argv)
	if err != nil {
		return err
	}
	fmt.Println(ms(d))
	return nil
}

func loopCmd(args []string) error {
	fs := flag.NewFlagSet("loop", flag.ExitOnError)
	n := fs.Int("n", 50, "runs")
	_ = fs.Parse(args)
	argv, err := command(fs.Args())
	if err != nil {
		return err
	}
	var total time.Duration
	for i := 0; i < *n; i++ {
		d, err := runOnce(argv)
		if err != nil {
			return fmt.Errorf("run %d of %d: %w", i+1, *n, err)
		}
		total += d
	}
	fmt.Println(ms(total))
	return nil
}

// rollup returns Rss and Pss of pid in KiB.
func rollup(pid int) (rss, pss, anon int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "Rss:":
			rss = v
		case "Pss:":
			pss = v
		case "Anonymous:":
			anon = v
		}
	}
	return rss, pss, anon, nil
}

type memFlags struct {
	pids       string
	comm       string
	ids        string
	parent     int
	busy, idle bool
	settle     time.Duration
}

func parseMemFlags(name string, args []string) (*memFlags, error) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	m := &memFlags{}
	fs.StringVar(&m.pids, "pids", "", "comma-separated PIDs")
	fs.StringVar(&m.comm, "comm", "", "comma-separated command names")
	fs.StringVar(&m.ids, "ids", "", "file of container IDs")
	fs.IntVar(&m.parent, "parent", 0, "select children of this PID (with --comm)")
	fs.BoolVar(&m.busy, "busy", false, "with --parent: only children that have a child")
	fs.BoolVar(&m.idle, "idle", false, "with --parent: only children that have no child")
	fs.DurationVar(&m.settle, "settle", 0, "wait up to this long for the figures to settle")
	_ = fs.Parse(args)
	if m.pids == "" && m.ids == "" && m.parent == 0 {
		return nil, errors.New("give --pids, --comm with --ids, or --comm with --parent")
	}
	if (m.ids != "" || m.parent != 0) && m.comm == "" {
		return nil, errors.New("--ids and --parent need --comm")
	}
	return m, nil
}

// proc is what select_ needs to know of a process.
type proc struct {
	pid, ppid int
	comm      string
	argv      []string
}

func procs() []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		i, j := strings.IndexByte(string(st), '('), strings.LastIndexByte(string(st), ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(st[j+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		cl, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		argv := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
		out = append(out, proc{pid: pid, ppid: ppid, comm: string(st[i+1 : j]), argv: argv})
	}
	return out
}

// isPreforkedInit tells a container init still waiting for its container
// (its command line is "berth-runtime init"; it is exec'd from a
// descriptor, so its command name is a number).
func isPreforkedInit(argv []string) bool {
	return len(argv) >= 2 && filepath.Base(argv[0]) == "berth-runtime" && argv[1] == "init"
}

func (m *memFlags) select_() ([]int, error) {
	var out []int
	if m.pids != "" {
		for _, s := range strings.Split(m.pids, ",") {
			p, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return nil, fmt.Errorf("bad pid %q", s)
			}
			out = append(out, p)
		}
		if m.comm == "" {
			return out, nil
		}
	}
	var ids []string
	if m.ids != "" {
		b, err := os.ReadFile(m.ids)
		if err != nil {
			return nil, err
		}
		ids = strings.Fields(string(b))
	}
	names := map[string]bool{}
	for _, n := range strings.Split(m.comm, ",") {
		names[n] = true
	}
	all := procs()
	// A child that is a pre-forked container init (berth-runtime-init
	// before it execs the program: a warm spare's) does not make its shim
	// busy; an idle shim's such children count with it.
	hasChild := map[int]bool{}
	preforked := map[int][]int{}
	for _, p := range all {
		if isPreforkedInit(p.argv) {
			preforked[p.ppid] = append(preforked[p.ppid], p.pid)
			continue
		}
		hasChild[p.ppid] = true
	}
	seen := map[int]bool{}
	for _, p := range out {
		seen[p] = true
	}
	for _, p := range all {
		if seen[p.pid] || (!names[p.comm] && !names[filepath.Base(p.argv[0])]) {
			continue
		}
		pick := false
		if m.parent != 0 && p.ppid == m.parent {
			pick = (!m.busy || hasChild[p.pid]) && (!m.idle || !hasChild[p.pid])
		}
		if !pick && len(ids) > 0 {
			line := strings.Join(p.argv, " ")
			for _, id := range ids {
				if strings.Contains(line, id) {
					pick = true
					break
				}
			}
		}
		if pick {
			seen[p.pid] = true
			out = append(out, p.pid)
			if m.idle {
				for _, c := range preforked[p.pid] {
					if !seen[c] {
						seen[c] = true
						out = append(out, c)
					}
				}
			}
		}
	}
	return out, nil
}

// sample sums the selected processes' RSS, PSS and anonymous memory and
// gives each process's own figures (rss, pss, anon) too.
func (m *memFlags) sample() (n int, rss, pss, anon int64, each [][3]int64, err error) {
	pids, err := m.select_()
	if err != nil {
		return 0, 0, 0, 0, nil, err
	}
	for _, p := range pids {
		r, s, a, err := rollup(p)
		if err != nil {
			if m.pids != "" {
				return 0, 0, 0, 0, nil, err
			}
			continue // exited meanwhile
		}
		n++
		rss += r
		pss += s
		anon += a
		each = append(each, [3]int64{r, s, a})
	}
	return n, rss, pss, anon, each, nil
}

// medianOf is the median of field i of each (0 when empty).
func medianOf(each [][3]int64, i int) int64 {
	if len(each) == 0 {
		return 0
	}
	v := make([]int64, len(each))
	for j, e := range each {
		v[j] = e[i]
	}
	slices.Sort(v)
	return v[len(v)/2]
}

func memCmd(args []string) error {
	m, err := parseMemFlags("mem", args)
	if err != nil {
		return err
	}
	n, rss, pss, anon, each, err := m.sample()
	if err != nil {
		return err
	}
	if m.settle > 0 {
		deadline := time.Now().Add(m.settle)
		for time.Now().Before(deadline) {
			time.Sleep(200 * time.Millisecond)
			n2, rss2, pss2, anon2, each2, err := m.sample()
			if err != nil {
				return err
			}
			stable := n2 == n && abs(rss2-rss) <= 64
			n, rss, pss, anon, each = n2, rss2, pss2, anon2, each2
			if stable {
				break
			}
		}
	}
	// p50*: the median process (per-container figures when the selection
	// is one process per container).
	fmt.Printf("count=%d rss_kib=%d pss_kib=%d anon_kib=%d p50rss=%d p50pss=%d p50anon=%d\n", n, rss, pss, anon,
		medianOf(each, 0), medianOf(each, 1), medianOf(each, 2))
	return nil
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func pidsCmd(args []string) error {
	m, err := parseMemFlags("pids", args)
	if err != nil {
		return err
	}
	pids, err := m.select_()
	if err != nil {
		return err
	}
	for _, p := range pids {
		fmt.Println(p)
	}
	return nil
}

var phaseRE = regexp.MustCompile(`msg="start phase".* id=(\S+) phase=(\S+) since_start=(\S+)`)

func phasesCmd(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: enginebench phases LOGFILE")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	var order []string
	deltas := map[string][]float64{}
	last := map[string]time.Duration{} // container id -> since_start of its previous phase
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := phaseRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		d, err := time.ParseDuration(m[3])
		if err != nil {
			continue
		}
		id, name := m[1], m[2]
		prev, ok := last[id]
		if !ok || d < prev { // a new start of this container
			prev = 0
		}
		last[id] = d
		if _, seen := deltas[name]; !seen {
			order = append(order, name)
		}
		deltas[name] = append(deltas[name], float64(d-prev)/1e6)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	for _, name := range order {
		v := deltas[name]
		sort.Float64s(v)
		med := v[len(v)/2]
		if len(v)%2 == 0 {
			med = (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		fmt.Printf("%s %.2f %d\n", name, med, len(v))
	}
	return nil
}
