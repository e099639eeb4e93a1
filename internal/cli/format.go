package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/docker/go-units"
)

// templateFuncs are the functions docker offers in --format templates.
var templateFuncs = template.FuncMap{
	"json": func(v any) string {
		buf := &bytes.Buffer{}
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		return strings.TrimSpace(buf.String())
	},
	"split":    strings.Split,
	"join":     strings.Join,
	"title":    titleCase,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      padWithSpace,
	"truncate": truncateWithLength,
	"println":  fmt.Sprintln,
}

// headerFuncs replace templateFuncs when rendering a table header: each
// function returns its input so the header text is kept as is.
var headerFuncs = template.FuncMap{
	"json":     func(v string) string { return v },
	"split":    func(v string, _ string) string { return v },
	"join":     func(v string, _ string) string { return v },
	"title":    func(v string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"pad":      func(v string, _, _ int) string { return v },
	"truncate": func(v string, _ int) string { return v },
	"println":  func(v string) string { return v },
}

func titleCase(s string) string {
	prev := ' '
	var b strings.Builder
	for _, r := range s {
		if prev == ' ' || prev == '-' || prev == '_' || prev == '\t' || prev == '\n' {
			b.WriteString(strings.ToUpper(string(r)))
		} else {
			b.WriteRune(r)
		}
		prev = r
	}
	return b.String()
}

func padWithSpace(source string, prefix, suffix int) string {
	if source == "" {
		return source
	}
	return strings.Repeat(" ", prefix) + source + strings.Repeat(" ", suffix)
}

func truncateWithLength(source string, length int) string {
	if utf8.RuneCountInString(source) <= length {
		return source
	}
	return string([]rune(source)[:length])
}

// parseTemplate parses a user template with docker's functions.
func parseTemplate(format string) (*template.Template, error) {
	t, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return t, nil
}

// listFormat describes how a listing command prints its rows.
type listFormat struct {
	// Format is the user's --format value ("" for the default).
	Format string
	// Default is the table format used when Format is "" or "table".
	Default string
	// Quiet prints only {{.ID}}.
	Quiet bool
	// Headers maps field names to column headers.
	Headers map[string]string
}

// write renders rows (values whose methods are the template fields) as docker
// does: an optional "table" directive with a header line and tab-aligned
// columns, "json" for one JSON object a line, or a raw template.
func (lf listFormat) write(out io.Writer, rows []any) error {
	format := lf.Format
	switch {
	case lf.Quiet:
		format = "{{.ID}}"
	case format == "" || format == "table":
		format = lf.Default
	case format == "json":
		format = "{{json .}}"
	}
	table := false
	if strings.HasPrefix(format, "table") {
		table = true
		format = format[len("table"):]
	}
	format = strings.Trim(format, " ")
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)

	tmpl, err := template.New("").Funcs(templateFuncs).Parse(format)
	if err != nil {
		return fmt.Errorf("failed to parse template: %w", err)
	}
	var w io.Writer = out
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
		w = tw
		ht, err := template.New("").Funcs(headerFuncs).Parse(format)
		if err == nil {
			buf := &bytes.Buffer{}
			if err := ht.Execute(buf, headerCtx(lf.Headers)); err == nil && buf.Len() > 0 {
				buf.WriteByte('\n')
				_, _ = w.Write(buf.Bytes())
			}
		}
	}
	for _, row := range rows {
		buf := &bytes.Buffer{}
		if err := tmpl.Execute(buf, row); err != nil {
			if tw != nil {
				_ = tw.Flush()
			}
			return fmt.Errorf("failed to execute template: %w", err)
		}
		buf.WriteByte('\n')
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// fieldsJSON marshals the exported no-argument methods of a row value, the
// way docker's formatter contexts marshal with {{json .}}.
func fieldsJSON(v any) ([]byte, error) {
	m := map[string]any{}
	rv := reflect.ValueOf(v)
	rt := rv.Type()
	for i := 0; i < rt.NumMethod(); i++ {
		meth := rt.Method(i)
		if meth.Type.NumIn() != 1 || meth.Type.NumOut() != 1 || meth.Name == "MarshalJSON" {
			continue
		}
		m[meth.Name] = rv.Method(i).Call(nil)[0].Interface()
	}
	return json.Marshal(m)
}

// inspectEach looks every name up with lookup and prints what was found
// (writeInspect); names that fail are reported together after the output,
// with exit status 1, as docker does.
func inspectEach(out io.Writer, format string, names []string, lookup func(name string) (json.RawMessage, any, error)) error {
	var (
		raws   []json.RawMessage
		values []any // typed results, which templates see first
		errs   []string
	)
	for _, name := range names {
		raw, value, err := lookup(name)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if len(raw) == 0 {
			raw, _ = json.Marshal(value)
		}
		raws = append(raws, raw)
		values = append(values, value)
	}
	if err := writeInspect(out, format, raws, values); err != nil {
		return err
	}
	if len(errs) > 0 {
		return StatusError{Status: joinLines(errs), StatusCode: 1}
	}
	return nil
}

// writeInspect prints inspect results: a JSON array by default, or each
// element through a template.
func writeInspect(out io.Writer, format string, raws []json.RawMessage, values []any) error {
	if format == "" || format == "json" {
		elems := make([]any, 0, len(raws))
		for _, r := range raws {
			elems = append(elems, r)
		}
		if format == "json" || format == "" {
			b, err := json.MarshalIndent(elems, "", "    ")
			if err != nil {
				return err
			}
			if len(elems) == 0 {
				b = []byte("[]")
			}
			_, err = fmt.Fprintf(out, "%s\n", b)
			return err
		}
	}
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	tmpl, err := parseTemplate(format)
	if err != nil {
		return err
	}
	for i, raw := range raws {
		// Like docker, templates see the typed result first and fall back
		// to the raw JSON (numbers kept as written), so that any field the
		// daemon returns and JSON names like .Id can be addressed.
		buf := &bytes.Buffer{}
		var err error
		if values != nil && values[i] != nil {
			err = tmpl.Execute(buf, values[i])
		}
		if values == nil || values[i] == nil || err != nil {
			var generic any
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.UseNumber()
			if derr := dec.Decode(&generic); derr != nil {
				return derr
			}
			buf.Reset()
			if err2 := tmpl.Execute(buf, generic); err2 != nil {
				if err == nil {
					err = err2
				}
				return fmt.Errorf("template: %w", err)
			}
		}
		buf.WriteByte('\n')
		if _, err := out.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

// headerCtx renders a table header: every field any listing offers returns
// its column header, and Label("a.b.c") returns "c" as docker does.
type headerCtx map[string]string

func (h headerCtx) get(name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	return strings.ToUpper(name)
}

func (h headerCtx) ID() string           { return h.get("ID") }
func (h headerCtx) Image() string        { return h.get("Image") }
func (h headerCtx) Command() string      { return h.get("Command") }
func (h headerCtx) CreatedAt() string    { return h.get("CreatedAt") }
func (h headerCtx) RunningFor() string   { return h.get("RunningFor") }
func (h headerCtx) Ports() string        { return h.get("Ports") }
func (h headerCtx) State() string        { return h.get("State") }
func (h headerCtx) Status() string       { return h.get("Status") }
func (h headerCtx) Size() string         { return h.get("Size") }
func (h headerCtx) Names() string        { return h.get("Names") }
func (h headerCtx) Labels() string       { return h.get("Labels") }
func (h headerCtx) Mounts() string       { return h.get("Mounts") }
func (h headerCtx) Networks() string     { return h.get("Networks") }
func (h headerCtx) LocalVolumes() string { return h.get("LocalVolumes") }
func (h headerCtx) Platform() string     { return h.get("Platform") }
func (h headerCtx) Repository() string   { return h.get("Repository") }
func (h headerCtx) Tag() string          { return h.get("Tag") }
func (h headerCtx) Digest() string       { return h.get("Digest") }
func (h headerCtx) CreatedSince() string { return h.get("CreatedSince") }
func (h headerCtx) Containers() string   { return h.get("Containers") }
func (h headerCtx) SharedSize() string   { return h.get("SharedSize") }
func (h headerCtx) UniqueSize() string   { return h.get("UniqueSize") }
func (h headerCtx) VirtualSize() string  { return h.get("VirtualSize") }
func (h headerCtx) CreatedBy() string    { return h.get("CreatedBy") }
func (h headerCtx) Comment() string      { return h.get("Comment") }
func (h headerCtx) Type() string         { return h.get("Type") }
func (h headerCtx) TotalCount() string   { return h.get("TotalCount") }
func (h headerCtx) Active() string       { return h.get("Active") }
func (h headerCtx) Reclaimable() string  { return h.get("Reclaimable") }
func (h headerCtx) Name() string         { return h.get("Name") }
func (h headerCtx) Driver() string       { return h.get("Driver") }
func (h headerCtx) Links() string        { return h.get("Links") }
func (h headerCtx) CacheType() string    { return h.get("CacheType") }
func (h headerCtx) LastUsedSince() string {
	return h.get("LastUsedSince")
}
func (h headerCtx) UsageCount() string { return h.get("UsageCount") }
func (h headerCtx) Shared() string     { return h.get("Shared") }

// Service and Project are the columns `berth compose ps` adds.
func (h headerCtx) Service() string { return h.get("Service") }
func (h headerCtx) Project() string { return h.get("Project") }

// Label is the header of a {{.Label "name"}} column: the last dotted part.
func (h headerCtx) Label(name string) string {
	parts := strings.Split(name, ".")
	return parts[len(parts)-1]
}

// humanSize renders a size as docker lists do (3 significant digits).
func humanSize(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// humanSince renders a Unix time as "N units ago".
func humanSince(unix int64) string {
	if unix <= 0 {
		return "N/A"
	}
	return units.HumanDuration(time.Now().UTC().Sub(time.Unix(unix, 0))) + " ago"
}

// truncateID shortens an ID to docker's 12 characters, dropping the
// algorithm prefix.
func truncateID(id string) string {
	if i := strings.IndexRune(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// ellipsis truncates s to max runes, ending with "…" when cut.
func ellipsis(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	if max <= 1 {
		return string([]rune(s)[:max])
	}
	return string([]rune(s)[:max-1]) + "…"
}
