package logger

import (
	"encoding/json"
	"math/rand"
	"testing"
	"time"
)

func TestJSONEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text", "plain text"},
		{`quote " and \ back`, `quote \" and \\ back`},
		{"tab\tcr\rnl\n", `tab\u0009cr\rnl\n`},
		{"\x00\x01\x08\x0c\x1f\x7f", `\u0000\u0001\u0008\u000c\u001f` + "\x7f"},
		{"<a href='x'>&amp;</a>", `\u003ca href='x'\u003e\u0026amp;\u003c/a\u003e`},
		{"bad \xff\xfe utf8 \xe2\x82", `bad \ufffd\ufffd utf8 \ufffd\ufffd`},
		{"sep \u2028 \u2029 end", `sep \u2028 \u2029 end`},
		{"héllo wörld ✓ 😀", "héllo wörld ✓ 😀"},
	} {
		if got := string(appendEscaped(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("escape(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

// The escaped form must decode, with any JSON decoder, to what
// encoding/json makes of the same bytes (invalid UTF-8 as U+FFFD).
func TestJSONEscapeAgreesWithEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		b := make([]byte, rng.Intn(40))
		for j := range b {
			if rng.Intn(3) == 0 {
				b[j] = byte(rng.Intn(256))
			} else {
				alpha := "a\"\\\n<>&\xe2\x80\xa8\x01"
				b[j] = alpha[rng.Intn(len(alpha))]
			}
		}
		var ours, theirs string
		if err := json.Unmarshal(append(append([]byte{'"'}, appendEscaped(nil, b)...), '"'), &ours); err != nil {
			t.Fatalf("our escaping of %q is not JSON: %v", b, err)
		}
		ref, _ := json.Marshal(string(b))
		_ = json.Unmarshal(ref, &theirs)
		if ours != theirs {
			t.Fatalf("escape(%q) decodes to %q, encoding/json gives %q", b, ours, theirs)
		}
		// and our own decoder agrees
		var m Message
		rec := jsonFormat{}.appendRecord(nil, &Message{Line: b, Source: "stdout", Timestamp: time.Unix(1, 0)}, nil)
		if err := (jsonFormat{}).decode(rec, &m); err != nil || string(m.Line) != theirs {
			t.Fatalf("decode(%s) = %q, %v; want %q", rec, m.Line, err, theirs)
		}
	}
}

func TestJSONRecordIsDockers(t *testing.T) {
	ts := time.Date(2024, 3, 4, 5, 6, 7, 123456000, time.FixedZone("x", 3600))
	f := jsonFormat{}
	attrs := f.attrBlob(map[string]string{"com.example.b": "2", "a": "1"})
	got := string(f.appendRecord(nil, &Message{Line: []byte("hello <world>"), Source: "stderr", Timestamp: ts}, attrs))
	want := `{"log":"hello \u003cworld\u003e\n","stream":"stderr","attrs":{"a":"1","com.example.b":"2"},"time":"2024-03-04T04:06:07.123456Z"}` + "\n"
	if got != want {
		t.Fatalf("record\n got %s\nwant %s", got, want)
	}
	got = string(f.appendRecord(nil, &Message{Line: []byte("part"), Source: "stdout", Partial: true, Timestamp: ts}, nil))
	want = `{"log":"part","stream":"stdout","time":"2024-03-04T04:06:07.123456Z"}` + "\n"
	if got != want {
		t.Fatalf("partial record\n got %s\nwant %s", got, want)
	}
	got = string(f.appendRecord(nil, &Message{Source: "stdout", Partial: true, Timestamp: ts}, nil))
	if want := `{"stream":"stdout","time":"2024-03-04T04:06:07.123456Z"}` + "\n"; got != want {
		t.Fatalf("empty partial record\n got %s\nwant %s", got, want)
	}
	var m Message
	if err := f.decode([]byte(want), &m); err != nil || string(m.Line) != "part" || !m.Partial || m.Source != "stdout" || !m.Timestamp.Equal(ts) {
		t.Fatalf("decode: %+v %v", m, err)
	}
	// Docker-written records with other key orders and attrs decode too.
	docker := `{"time":"2024-03-04T04:06:07.5Z","attrs":{"k":"v"},"stream":"stdout","log":"x\u0026y\n","extra":[1,{"a":"}"}]}` + "\n"
	if err := f.decode([]byte(docker), &m); err != nil || string(m.Line) != "x&y" || m.Partial || m.Attrs["k"] != "v" {
		t.Fatalf("decode docker record: %+v %v", m, err)
	}
}

func TestLocalRecordRoundTrip(t *testing.T) {
	f := localFormat{}
	ts := time.Unix(1700000000, 42).UTC()
	rec := f.appendRecord(nil, &Message{Line: []byte("a\nb"), Source: "stderr", Partial: true, Timestamp: ts}, nil)
	if n, err := f.split(rec); n != len(rec) || err != nil {
		t.Fatalf("split = %d, %v", n, err)
	}
	if n, _ := f.split(rec[:len(rec)-1]); n != 0 {
		t.Fatal("split of a short record must wait for more")
	}
	var m Message
	if err := f.decode(rec, &m); err != nil || string(m.Line) != "a\nb" || m.Source != "stderr" || !m.Partial || !m.Timestamp.Equal(ts) {
		t.Fatalf("decode: %+v %v", m, err)
	}
}

func TestParseTime(t *testing.T) {
	for _, s := range []string{"2024-03-04T04:06:07Z", "2024-03-04T04:06:07.1Z", "2024-03-04T04:06:07.123456789Z",
		"2024-03-04T04:06:07.000000001Z", "2024-03-04T05:06:07.5+01:00"} {
		want, _ := time.Parse(time.RFC3339Nano, s)
		got, err := parseTime([]byte(s))
		if err != nil || !got.Equal(want) {
			t.Errorf("parseTime(%s) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"2024-13-04T04:06:07Z", "2024-03-04T04:06:07.Z", "garbage"} {
		if _, err := parseTime([]byte(s)); err == nil {
			t.Errorf("parseTime(%s) accepted", s)
		}
	}
}
