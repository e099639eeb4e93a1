package cli

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// buildkitProgress renders the classic builder's text the way BuildKit's
// plain progress reads: one numbered block per step, "[stage k/n]
// INSTRUCTION", the step's output prefixed with its time, then CACHED or
// DONE with the step's duration (measured here, as the text arrives).
type buildkitProgress struct {
	out    io.Writer
	totals map[string]int // FROM line as written → steps in that stage
	now    func() time.Time

	partial    []byte
	n          int
	stages     int
	stageName  string
	stageStep  int
	stageTotal int
	cur        *progressStep
}

type progressStep struct {
	num    int
	start  time.Time
	cached bool
}

var stepLine = regexp.MustCompile(`^Step (\d+)/(\d+) : (.*)$`)

func newBuildkitProgress(out io.Writer, dockerfile []byte) *buildkitProgress {
	return &buildkitProgress{out: out, totals: stageTotals(dockerfile), now: time.Now}
}

// stageTotals counts each stage's steps (FROM included), keyed by its
// FROM line; empty when the Dockerfile is unknown or does not parse (the
// daemon reports that).
func stageTotals(src []byte) map[string]int {
	out := map[string]int{}
	if len(src) == 0 {
		return out
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return out
	}
	stages, _, err := instructions.Parse(res.AST, linter.New(&linter.Config{SkipAll: true}))
	if err != nil {
		return out
	}
	for _, s := range stages {
		out[strings.TrimSpace(s.SourceCode)] = 1 + len(s.Commands)
	}
	return out
}

// Write takes the stream's text, in any pieces.
func (p *buildkitProgress) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		p.line(string(p.partial[:i]))
		p.partial = p.partial[i+1:]
	}
	return len(b), nil
}

// Close ends the last step.
func (p *buildkitProgress) Close() {
	if len(p.partial) > 0 {
		p.line(string(p.partial))
		p.partial = nil
	}
	p.finish()
}

func (p *buildkitProgress) finish() {
	if p.cur == nil {
		return
	}
	if p.cur.cached {
		fmt.Fprintf(p.out, "#%d CACHED\n\n", p.cur.num)
	} else {
		fmt.Fprintf(p.out, "#%d DONE %.1fs\n\n", p.cur.num, p.now().Sub(p.cur.start).Seconds())
	}
	p.cur = nil
}

func (p *buildkitProgress) line(l string) {
	l = strings.TrimRight(l, "\r")
	switch {
	case stepLine.MatchString(l):
		p.finish()
		instr := stepLine.FindStringSubmatch(l)[3]
		fields := strings.Fields(instr)
		if len(fields) > 0 && strings.EqualFold(fields[0], "FROM") {
			p.stages++
			p.stageName = fmt.Sprintf("stage-%d", p.stages-1)
			for i, f := range fields {
				if strings.EqualFold(f, "AS") && i+1 < len(fields) {
					p.stageName = fields[i+1]
				}
			}
			p.stageStep, p.stageTotal = 0, p.totals[strings.TrimSpace(instr)]
		}
		p.stageStep++
		p.n++
		label := fmt.Sprintf("[%s %d]", p.stageName, p.stageStep)
		if p.stageTotal > 0 {
			label = fmt.Sprintf("[%s %d/%d]", p.stageName, p.stageStep, p.stageTotal)
		}
		fmt.Fprintf(p.out, "#%d %s %s\n", p.n, label, instr)
		p.cur = &progressStep{num: p.n, start: p.now()}
	case l == " ---> Using cache":
		if p.cur != nil {
			p.cur.cached = true
		}
	case strings.HasPrefix(l, " ---> Running in "), strings.HasPrefix(l, "Removing intermediate container "):
	case strings.HasPrefix(l, " ---> "):
		p.finish()
	case strings.HasPrefix(l, "Successfully built "):
		p.finish()
		p.n++
		fmt.Fprintf(p.out, "#%d exporting to image\n#%d writing image %s done\n", p.n, p.n, strings.TrimPrefix(l, "Successfully built "))
	case strings.HasPrefix(l, "Successfully tagged "):
		fmt.Fprintf(p.out, "#%d naming to %s done\n", p.n, strings.TrimPrefix(l, "Successfully tagged "))
	case p.cur != nil:
		fmt.Fprintf(p.out, "#%d %.3f %s\n", p.cur.num, p.now().Sub(p.cur.start).Seconds(), l)
	default:
		fmt.Fprintln(p.out, l)
	}
}
