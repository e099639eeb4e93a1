package e2e

import (
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildAddGit: ADD of a git repository served on loopback only (git
// http-backend), BuildKit's syntax: a tag's subdirectory, the default
// branch, a full and an abbreviated commit with --checksum, .git dropped
// by default and kept with --keep-git-dir (checked out on the branch),
// BuildKit's modes, --chown, --exclude, the query syntax; an unchanged
// ref is a cache hit and a moved branch a miss; a missing ref, a wrong checksum, COPY of a git URL and
// the file:// and ext:: transports are clear errors (ext:: runs
// nothing); the docker CLI's classic builder path builds it the same.
func TestBuildAddGit(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox("busybox:latest")
	bt := bins.cli
	work, srv := t.TempDir(), t.TempDir()
	genv := []string{"GIT_AUTHOR_NAME=e2e", "GIT_AUTHOR_EMAIL=e2e@example.invalid", "GIT_COMMITTER_NAME=e2e", "GIT_COMMITTER_EMAIL=e2e@example.invalid", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + work}
	writeFile(t, filepath.Join(work, "sub", "hello.txt"), "v1\n")
	writeFile(t, filepath.Join(work, "README"), "readme\n")
	writeFile(t, filepath.Join(work, "bin", "run.sh"), "#!/bin/sh\n")
	if err := os.Chmod(filepath.Join(work, "bin", "run.sh"), 0o700); err != nil {
		t.Fatal(err)
	}
	runCmd(t, work, genv, "git", "init", "-q", "-b", "main")
	runCmd(t, work, genv, "git", "add", ".")
	runCmd(t, work, genv, "git", "commit", "-q", "-m", "one")
	runCmd(t, work, genv, "git", "tag", "-a", "-m", "v1", "v1")
	c1 := strings.TrimSpace(runCmd(t, work, genv, "git", "rev-parse", "HEAD"))
	writeFile(t, filepath.Join(work, "sub", "hello.txt"), "v2\n")
	runCmd(t, work, genv, "git", "commit", "-q", "-am", "two")
	runCmd(t, srv, genv, "git", "clone", "-q", "--bare", work, filepath.Join(srv, "repo.git"))
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(&cgi.Handler{Path: git, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + srv, "GIT_HTTP_EXPORT_ALL=1"}})
	defer hs.Close()
	url := hs.URL + "/repo.git"

	build := func(bin, tag, dockerfile string) string {
		t.Helper()
		dir := buildDir(t, map[string]string{"Dockerfile": dockerfile})
		args := []string{"-t", tag, dir}
		if bin == bt {
			args = append([]string{"--progress", "classic"}, args...)
		}
		return d.mustBuild(bin, nil, args...)
	}
	fails := func(dockerfile, want string) {
		t.Helper()
		dir := buildDir(t, map[string]string{"Dockerfile": dockerfile})
		if o, e, code := d.cli(bt, nil, "build", dir); code == 0 || !strings.Contains(o+e, want) {
			t.Fatalf("%q: exit %d, want an error with %q:\n%s\n%s", dockerfile, code, want, o, e)
		}
	}

	build(bt, "addgit:1", "FROM busybox\n"+
		"ADD "+url+"#v1:sub /tag/\n"+
		"ADD "+url+" /head\n"+
		"ADD --keep-git-dir=true "+url+"#main /kept\n"+
		"ADD --checksum="+c1[:8]+" "+url+"#"+c1+" /commit\n"+
		"ADD --chown=1000:1000 "+url+"#"+c1[:7]+":sub /short\n"+
		"ADD --exclude=README --exclude=sub "+url+"?tag=v1 /ex/\n")
	got := d.output(bt, "run", "--rm", "addgit:1", "sh", "-c",
		"cat /tag/hello.txt /head/sub/hello.txt /kept/sub/hello.txt /commit/sub/hello.txt /short/hello.txt; "+
			"ls -a /tag /head /ex | tr '\\n' ' '; echo; cat /kept/.git/HEAD; test -e /commit/.git || echo no-git; "+
			"stat -c '%a %n' /head/bin/run.sh /head/README /head/bin; stat -c '%u:%g' /short/hello.txt")
	want := "v1\nv2\nv2\nv1\nv1\n" +
		"/ex: . .. bin  /head: . .. README bin sub  /tag: . .. hello.txt \n" +
		"ref: refs/heads/main\nno-git\n" +
		"755 /head/bin/run.sh\n644 /head/README\n755 /head/bin\n1000:1000\n"
	if got != want {
		t.Fatalf("image content:\n%s\nwant\n%s", got, want)
	}

	// Cache: unchanged refs hit; a branch that moved is fetched again,
	// the pinned tag stays cached.
	df := "FROM busybox\nADD " + url + "#v1:sub /tag/\nADD " + url + " /head\nRUN cat /head/sub/hello.txt > /out\n"
	build(bt, "addgit:2", df)
	if out := build(bt, "addgit:2", df); strings.Count(out, "Using cache") != 3 {
		t.Fatalf("unchanged rebuild, want 3 cache hits:\n%s", out)
	}
	writeFile(t, filepath.Join(work, "sub", "hello.txt"), "v3\n")
	runCmd(t, work, genv, "git", "commit", "-q", "-am", "three")
	runCmd(t, work, genv, "git", "push", "-q", filepath.Join(srv, "repo.git"), "main")
	if out := build(bt, "addgit:3", df); strings.Count(out, "Using cache") != 1 {
		t.Fatalf("moved branch, want only the tag's ADD cached:\n%s", out)
	}
	if got := d.output(bt, "run", "--rm", "addgit:3", "cat", "/out"); got != "v3\n" {
		t.Fatalf("after the branch moved: %q", got)
	}

	fails("FROM busybox\nADD "+url+"#nosuchref /x\n", "does not contain ref nosuchref")
	fails("FROM busybox\nADD --checksum=0123abc "+url+"#v1 /x\n", "expected checksum to match 0123abc, got "+c1)
	fails("FROM busybox\nCOPY "+url+" /x\n", "source can't be a git ref for COPY")
	fails("FROM busybox\nADD file://"+filepath.Join(srv, "repo.git")+" /x\n", "the file transport is not allowed")
	marker := filepath.Join(t.TempDir(), "pwned")
	fails("FROM busybox\nADD [\"ext::sh -c touch% "+marker+"\", \"/x\"]\n", "the ext transport is not allowed")
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the ext:: transport ran a command")
	}

	// The docker CLI (classic builder API) builds the same Dockerfile.
	build(bins.docker, "addgit:docker", "FROM busybox\nADD --keep-git-dir=true "+url+"#v1 /k\n")
	if got := d.output(bt, "run", "--rm", "addgit:docker", "sh", "-c", "cat /k/sub/hello.txt; test -d /k/.git && echo git"); got != "v1\ngit\n" {
		t.Fatalf("docker build: %q", got)
	}
}
