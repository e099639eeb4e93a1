package cli

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode"
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

// stepLine is compiled on first use: package initialisation is on the
// path of every berth command.
var stepLine = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Step (\d+)/(\d+) : (.*)$`) })

func newBuildkitProgress(out io.Writer, dockerfile []byte) *buildkitProgress {
	return &buildkitProgress{out: out, totals: stageTotals(dockerfile), now: time.Now}
}

// stageTotals counts each stage's steps (FROM included), keyed by its FROM
// line as the daemon prints it (the logical line: continuations joined,
// trimmed); empty when the Dockerfile is unknown. When two stages have the
// same FROM line the last one's count is kept.
//
// It reads only what counting needs — parser directives (escape),
// comments, line continuations and the bodies of RUN/COPY/ADD heredocs —
// rather than linking BuildKit's Dockerfile parser into the CLI: that
// parser brings protobuf and its package initialisation into every berth
// command (TestBerthBinaryLinksNoBuildKit). A Dockerfile the daemon
// rejects is reported by the daemon.
func stageTotals(src []byte) map[string]int {
	out := map[string]int{}
	if len(src) == 0 {
		return out
	}
	lines := strings.Split(strings.TrimPrefix(string(src), "\ufeff"), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], "\r\n")
	}
	escape := byte('\\')
	directives := true
	type stage struct {
		from  string
		steps int
	}
	var stages []stage
	for i := 0; i < len(lines); i++ {
		line := strings.TrimLeftFunc(lines[i], unicode.IsSpace)
		if directives {
			if name, value, ok := parserDirective(line); ok {
				if strings.EqualFold(name, "escape") && (value == "`" || value == "\\") {
					escape = value[0]
				}
				continue
			}
			directives = false
		}
		if line == "" || line[0] == '#' {
			continue
		}
		// Join the continuation lines; comments and blank lines between
		// them are dropped, as BuildKit does.
		var logical strings.Builder
		for {
			part, more := cutContinuation(line, escape)
			logical.WriteString(part)
			if !more {
				break
			}
			next := -1
			for i+1 < len(lines) {
				i++
				if t := strings.TrimLeftFunc(lines[i], unicode.IsSpace); t != "" && t[0] != '#' {
					next = i
					break
				}
			}
			if next < 0 {
				break
			}
			line = lines[next]
		}
		text := logical.String()
		fields := strings.Fields(text)
		if len(fields) == 0 {
			continue
		}
		instr := strings.ToLower(fields[0])
		// Skip heredoc bodies: their lines are not instructions.
		heredocInstr := instr
		if instr == "onbuild" && len(fields) > 1 {
			heredocInstr = strings.ToLower(fields[1])
		}
		if (heredocInstr == "run" || heredocInstr == "copy" || heredocInstr == "add") && strings.Contains(text, "<<") {
			for _, f := range fields[1:] {
				name, chomp, ok := heredocName(f)
				if !ok {
					continue
				}
				for i+1 < len(lines) {
					i++
					l := lines[i]
					if chomp {
						l = strings.TrimLeft(l, "\t")
					}
					if l == name {
						break
					}
				}
			}
		}
		switch {
		case instr == "from":
			stages = append(stages, stage{from: strings.TrimSpace(text), steps: 1})
		case len(stages) > 0:
			stages[len(stages)-1].steps++
		}
	}
	for _, s := range stages {
		out[s.from] = s.steps
	}
	return out
}

// parserDirective reads a "# name=value" parser directive line.
func parserDirective(line string) (name, value string, ok bool) {
	rest, ok := strings.CutPrefix(line, "#")
	if !ok {
		return "", "", false
	}
	name, value, ok = strings.Cut(rest, "=")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" || value == "" {
		return "", "", false
	}
	for i, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return "", "", false
		}
	}
	return name, value, true
}

// cutContinuation removes a trailing escape character (and the blanks
// after it) from line and reports whether it was there.
func cutContinuation(line string, escape byte) (string, bool) {
	t := strings.TrimRight(line, " \t")
	if len(t) > 0 && t[len(t)-1] == escape {
		return t[:len(t)-1], true
	}
	return line, false
}

// heredocName reads a heredoc word such as <<EOF, <<-EOF, <<"EOF" or
// 3<<'EOF': the terminator and whether leading tabs are stripped from the
// body (<<-).
func heredocName(word string) (name string, chomp, ok bool) {
	word = strings.TrimLeft(word, "0123456789")
	rest, ok := strings.CutPrefix(word, "<<")
	if !ok {
		return "", false, false
	}
	rest, chomp = strings.CutPrefix(rest, "-")
	if len(rest) >= 2 && (rest[0] == '"' || rest[0] == '\'') && rest[len(rest)-1] == rest[0] {
		rest = rest[1 : len(rest)-1]
	}
	if rest == "" || strings.Contains(rest, "<") {
		return "", false, false
	}
	return rest, chomp, true
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
	case stepLine().MatchString(l):
		p.finish()
		instr := stepLine().FindStringSubmatch(l)[3]
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
