package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
	"golang.org/x/term"
)

// streamMessage is one line of the JSON message stream of pull, push,
// load and import, including the legacy "progress" and "error" strings.
type streamMessage struct {
	jsonstream.Message
	ProgressMessage string `json:"progress,omitempty"`
	ErrorMessage    string `json:"error,omitempty"`
}

// progressRenderer draws a JSON message stream the way docker does on a
// terminal: one line per layer ID, redrawn in place with cursor movements;
// without a terminal, progress updates are dropped and statuses printed as
// plain lines.
type progressRenderer struct {
	out      io.Writer
	terminal bool
	width    int
	lines    map[string]int // layer ID -> line index in the current block
}

// displayStream renders in to out, returning the stream's error message if
// it reports one.
func displayStream(in io.Reader, out io.Writer) error {
	fd, isTerm := isTerminalWriter(out)
	r := &progressRenderer{out: out, terminal: isTerm, width: 200, lines: map[string]int{}}
	if isTerm {
		if w, _, err := term.GetSize(int(fd)); err == nil && w > 0 {
			r.width = w
		}
	}
	return r.render(in)
}

func (r *progressRenderer) render(in io.Reader) error {
	dec := json.NewDecoder(in)
	for {
		var m streamMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Aux != nil {
			continue
		}
		if err := r.message(m); err != nil {
			return err
		}
	}
}

func (r *progressRenderer) message(m streamMessage) error {
	if m.Error != nil {
		return errors.New(m.Error.Message)
	}
	if m.ErrorMessage != "" {
		return errors.New(m.ErrorMessage)
	}
	progress := r.progressString(m)
	isProgress := m.Progress != nil || m.ProgressMessage != ""
	diff := 0
	if m.ID != "" && isProgress {
		line, ok := r.lines[m.ID]
		if !ok {
			line = len(r.lines)
			r.lines[m.ID] = line
			if r.terminal {
				fmt.Fprint(r.out, "\n")
			}
		}
		diff = len(r.lines) - line
		if r.terminal && diff > 0 {
			fmt.Fprintf(r.out, "\x1b[%dA", diff)
		}
	} else {
		// Output not tied to a layer line starts a new block.
		r.lines = map[string]int{}
	}

	endl := ""
	if r.terminal && m.Stream == "" && isProgress {
		fmt.Fprint(r.out, "\x1b[2K\r")
		endl = "\r"
	} else if isProgress && progress != "" {
		// Progress bars are only drawn on terminals.
		return nil
	}
	if m.ID != "" {
		fmt.Fprintf(r.out, "%s: ", m.ID)
	}
	switch {
	case isProgress && r.terminal:
		fmt.Fprintf(r.out, "%s %s%s", m.Status, progress, endl)
	case m.Stream != "":
		fmt.Fprintf(r.out, "%s%s", m.Stream, endl)
	default:
		fmt.Fprintf(r.out, "%s%s\n", m.Status, endl)
	}
	if m.ID != "" && r.terminal && diff > 0 {
		fmt.Fprintf(r.out, "\x1b[%dB", diff)
	}
	return nil
}

// progressString renders a progress detail as docker does:
// "[=====>    ]  1.2MB/3.4MB 2s".
func (r *progressRenderer) progressString(m streamMessage) string {
	p := m.Progress
	if p == nil {
		return m.ProgressMessage
	}
	if p.Current <= 0 && p.Total <= 0 {
		return ""
	}
	if p.Total <= 0 {
		if p.Units == "" {
			return fmt.Sprintf("%8v", units.HumanSize(float64(p.Current)))
		}
		return fmt.Sprintf("%d %s", p.Current, p.Units)
	}
	pct := int(float64(p.Current)/float64(p.Total)*100) / 2
	if pct > 50 {
		pct = 50
	}
	bar := ""
	if r.width > 110 {
		bar = fmt.Sprintf("[%s>%s] ", strings.Repeat("=", pct), strings.Repeat(" ", 50-pct))
	}
	numbers := ""
	switch {
	case p.HideCounts:
	case p.Units == "":
		if p.Current <= p.Total {
			numbers = fmt.Sprintf("%8v/%v", units.HumanSize(float64(p.Current)), units.HumanSize(float64(p.Total)))
		}
	default:
		numbers = fmt.Sprintf("%d/%d %s", p.Current, p.Total, p.Units)
		if p.Current > p.Total {
			numbers = ""
		}
	}
	left := ""
	if p.Current > 0 && p.Start > 0 && pct < 50 {
		elapsed := time.Since(time.Unix(p.Start, 0))
		per := elapsed / time.Duration(p.Current)
		left = " " + (time.Duration(p.Total-p.Current) * per).Round(time.Second).String()
	}
	return bar + numbers + left
}
