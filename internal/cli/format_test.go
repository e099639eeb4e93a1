package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/jsonstream"
)

type fmtRow struct{ id, name string }

func (r fmtRow) ID() string   { return r.id }
func (r fmtRow) Name() string { return r.name }

func TestTemplateFuncs(t *testing.T) {
	for _, tc := range []struct{ tmpl, want string }{
		{`{{json .}}`, `{"a":"<b>"}`},
		{`{{join (split "a,b,c" ",") "+"}}`, "a+b+c"},
		{`{{lower "ABC"}} {{upper "abc"}} {{title "hello world"}}`, "abc ABC Hello World"},
		{`[{{pad "x" 2 1}}][{{pad "" 2 1}}]`, "[  x ][]"},
		{`{{truncate "abcdef" 3}} {{truncate "ab" 3}} {{truncate "héllo" 2}}`, "abc ab hé"},
	} {
		tmpl, err := parseTemplate(tc.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, map[string]string{"a": "<b>"}); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("%s = %q, want %q", tc.tmpl, b.String(), tc.want)
		}
	}
}

func TestListFormat(t *testing.T) {
	rows := []any{fmtRow{"1", "alpha"}, fmtRow{"22", "b"}}
	headers := map[string]string{"ID": "ID", "Name": "NAME"}
	for _, tc := range []struct {
		name string
		lf   listFormat
		want string
	}{
		{"default table", listFormat{Default: "table {{.ID}}\t{{.Name}}"}, "ID        NAME\n1         alpha\n22        b\n"},
		{"table keyword", listFormat{Format: "table", Default: "table {{.ID}}\t{{.Name}}"}, "ID        NAME\n1         alpha\n22        b\n"},
		{"escaped tab", listFormat{Format: `table {{.Name}}\t{{.ID | lower}}`}, "NAME      ID\nalpha     1\nb         22\n"},
		{"raw", listFormat{Format: "{{.Name}}={{.ID}}"}, "alpha=1\nb=22\n"},
		{"quiet", listFormat{Format: "{{.Name}}", Quiet: true}, "1\n22\n"},
		{"json", listFormat{Format: "json"}, "{\"ID\":\"1\",\"Name\":\"alpha\"}\n{\"ID\":\"22\",\"Name\":\"b\"}\n"},
		{"empty table keeps header", listFormat{Default: "table {{.ID}}"}, "ID\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.lf.Headers = headers
			var b bytes.Buffer
			in := rows
			if tc.name == "empty table keeps header" {
				in = nil
			}
			if tc.name == "json" {
				in = []any{jsonRow{fmtRow{"1", "alpha"}}, jsonRow{fmtRow{"22", "b"}}}
			}
			if err := tc.lf.write(&b, in); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), tc.want)
			}
		})
	}
	var b bytes.Buffer
	err := listFormat{Format: "{{.Nope}}"}.write(&b, rows)
	if err == nil || !strings.HasPrefix(err.Error(), "failed to execute template: ") {
		t.Errorf("err = %v", err)
	}
	err = listFormat{Format: "{{.ID"}.write(&b, rows)
	if err == nil || !strings.HasPrefix(err.Error(), "failed to parse template: ") {
		t.Errorf("err = %v", err)
	}
}

type jsonRow struct{ fmtRow }

func (r jsonRow) MarshalJSON() ([]byte, error) { return fieldsJSON(r.fmtRow) }

func TestHelpers(t *testing.T) {
	if got := truncateID("sha256:0123456789abcdef0123"); got != "0123456789ab" {
		t.Errorf("truncateID = %q", got)
	}
	if got := ellipsis("abcdefghij", 5); got != "abcd…" {
		t.Errorf("ellipsis = %q", got)
	}
	if got := humanSize(187654321); got != "188MB" {
		t.Errorf("humanSize = %q", got)
	}
}

func TestProgressRendering(t *testing.T) {
	msgs := []streamMessage{
		{Message: jsonstream.Message{Status: "Pulling from library/busybox", ID: "latest"}},
		{Message: jsonstream.Message{Status: "Pulling fs layer", ID: "aaa", Progress: &jsonstream.Progress{}}},
		{Message: jsonstream.Message{Status: "Pulling fs layer", ID: "bbb", Progress: &jsonstream.Progress{}}},
		{Message: jsonstream.Message{Status: "Downloading", ID: "aaa", Progress: &jsonstream.Progress{Current: 512, Total: 1024}}},
		{Message: jsonstream.Message{Status: "Pull complete", ID: "bbb", Progress: &jsonstream.Progress{}}},
		{Message: jsonstream.Message{Status: "Digest: sha256:x"}},
	}
	// Terminal: one line per layer, redrawn in place with cursor moves. The
	// expected bytes are what docker 28.2 printed for the same stream under
	// script(1) with 150 columns (CRLFs of the pty removed).
	var term bytes.Buffer
	r := &progressRenderer{out: &term, terminal: true, width: 120, lines: map[string]int{}}
	for _, m := range msgs {
		if err := r.message(m); err != nil {
			t.Fatal(err)
		}
	}
	want := "latest: Pulling from library/busybox\n" +
		"\n\x1b[1A\x1b[2K\raaa: Pulling fs layer \r\x1b[1B" +
		"\n\x1b[1A\x1b[2K\rbbb: Pulling fs layer \r\x1b[1B" +
		"\x1b[2A\x1b[2K\raaa: Downloading [=========================>                         ]     512B/1.024kB\r\x1b[2B" +
		"\x1b[1A\x1b[2K\rbbb: Pull complete \r\x1b[1B" +
		"Digest: sha256:x\n"
	if term.String() != want {
		t.Errorf("terminal rendering\n got %q\nwant %q", term.String(), want)
	}
	// Not a terminal: progress updates dropped, statuses as lines.
	var plain bytes.Buffer
	r = &progressRenderer{out: &plain, width: 200, lines: map[string]int{}}
	for _, m := range msgs {
		if err := r.message(m); err != nil {
			t.Fatal(err)
		}
	}
	wantPlain := "latest: Pulling from library/busybox\naaa: Pulling fs layer\nbbb: Pulling fs layer\nbbb: Pull complete\nDigest: sha256:x\n"
	if plain.String() != wantPlain {
		t.Errorf("plain rendering\n got %q\nwant %q", plain.String(), wantPlain)
	}
	if err := r.message(streamMessage{Message: jsonstream.Message{Error: &jsonstream.Error{Message: "boom"}}}); err == nil || err.Error() != "boom" {
		t.Errorf("error message: %v", err)
	}
	if err := r.message(streamMessage{ErrorMessage: "legacy"}); err == nil || err.Error() != "legacy" {
		t.Errorf("legacy error: %v", err)
	}
}
