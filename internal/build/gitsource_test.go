package build

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestParseGitSource: BuildKit's rules for what an ADD source names a git
// repository, its fragment and query, and the refused transports.
func TestParseGitSource(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		src                   string
		isGit                 bool
		err                   string
		remote, ref, sub, sum string
		keep                  *bool
		noSubmod              bool
	}{
		{src: "https://example.com/r.git", isGit: true, remote: "https://example.com/r.git"},
		{src: "https://example.com/r.git#v1:docs/", isGit: true, remote: "https://example.com/r.git", ref: "v1", sub: "docs"},
		{src: "https://example.com/r.git#:../../etc", isGit: true, remote: "https://example.com/r.git", sub: "etc"},
		{src: "http://example.com/r.git?tag=v1&subdir=a&keep-git-dir=true", isGit: true, remote: "http://example.com/r.git", ref: "refs/tags/v1", sub: "a", keep: &yes},
		{src: "https://example.com/r.git?branch=dev&checksum=abc&submodules=false&keep-git-dir=0", isGit: true, remote: "https://example.com/r.git", ref: "refs/heads/dev", sum: "abc", noSubmod: true, keep: &no},
		{src: "git@github.com:moby/buildkit.git#v0.14.1:docs", isGit: true, remote: "git@github.com:moby/buildkit.git", ref: "v0.14.1", sub: "docs"},
		{src: "me@host.example:repo", isGit: true, remote: "me@host.example:repo"},
		{src: "ssh://git@host/r.git#main", isGit: true, remote: "ssh://git@host/r.git", ref: "main"},
		{src: "git://host/r#main", isGit: true, remote: "git://host/r", ref: "main"},
		{src: "https://example.com/file.tar.gz"},
		{src: "https://example.com/r.git/file"},
		{src: "ftp://example.com/r.git"},
		{src: "local/path.git"},
		{src: "github.com/moby/buildkit.git"},
		{src: "file:///srv/r.git", isGit: true, err: "file transport is not allowed"},
		{src: "FILE:///srv/r.git", isGit: true, err: "file transport is not allowed"},
		{src: "ext::sh -c touch% /tmp/x", isGit: true, err: "ext transport is not allowed"},
		{src: "https://example.com/r.git#-uupload-pack=x", isGit: true, err: "invalid git URL"},
		{src: "https://example.com/r.git?foo=bar", isGit: true, err: `unexpected query "foo"`},
		{src: "https://example.com/r.git?tag=a&branch=b", isGit: true, err: "branch conflicts with tag"},
		{src: "https://example.com/r.git?ref=a#b", isGit: true, err: "ref conflicts"},
		{src: "https://example.com/r.git?keep-git-dir=maybe", isGit: true, err: "invalid keep-git-dir value"},
	} {
		g, isGit, err := parseGitSource(tc.src)
		if isGit != tc.isGit {
			t.Errorf("%s: git %v, want %v", tc.src, isGit, tc.isGit)
			continue
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.src, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.src, err)
			continue
		}
		if !isGit {
			continue
		}
		if g.remote != tc.remote || g.ref != tc.ref || g.subdir != tc.sub || g.checksum != tc.sum || g.noSubmod != tc.noSubmod ||
			(g.keep == nil) != (tc.keep == nil) || (g.keep != nil && *g.keep != *tc.keep) {
			t.Errorf("%s: %+v", tc.src, g)
		}
	}
}

// TestGitDisplayHidesCredentials: what messages and the history show
// has no http(s) credentials and no password.
func TestGitDisplayHidesCredentials(t *testing.T) {
	for in, want := range map[string]string{
		"https://user:tok@example.com/r.git": "https://example.com/r.git",
		"https://tok@example.com/r.git":      "https://example.com/r.git",
		"ssh://git:pw@example.com/r.git":     "ssh://git@example.com/r.git",
		"git@example.com:r.git":              "git@example.com:r.git",
	} {
		if got := redactGitURL(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// TestAddGitOverSSH: a git@host:path source is fetched over ssh with the
// agent forwarded as --ssh default in SSH_AUTH_SOCK (the ssh command is a
// stand-in that records the variable and runs the remote command
// locally: no sshd here), .git dropped; without a forwarded agent the
// daemon's own environment is used.
func TestAddGitOverSSH(t *testing.T) {
	tmp := t.TempDir()
	repo := filepath.Join(tmp, "repo")
	genv := append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME="+tmp)
	gitIn := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = dir, genv
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if err := os.MkdirAll(filepath.Join(repo, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "d", "f"), []byte("over ssh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gitIn(repo, "init", "-q", "-b", "main")
	gitIn(repo, "add", ".")
	gitIn(repo, "commit", "-q", "-m", "one")
	head := gitIn(repo, "rev-parse", "HEAD")

	log := filepath.Join(tmp, "ssh.log")
	fake := filepath.Join(tmp, "fakessh")
	script := "#!/bin/sh\necho \"sock=$SSH_AUTH_SOCK host=$1\" >> " + log + "\nfor a; do last=$a; done\nexec sh -c \"$last\"\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_SSH_COMMAND", fake)
	t.Setenv("SSH_AUTH_SOCK", "/daemon/own.sock")

	fetch := func(ssh map[string]string) string {
		t.Helper()
		s := &session{b: &Builder{cfg: Config{Root: tmp}}, opts: Options{SSH: ssh}}
		g, isGit, err := parseGitSource("git@localhost:" + repo + "#main:d")
		if err != nil || !isGit {
			t.Fatalf("parse: %v %v", isGit, err)
		}
		jobs, keys, _, cleanup, err := s.resolveGit(context.Background(), []*gitSource{g}, nil, head[:6])
		if err != nil {
			t.Fatal(err)
		}
		defer cleanup()
		if keys[1] != head {
			t.Fatalf("resolved %s, want %s", keys[1], head)
		}
		dir, err := jobs[0].checkout(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "f"))
		if err != nil || string(b) != "over ssh\n" {
			t.Fatalf("checkout: %q %v", b, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "f")); err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("mode: %v %v", fi.Mode(), err)
		}
		if _, err := os.Stat(filepath.Join(jobs[0].dir, ".git")); err == nil {
			t.Fatal(".git kept without --keep-git-dir")
		}
		l, _ := os.ReadFile(log)
		os.Remove(log)
		return string(l)
	}
	l := fetch(map[string]string{"default": "/forwarded/agent.sock"})
	if !strings.Contains(l, "sock=/forwarded/agent.sock host=") || strings.Contains(l, "own.sock") {
		t.Fatalf("ssh with a forwarded agent saw:\n%s", l)
	}
	if l := fetch(nil); !strings.Contains(l, "sock=/daemon/own.sock") {
		t.Fatalf("ssh without a forwarded agent saw:\n%s", l)
	}
	if ents, _ := filepath.Glob(filepath.Join(tmp, "ctx-git-*")); len(ents) != 0 {
		t.Fatalf("scratch left: %v", ents)
	}
}
