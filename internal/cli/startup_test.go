package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestTopCommandsTable keeps the table of lazily built commands in step
// with the constructors: every entry builds the command it is named after,
// and the whole tree has exactly the table's commands.
func TestTopCommandsTable(t *testing.T) {
	var names []string
	for _, tc := range topCommands {
		cmd := tc.build(&Cli{})
		if cmd.Name() != tc.name {
			t.Errorf("table entry %q builds %q", tc.name, cmd.Name())
		}
		if len(cmd.Aliases) > 0 {
			t.Errorf("%q has aliases %v: the lazy lookup knows names only", tc.name, cmd.Aliases)
		}
		names = append(names, tc.name)
	}
	var tree []string
	for _, cmd := range (&Cli{}).newRootCommand().Commands() {
		if cmd.Name() != "help" {
			tree = append(tree, cmd.Name())
		}
	}
	sort.Strings(names)
	sort.Strings(tree)
	if strings.Join(names, " ") != strings.Join(tree, " ") {
		t.Errorf("table %v\ntree  %v", names, tree)
	}
}

// TestLazyRootSameCommand: the root built for one command has that command
// only, with the same help (flags, usage) as in the whole tree.
func TestLazyRootSameCommand(t *testing.T) {
	full := (&Cli{}).newRootCommand()
	for _, tc := range topCommands {
		root := (&Cli{}).newRootCommandFor([]string{tc.name, "--help"})
		var got []string
		for _, cmd := range root.Commands() {
			got = append(got, cmd.Name())
		}
		if len(got) != 1 || got[0] != tc.name {
			t.Errorf("root for %q has %v", tc.name, got)
			continue
		}
		want, _, err := full.Find([]string{tc.name})
		if err != nil {
			t.Fatal(err)
		}
		if g, w := root.Commands()[0].UsageString(), want.UsageString(); g != w {
			t.Errorf("%s help differs:\nlazy:\n%s\nfull:\n%s", tc.name, g, w)
		}
	}
	// Global options, unknown commands and help requests get the whole
	// tree (suggestions, the command list).
	for _, args := range [][]string{nil, {"-H", "unix:///x", "ps"}, {"help"}, {"--help"}, {"nosuch"}, {"__complete", "r"}} {
		if n := len((&Cli{}).newRootCommandFor(args).Commands()); n < len(topCommands) {
			t.Errorf("root for %q has %d commands", args, n)
		}
	}
}

func TestUnknownCommandStillSuggests(t *testing.T) {
	_, stderr, code := runBerth(t, nil, "", "rum", "busybox")
	if code != 1 || !strings.Contains(stderr, "unknown command") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runBerth(t, nil, "", "run", "--no-such-flag", "busybox")
	if code != 125 || !strings.Contains(stderr, "unknown flag: --no-such-flag") || !strings.Contains(stderr, "Run 'berth run --help'") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// oldEngine is a fake engine that speaks API 1.41 at most, as dockerd
// 20.10 does.
func oldEngine(t *testing.T) *fakeEngine {
	f := newFakeEngine(t)
	ping := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		w.Header().Set("OSType", "linux")
	}
	f.handle("GET /_ping", ping)
	f.handle("HEAD /_ping", ping)
	f.reply("GET /containers/json", 200, []any{})
	return f
}

// rawPaths lists the recorded requests as "METHOD /raw/path".
func rawPaths(f *fakeEngine) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.reqs {
		out = append(out, r.Method+" "+r.RawPath)
	}
	return out
}

// TestEarlyClientNegotiatesOlderDaemon: the client prepared while the
// command line is parsed pings once and then speaks the daemon's older
// version, as the lazily negotiating client did.
func TestEarlyClientNegotiatesOlderDaemon(t *testing.T) {
	f := oldEngine(t)
	if _, stderr, code := runBerth(t, f, "", "ps", "-q"); code != 0 {
		t.Fatalf("ps: exit %d %s", code, stderr)
	}
	got := rawPaths(f)
	if len(got) != 2 || got[0] != "HEAD /_ping" || got[1] != "GET /v1.41/containers/json" {
		t.Errorf("requests %v, want one ping then /v1.41/containers/json", got)
	}
}

// TestFixedAPIVersionSkipsPing: DOCKER_API_VERSION still pins the version
// and no ping is sent at all.
func TestFixedAPIVersionSkipsPing(t *testing.T) {
	f := oldEngine(t)
	t.Setenv("DOCKER_API_VERSION", "1.40")
	if _, stderr, code := runBerth(t, f, "", "ps", "-q"); code != 0 {
		t.Fatalf("ps: exit %d %s", code, stderr)
	}
	got := rawPaths(f)
	if len(got) != 1 || got[0] != "GET /v1.40/containers/json" {
		t.Errorf("requests %v, want only /v1.40/containers/json", got)
	}
}

// TestEarlyClientFollowsContext: with no BERTH_HOST or DOCKER_HOST the
// early client reads the endpoint from the current context of
// config.json, as the command would.
func TestEarlyClientFollowsContext(t *testing.T) {
	f := oldEngine(t)
	cfg := t.TempDir()
	sum := sha256.Sum256([]byte("fake"))
	meta := filepath.Join(cfg, "contexts", "meta", hex.EncodeToString(sum[:]))
	if err := os.MkdirAll(meta, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(meta, "meta.json"), []byte(`{"Name":"fake","Endpoints":{"docker":{"Host":"`+f.host+`"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(`{"currentContext":"fake"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", cfg)
	t.Setenv("BERTH_HOST", "")
	if _, stderr, code := runBerth(t, nil, "", "ps", "-q"); code != 0 {
		t.Fatalf("ps: exit %d %s", code, stderr)
	}
	if got := rawPaths(f); len(got) != 2 || got[1] != "GET /v1.41/containers/json" {
		t.Errorf("requests %v", got)
	}
}

// TestEarlyClientDiscardedOnOtherOptions: when the parsed options select
// another endpoint than the environment, the early client is not used.
func TestEarlyClientDiscardedOnOtherOptions(t *testing.T) {
	envEngine, flagEngine := oldEngine(t), oldEngine(t)
	t.Setenv("BERTH_HOST", envEngine.host)
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	c := &Cli{configDir: defaultConfigDir()}
	defer c.close()
	c.startEarlyClient([]string{"ps"})
	if c.early == nil {
		t.Fatal("no early client for ps on a unix socket")
	}
	c.hosts = []string{flagEngine.host}
	api, err := c.Client()
	if err != nil {
		t.Fatal(err)
	}
	if api.DaemonHost() != flagEngine.host {
		t.Errorf("client for %s, want the -H endpoint %s", api.DaemonHost(), flagEngine.host)
	}
}

// TestEarlyClientNotForLocalCommands: commands that need no daemon, TLS
// and tcp endpoints get no early client.
func TestEarlyClientNotForLocalCommands(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	for _, args := range [][]string{{"logout"}, {"completion", "bash"}, {"compose", "up"}, {"build", "."}, {"-H", "unix:///x", "ps"}, {"nosuch"}} {
		c := &Cli{}
		c.startEarlyClient(args)
		if c.early != nil {
			t.Errorf("early client for %q", args)
		}
		c.close()
	}
	t.Setenv("BERTH_HOST", "tcp://127.0.0.1:1")
	c := &Cli{}
	if c.startEarlyClient([]string{"ps"}); c.early != nil {
		t.Error("early client for a tcp endpoint")
	}
	t.Setenv("BERTH_HOST", "unix:///nonexistent/berth.sock")
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	if c.startEarlyClient([]string{"ps"}); c.early != nil {
		t.Error("early client with DOCKER_TLS_VERIFY")
	}
}

// TestUnusedEarlyClientDoesNotHang: an early client no command asked for
// (a flag error, help) is stopped on exit even when the daemon never
// answers its ping.
func TestUnusedEarlyClientDoesNotHang(t *testing.T) {
	f := newFakeEngine(t)
	release := make(chan struct{})
	pinged := make(chan struct{}, 1)
	hang := func(w http.ResponseWriter, r *http.Request) {
		select {
		case pinged <- struct{}{}:
		default:
		}
		<-release
	}
	f.handle("HEAD /_ping", hang)
	f.handle("GET /_ping", hang)
	defer close(release)
	t.Setenv("BERTH_HOST", f.host)
	t.Setenv("DOCKER_HOST", "")
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	c := &Cli{}
	c.startEarlyClient([]string{"ps"}) // (run and create send no ping)
	if c.early == nil {
		t.Fatal("no early client for ps")
	}
	select {
	case <-pinged:
	case <-time.After(20 * time.Second):
		t.Fatal("the early client never pinged")
	}
	done := make(chan struct{})
	go func() {
		c.close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("close hung on the unanswered early ping")
	}
}

func TestCreatesContainer(t *testing.T) {
	for args, want := range map[string]bool{
		"run busybox": true, "create busybox": true, "container run x": true, "container create x": true,
		"container ls": false, "ps": false, "container": false, "": false, "runx": false,
	} {
		if got := createsContainer(strings.Fields(args)); got != want {
			t.Errorf("createsContainer(%q) = %v", args, got)
		}
	}
}

// TestPredialed: the connections dialed ahead are handed out first, in
// order, then new ones are dialed; close closes those left.
func TestPredialed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- conn
		}
	}()
	p := predial(path, 2)
	if len(p.conns) != 2 {
		t.Fatalf("%d connections dialed ahead, want 2", len(p.conns))
	}
	first, second := p.conns[0], p.conns[1]
	for i, want := range []net.Conn{first, second} {
		got, err := p.dial(context.Background(), "unix", "ignored")
		if err != nil || got != want {
			t.Fatalf("dial %d: %v %v, want the connection dialed ahead", i, got, err)
		}
	}
	third, err := p.dial(context.Background(), "unix", "ignored")
	if err != nil || third == first || third == second {
		t.Fatalf("third dial: %v %v, want a new connection", third, err)
	}
	third.Close()
	for range 3 {
		select {
		case conn := <-accepted:
			conn.Close()
		case <-time.After(10 * time.Second):
			t.Fatal("the server did not see three connections")
		}
	}
	// Left over: closed by close (the server reads EOF).
	q := predial(path, 1)
	srv := <-accepted
	q.close()
	q.close() // twice is fine
	if err := srv.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := srv.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Errorf("the server's end of a connection left over: read %d, %v; want EOF", n, err)
	}
	srv.Close()
	var none *predialed
	none.close()
	if p := predial(filepath.Join(t.TempDir(), "nothing.sock"), 2); len(p.conns) != 0 {
		t.Errorf("%d connections to a socket that does not exist", len(p.conns))
	}
}
