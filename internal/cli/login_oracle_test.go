package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// loginResult is what docker login/logout leave behind: output, exit code
// and the config.json written, with the config directory replaced by
// <CONFIG>.
type loginResult struct {
	Steps  []capturedOutput `json:"steps"`
	Config json.RawMessage  `json:"config"`
}

var loginSteps = []struct {
	stdin string
	args  []string
}{
	{"hunter2\n", []string{"login", "-u", "bob", "--password-stdin", "registry.example.com:5000"}},
	{"", []string{"login", "-u", "alice", "-p", "s3cret"}},
	{"", []string{"logout", "registry.example.com:5000"}},
	{"", []string{"logout", "other.example.com"}},
}

func loginEngine(t *testing.T) *fakeEngine {
	f := newFakeEngine(t)
	f.reply("POST /auth", 200, map[string]string{"Status": "Login Succeeded"})
	return f
}

func normalizeConfig(t *testing.T, dir string) json.RawMessage {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(v)
	return out
}

func TestLoginMatchesDocker(t *testing.T) {
	golden := filepath.Join("testdata", "login.json")
	var want loginResult
	if *updateGolden {
		docker := dockerBinary()
		if docker == "" {
			t.Skip("no docker CLI")
		}
		f := loginEngine(t)
		dir := t.TempDir()
		for _, st := range loginSteps {
			cmd := exec.Command(docker, st.args...)
			cmd.Env = append(os.Environ(), "DOCKER_HOST="+f.host, "DOCKER_CONFIG="+dir)
			cmd.Stdin = strings.NewReader(st.stdin)
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			code := 0
			if err := cmd.Run(); err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatal(err)
				}
				code = ee.ExitCode()
			}
			want.Steps = append(want.Steps, capturedOutput{
				Stdout: strings.ReplaceAll(out.String(), dir, "<CONFIG>"),
				Stderr: strings.ReplaceAll(errb.String(), dir, "<CONFIG>"),
				Code:   code,
			})
		}
		want.Config = normalizeConfig(t, dir)
		b, _ := json.MarshalIndent(want, "", "  ")
		if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	} else {
		b, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("golden file missing (run with -update): %v", err)
		}
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
	}

	f := loginEngine(t)
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	for i, st := range loginSteps {
		stdout, stderr, code := runBerth(t, f, st.stdin, st.args...)
		stdout = strings.ReplaceAll(stdout, dir, "<CONFIG>")
		stderr = strings.ReplaceAll(stderr, dir, "<CONFIG>")
		w := want.Steps[i]
		if code != w.Code || stdout != dockerToBerth(w.Stdout) || stderr != dockerToBerth(w.Stderr) {
			t.Errorf("%v:\n got code=%d stdout=%q stderr=%q\nwant code=%d stdout=%q stderr=%q",
				st.args, code, stdout, stderr, w.Code, w.Stdout, w.Stderr)
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, want.Config); err != nil {
		t.Fatal(err)
	}
	if got := normalizeConfig(t, dir); !bytes.Equal(got, compact.Bytes()) {
		t.Errorf("config.json = %s\ndocker wrote %s", got, want.Config)
	}
}
