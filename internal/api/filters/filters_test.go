package filters

import (
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestFromJSONBothForms(t *testing.T) {
	for _, s := range []string{
		`{"label":{"a=b":true,"c":true},"status":{"running":true}}`,
		`{"label":["a=b","c"],"status":["running"]}`,
	} {
		f, err := FromJSON(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got := f.Get("label"); len(got) != 2 || got[0] != "a=b" || got[1] != "c" {
			t.Fatalf("%s: label %v", s, got)
		}
		if !f.ExactMatch("status", "running") || f.ExactMatch("status", "exited") || !f.ExactMatch("absent", "x") {
			t.Fatalf("%s: ExactMatch", s)
		}
		if !f.MatchKVList("label", map[string]string{"a": "b", "c": ""}) || f.MatchKVList("label", map[string]string{"a": "x", "c": ""}) {
			t.Fatalf("%s: MatchKVList", s)
		}
	}
	for _, s := range []string{"", "  ", "{}"} {
		if f, err := FromJSON(s); err != nil || f.Len() != 0 {
			t.Fatalf("%q: %v %v", s, f, err)
		}
	}
	for _, s := range []string{"{", `["a"]`, `{"a":"b"}`, `{"a":{"b":"yes"}}`} {
		if _, err := FromJSON(s); !errdefs.Is(err, errdefs.InvalidArgument) {
			t.Errorf("%q: %v", s, err)
		}
	}
}

func TestValidateAndHelpers(t *testing.T) {
	f := NewArgs(Arg("name", "^web"), Arg("id", "abc"), Arg("dangling", "true"), Arg("label", "x!=1"))
	if err := f.Validate("name", "id", "dangling", "label"); err != nil {
		t.Fatal(err)
	}
	if err := f.Validate("name"); err == nil || err.Error() != "invalid filter 'dangling'" || !errdefs.Is(err, errdefs.InvalidArgument) {
		t.Fatalf("validate: %v", err)
	}
	if !f.Match("name", "web-1") || f.Match("name", "db") || !f.FuzzyMatch("id", "abcdef") || f.FuzzyMatch("id", "def") {
		t.Fatal("Match/FuzzyMatch")
	}
	if b, err := f.GetBoolOrDefault("dangling", false); err != nil || !b {
		t.Fatal("GetBoolOrDefault")
	}
	if _, err := NewArgs(Arg("dangling", "maybe")).GetBoolOrDefault("dangling", false); err == nil {
		t.Fatal("bad bool accepted")
	}
	if f.MatchKVList("label", map[string]string{"x": "1"}) || !f.MatchKVList("label", map[string]string{"x": "2"}) {
		t.Fatal("label!=")
	}
	back, err := FromJSON(f.ToJSON())
	if err != nil || back.Len() != 4 || back.Get("label")[0] != "x!=1" {
		t.Fatalf("round trip: %v %v", back, err)
	}
	var zero Args
	if zero.Len() != 0 || !zero.ExactMatch("a", "b") || zero.ToJSON() != "" {
		t.Fatal("zero Args")
	}
}
