package composecli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/berth-dev/berth/internal/cli"
)

// TestComposeCommandsHelp builds every `berth compose` subcommand (which
// merges its flags with the parents', so a shorthand clash panics) and
// checks the usage lines follow Docker Compose's.
func TestComposeCommandsHelp(t *testing.T) {
	composeCmd := NewCommand(&cli.Cli{})
	want := []string{"build", "config", "cp", "create", "down", "events", "exec", "images", "kill", "logs", "ls",
		"pause", "port", "ps", "pull", "push", "restart", "rm", "run", "scale", "start", "stop", "top", "unpause", "up", "version", "wait"}
	have := map[string]bool{}
	for _, sub := range composeCmd.Commands() {
		have[sub.Name()] = true
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("berth compose %s missing", w)
			continue
		}
		var out, errb bytes.Buffer
		code := Main([]string{"compose", w, "--help"}, strings.NewReader(""), &out, &errb)
		if code != 0 || !strings.HasPrefix(out.String(), "Usage:  berth compose "+w) {
			t.Errorf("compose %s --help: exit %d\n%s%s", w, code, out.String(), errb.String())
		}
	}
}

// TestComposeGlobalFlagsBeforeSubcommand: -f and -p are compose's own
// options, so `logs -f` and `run -p` keep their meaning.
func TestComposeGlobalFlagsBeforeSubcommand(t *testing.T) {
	var out, errb bytes.Buffer
	dir := t.TempDir()
	code := Main([]string{"compose", "-f", dir + "/missing.yaml", "-p", "x", "config"}, strings.NewReader(""), &out, &errb)
	if code == 0 || !strings.Contains(errb.String(), "missing.yaml") {
		t.Errorf("compose -f missing config: exit %d, stderr %q", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	code = Main([]string{"compose", "version", "--short"}, strings.NewReader(""), &out, &errb)
	if code != 0 || strings.TrimSpace(out.String()) != cli.Version {
		t.Errorf("compose version --short: %d %q %q", code, out.String(), errb.String())
	}
}

func TestComposeAttachedServices(t *testing.T) {
	p := &types.Project{Services: types.Services{"a": {Name: "a"}, "b": {Name: "b"}, "c": {Name: "c"}}}
	cases := []struct {
		args []string
		f    composeUpFlags
		want string
	}{
		{nil, composeUpFlags{}, "<all>"},
		{[]string{"a"}, composeUpFlags{}, "a"},
		{[]string{"a"}, composeUpFlags{attachDeps: true}, "<all>"},
		{nil, composeUpFlags{attach: []string{"b"}}, "b"},
		{nil, composeUpFlags{noAttach: []string{"b"}}, "a,c"},
		{nil, composeUpFlags{noAttach: []string{"a", "b", "c"}}, ""},
	}
	for _, tc := range cases {
		got := composeAttachedServices(p, tc.args, &tc.f)
		s := strings.Join(got, ",")
		if got == nil {
			s = "<all>"
		}
		if s != tc.want {
			t.Errorf("%v %+v: %q, want %q", tc.args, tc.f, s, tc.want)
		}
	}
}

// TestComposeBerthGlobalOptions: berth-compose takes the argv berth was
// given, so berth's global options before "compose" keep their meaning,
// and run by hand the "compose" word may be left out.
func TestComposeBerthGlobalOptions(t *testing.T) {
	dir := t.TempDir()
	sock := "unix://" + dir + "/none.sock"
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, stderr := run("-H", sock, "compose", "-p", "x", "ps"); code == 0 || !strings.Contains(stderr, dir+"/none.sock") {
		t.Errorf("-H: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := run("--config", dir, "--context", "nope", "compose", "-p", "x", "ps"); code == 0 || !strings.Contains(stderr, `context "nope" does not exist`) {
		t.Errorf("--context: exit %d, stderr %q", code, stderr)
	}
	if code, stdout, stderr := run("--log-level", "debug", "compose", "version", "--short"); code != 0 || strings.TrimSpace(stdout) != cli.Version {
		t.Errorf("--log-level: exit %d %q %q", code, stdout, stderr)
	}
	if code, stdout, stderr := run("version", "--short"); code != 0 || strings.TrimSpace(stdout) != cli.Version {
		t.Errorf("standalone version: exit %d %q %q", code, stdout, stderr)
	}
	if code, stdout, stderr := run("compose", "--help"); code != 0 || !strings.HasPrefix(stdout, "Usage:  berth compose [OPTIONS] COMMAND") {
		t.Errorf("compose --help: exit %d %q %q", code, stdout, stderr)
	}
	if code, _, stderr := run("ps2"); code == 0 || !strings.Contains(stderr, "unknown command") {
		t.Errorf("unknown subcommand: exit %d %q", code, stderr)
	}
}
