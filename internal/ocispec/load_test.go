package ocispec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	data, err := json.MarshalIndent(Default(), "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "config.json"), string(data))
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Hostname != "berth" || s.Process.Args[0] != "sh" || len(s.Linux.Namespaces) != 6 {
		t.Fatalf("loaded %+v", s)
	}
}

func TestLoadAllowsUnknownFields(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "config.json"), `{
	"ociVersion": "1.2.1",
	"process": {"args": ["true"], "cwd": "/", "futureField": 1},
	"root": {"path": "rootfs"},
	"org.example.extension": {"x": [1, 2]}
}`)
	s, err := Load(dir)
	if err != nil {
		t.Fatalf("unknown fields rejected: %v", err)
	}
	if s.Process.Args[0] != "true" {
		t.Fatalf("args = %q", s.Process.Args)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) string // returns the bundle dir
		want  []string
	}{
		{"bundle missing", func(t *testing.T) string {
			return filepath.Join(t.TempDir(), "nope")
		}, []string{"bundle", "does not exist"}},
		{"bundle is a file", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "file")
			writeFile(t, p, "{}")
			return p
		}, []string{"is not a directory"}},
		{"config missing", func(t *testing.T) string {
			return t.TempDir()
		}, []string{"has no config.json"}},
		{"config empty", func(t *testing.T) string {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, "config.json"), " \n")
			return d
		}, []string{"config.json: file is empty"}},
		{"syntax error", func(t *testing.T) string {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, "config.json"), "{\n  \"ociVersion\": \"1.2.1\",\n  \"root\": {\"path\": \"rootfs\",}\n}\n")
			return d
		}, []string{"line 3, column 29", "invalid JSON", "invalid character '}'"}},
		{"truncated", func(t *testing.T) string {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, "config.json"), "{\n  \"ociVersion\": \"1.2.1\",\n")
			return d
		}, []string{"unexpected end of JSON input"}},
		{"wrong type", func(t *testing.T) string {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, "config.json"), "{\n  \"process\": {\n    \"args\": \"sh\"\n  }\n}\n")
			return d
		}, []string{"line 3", "field process.args", "cannot use a JSON string as []string"}},
		{"trailing garbage", func(t *testing.T) string {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, "config.json"), "{}\n}")
			return d
		}, []string{"line 2, column 1", "invalid character '}' after top-level value"}},
		{"byte order mark", func(t *testing.T) string {
			d := t.TempDir()
			writeFile(t, filepath.Join(d, "config.json"), "\ufeff{}")
			return d
		}, []string{"byte order mark"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.setup(t)
			_, err := Load(dir)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadUnreadable(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads files regardless of mode; use a directory instead.
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "config.json"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), "read ") {
			t.Fatalf("err = %v", err)
		}
		return
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "config.json")
	writeFile(t, p, "{}")
	if err := os.Chmod(p, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "read ") {
		t.Fatalf("err = %v", err)
	}
}

// TestParse: Parse is Load on bytes the caller has: the same spec, the
// same errors naming the bundle's config.json, and the bundle directory
// is not looked at.
func TestParse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "gone")
	data, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(dir, data)
	if err != nil || s.Hostname != "berth" {
		t.Fatalf("parsed %+v, %v", s, err)
	}
	for _, bad := range []string{"", "  \n", "\xEF\xBB\xBF{}", `{"process": {"args": "true"}}`} {
		_, err := Parse(dir, []byte(bad))
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "config.json")) {
			t.Errorf("Parse(%q): %v", bad, err)
		}
	}
}
