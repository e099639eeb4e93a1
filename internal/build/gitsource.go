package build

import (
	"bufio"
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// gitSource is an ADD source naming a git repository, with BuildKit's
// syntax: an http(s) URL whose path ends in .git, a git:// or ssh:// URL,
// or an scp-like address (user@host:path), each with an optional
// #ref[:subdir] fragment and ?ref=|tag=|branch=|subdir=|checksum=|commit=|
// keep-git-dir=|submodules= query.
type gitSource struct {
	src      string // as written
	remote   string // what git is given: no fragment, no query
	ref      string // branch, tag, full ref name or commit; "" the default branch
	subdir   string // cleaned, relative; "" the root
	checksum string // a commit (prefix) the ref must resolve to
	keep     *bool  // keep-git-dir from the query
	noSubmod bool   // submodules=false
}

var (
	schemeRe    = regexp.MustCompile(`^([a-zA-Z][a-zA-Z0-9+.-]*)://`)
	scpRe       = regexp.MustCompile(`^([a-zA-Z0-9_-]+)@([a-zA-Z0-9.-]+):(.*?)(?:\?(.*?))?(?:#(.*))?$`)
	transportRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*::`)
	hexRe       = regexp.MustCompile(`^[0-9a-f]+$`)
)

// parseGitSource reports whether src names a git repository and parses
// it. A transport git would run a program for (ext::) or read the
// daemon host's files with (file://) is refused with an error, not taken
// as a local path, so the refusal is clear.
func parseGitSource(src string) (*gitSource, bool, error) {
	if transportRe.MatchString(src) {
		return nil, true, errdefs.Newf(errdefs.InvalidArgument, "git source %q: the %s transport is not allowed", src, strings.SplitN(src, "::", 2)[0])
	}
	g := &gitSource{src: src}
	var fragment, rawQuery string
	if m := schemeRe.FindStringSubmatch(src); m != nil {
		scheme := strings.ToLower(m[1])
		switch scheme {
		case "http", "https", "git", "ssh":
		case "file":
			return nil, true, errdefs.Newf(errdefs.InvalidArgument, "git source %q: the file transport is not allowed", src)
		default:
			return nil, false, nil
		}
		u, err := url.Parse(src)
		if err != nil {
			if scheme == "http" || scheme == "https" {
				return nil, false, nil
			}
			return nil, true, errdefs.With(errdefs.InvalidArgument, err)
		}
		if (scheme == "http" || scheme == "https") && !strings.HasSuffix(u.Path, ".git") {
			return nil, false, nil // a plain URL to download
		}
		fragment, rawQuery = u.Fragment, u.RawQuery
		u.Fragment, u.RawFragment, u.RawQuery = "", "", ""
		g.remote = u.String()
	} else if m := scpRe.FindStringSubmatch(src); m != nil {
		g.remote = m[1] + "@" + m[2] + ":" + m[3]
		rawQuery, fragment = m[4], m[5]
	} else {
		return nil, false, nil
	}
	if fragment != "" {
		ref, sub, _ := strings.Cut(fragment, ":")
		g.ref, g.subdir = ref, sub
	}
	if rawQuery != "" {
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return nil, true, errdefs.Newf(errdefs.InvalidArgument, "git source %q: %v", g.display(), err)
		}
		if err := g.query(q); err != nil {
			return nil, true, err
		}
	}
	g.subdir = strings.TrimPrefix(path.Join("/", g.subdir), "/")
	if strings.HasPrefix(g.remote, "-") || strings.HasPrefix(g.ref, "-") {
		return nil, true, errdefs.Newf(errdefs.InvalidArgument, "invalid git URL %q", g.display())
	}
	return g, true, nil
}

// query applies the URL query's options (BuildKit's names).
func (g *gitSource) query(q url.Values) error {
	bad := func(format string, a ...any) error {
		return errdefs.Newf(errdefs.InvalidArgument, "git source %s: "+format, append([]any{g.display()}, a...)...)
	}
	set := func(dst *string, v, what string) error {
		if *dst != "" && *dst != v {
			return bad("%s conflicts: %q vs %q", what, *dst, v)
		}
		*dst = v
		return nil
	}
	boolean := func(k string, v []string) (bool, error) {
		if len(v) == 0 || v[0] == "" {
			return true, nil
		}
		b, err := strconv.ParseBool(v[0])
		if err != nil {
			return false, bad("invalid %s value: %q", k, v[0])
		}
		return b, nil
	}
	var tag, branch string
	for k, v := range q {
		if len(v) > 1 {
			return bad("query %q has multiple values", k)
		}
		val := ""
		if len(v) == 1 {
			val = v[0]
		}
		if val == "" && k != "keep-git-dir" && k != "submodules" {
			return bad("query %q has no value", k)
		}
		switch k {
		case "ref":
			if err := set(&g.ref, val, "ref"); err != nil {
				return err
			}
		case "tag":
			tag = val
		case "branch":
			branch = val
		case "subdir":
			if err := set(&g.subdir, val, "subdir"); err != nil {
				return err
			}
		case "checksum", "commit":
			g.checksum = val
		case "keep-git-dir":
			b, err := boolean(k, v)
			if err != nil {
				return err
			}
			g.keep = &b
		case "submodules":
			b, err := boolean(k, v)
			if err != nil {
				return err
			}
			g.noSubmod = !b
		default:
			return bad("unexpected query %q", k)
		}
	}
	if tag != "" && branch != "" {
		return bad("branch conflicts with tag")
	}
	if tag != "" {
		if !strings.HasPrefix(tag, "refs/tags/") {
			tag = "refs/tags/" + tag
		}
		return set(&g.ref, tag, "ref")
	}
	if branch != "" {
		if !strings.HasPrefix(branch, "refs/heads/") {
			branch = "refs/heads/" + branch
		}
		return set(&g.ref, branch, "ref")
	}
	return nil
}

// display is the source without credentials (for messages, history and
// a kept .git/config): an http(s) URL's user information is dropped.
func (g *gitSource) display() string {
	return redactGitURL(g.remote)
}

func redactGitURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil || !schemeRe.MatchString(s) {
		return s
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		u.User = nil
	default:
		if _, has := u.User.Password(); has {
			u.User = url.User(u.User.Username())
		}
	}
	return u.String()
}

// gitRunner runs the git binary with only the transports a URL names
// (never ext:: helpers or file://, also for submodules), no prompts and
// no system configuration.
type gitRunner struct {
	bin string
	env []string
}

func newGitRunner(env ...string) (*gitRunner, error) {
	bin, err := exec.LookPath("git")
	if err != nil {
		return nil, errdefs.Newf(errdefs.NotImplemented, "git sources need the git binary on the daemon's host: %v", err)
	}
	return &gitRunner{bin: bin, env: append(append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=true", "GIT_CONFIG_NOSYSTEM=1"), env...)}, nil
}

// run runs git args in dir and returns its standard output.
func (r *gitRunner) run(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, r.bin, append([]string{"-c", "protocol.ext.allow=never", "-c", "protocol.file.allow=never", "-c", "advice.detachedHead=false"}, args...)...)
	cmd.Dir = dir
	cmd.Env = r.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("git %s: %v: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// gitResolved is where a gitSource's ref points now.
type gitResolved struct {
	commit string // full commit ID; "" when ref is an abbreviated commit (known after fetching)
	name   string // the full ref name it came from ("" for a commit)
}

// resolve finds the commit src.ref names on the remote (git ls-remote),
// so the step's cache key is the commit: a branch that moved is fetched
// again, one that did not is a cache hit. A full commit ID needs no
// round trip; an abbreviated one is resolved by fetch.
func (g *gitSource) resolve(ctx context.Context, r *gitRunner) (gitResolved, error) {
	if isFullCommit(g.ref) {
		return gitResolved{commit: g.ref}, nil
	}
	out, err := r.run(ctx, "/", "ls-remote", "--symref", g.remote)
	if err != nil {
		return gitResolved{}, errdefs.With(errdefs.InvalidArgument, fmt.Errorf("unable to list the refs of %s: %s", g.display(), redactErr(err, g)))
	}
	refs := map[string]string{}
	headSym := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		id, name, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			continue
		}
		if t, found := strings.CutPrefix(id, "ref: "); found {
			if name == "HEAD" {
				headSym = t
			}
			continue
		}
		refs[name] = id
	}
	if g.ref == "" {
		id, ok := refs["HEAD"]
		if !ok {
			return gitResolved{}, errdefs.Newf(errdefs.InvalidArgument, "repository %s has no HEAD (an empty repository?)", g.display())
		}
		return gitResolved{commit: id, name: headSym}, nil
	}
	var cands []string
	if strings.HasPrefix(g.ref, "refs/") {
		cands = append(cands, g.ref)
	}
	cands = append(cands, "refs/"+g.ref, "refs/tags/"+g.ref, "refs/heads/"+g.ref)
	for _, c := range cands {
		if id, ok := refs[c]; ok {
			if peeled, ok := refs[c+"^{}"]; ok {
				id = peeled // an annotated tag's commit
			}
			return gitResolved{commit: id, name: c}, nil
		}
	}
	if len(g.ref) >= 4 && hexRe.MatchString(g.ref) {
		return gitResolved{}, nil
	}
	return gitResolved{}, errdefs.Newf(errdefs.InvalidArgument, "repository %s does not contain ref %s", g.display(), g.ref)
}

func isFullCommit(s string) bool {
	return (len(s) == 40 || len(s) == 64) && hexRe.MatchString(s)
}

func redactErr(err error, g *gitSource) string {
	msg := err.Error()
	if d := g.display(); d != g.remote {
		msg = strings.ReplaceAll(msg, g.remote, d)
	}
	return msg
}

// checkChecksum verifies --checksum (or the query's checksum): the
// commit or a prefix of it.
func (g *gitSource) checkChecksum(flag, commit string) error {
	want := flag
	if g.checksum != "" {
		if want != "" && want != g.checksum {
			return errdefs.Newf(errdefs.InvalidArgument, "checksum mismatch %q != %q", want, g.checksum)
		}
		want = g.checksum
	}
	if want == "" {
		return nil
	}
	if !strings.HasPrefix(commit, strings.ToLower(want)) {
		return errdefs.Newf(errdefs.InvalidArgument, "ADD %s: expected checksum to match %s, got %s", g.display(), want, commit)
	}
	return nil
}

// fetch checks the resolved commit out into dir (which must not exist)
// and returns the commit: a shallow fetch of the ref (or of the commit),
// the whole history when the server hands out neither that way or the
// ref is an abbreviated commit; submodules; then .git removed unless
// keep (a kept .git has the branch checked out as a local branch and its
// origin without credentials). File modes are BuildKit's: 0644, 0755
// when executable, directories 0755.
func (g *gitSource) fetch(ctx context.Context, r *gitRunner, res gitResolved, dir string, keep bool) (string, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	git := func(args ...string) (string, error) { return r.run(ctx, dir, args...) }
	if _, err := git("init", "-q"); err != nil {
		return "", err
	}
	if _, err := git("remote", "add", "origin", g.remote); err != nil {
		return "", err
	}
	fail := func(err error) (string, error) {
		return "", errdefs.With(errdefs.InvalidArgument, fmt.Errorf("unable to fetch %s: %s", g.display(), redactErr(err, g)))
	}
	commit := res.commit
	fetched := false
	if res.name != "" {
		spec := "+" + res.name
		local := ""
		switch {
		case strings.HasPrefix(res.name, "refs/heads/"):
			local = "refs/remotes/origin/" + strings.TrimPrefix(res.name, "refs/heads/")
		case strings.HasPrefix(res.name, "refs/tags/"):
			local = res.name
		}
		if local != "" {
			spec += ":" + local
		}
		if _, err := git("fetch", "-q", "--depth", "1", "origin", spec); err != nil {
			return fail(err)
		}
		got, err := git("rev-parse", "--verify", "-q", "FETCH_HEAD^{commit}")
		// A ref that moved since it was resolved: the resolved commit.
		fetched = err == nil && strings.TrimSpace(got) == commit
	}
	if !fetched && commit != "" {
		if _, err := git("fetch", "-q", "--depth", "1", "origin", commit); err == nil {
			fetched = true
		}
	}
	if !fetched {
		// The whole history: a commit the server will not give by name.
		if _, err := git("fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"); err != nil {
			return fail(err)
		}
		want := commit
		if want == "" {
			want = g.ref
		}
		got, err := git("rev-parse", "--verify", "-q", want+"^{commit}")
		if err != nil {
			return "", errdefs.Newf(errdefs.InvalidArgument, "repository %s does not contain commit %s", g.display(), want)
		}
		commit = strings.TrimSpace(got)
	}
	if branch, ok := strings.CutPrefix(res.name, "refs/heads/"); ok && keep {
		_, err := git("checkout", "-q", "-B", branch, commit, "--")
		if err != nil {
			return "", err
		}
	} else if _, err := git("checkout", "-q", "--detach", commit, "--"); err != nil {
		return "", err
	}
	if !g.noSubmod {
		if _, err := git("submodule", "update", "-q", "--init", "--recursive", "--depth", "1"); err != nil {
			return fail(err)
		}
	}
	if keep {
		if d := g.display(); d != g.remote {
			if _, err := git("remote", "set-url", "origin", d); err != nil {
				return "", err
			}
		}
	}
	return commit, normalizeCheckout(dir, keep)
}

// normalizeCheckout gives a checkout BuildKit's modes and, unless keep,
// removes .git (and submodules' .git files: a tree never tracks .git);
// a kept .git is left as git wrote it.
func normalizeCheckout(dir string, keep bool) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == ".git" && p != dir {
			if !keep {
				if err := os.RemoveAll(p); err != nil {
					return err
				}
			}
			// A kept .git is git's own business, modes included.
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		case d.IsDir():
			return os.Chmod(p, 0o755)
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			m := fs.FileMode(0o644)
			if fi.Mode()&0o111 != 0 {
				m = 0o755
			}
			return os.Chmod(p, m)
		}
		return nil
	})
}

// gitJob is one git source of an ADD step: resolved before the cache
// lookup, checked out only on a miss (or already, to resolve an
// abbreviated commit).
type gitJob struct {
	g      *gitSource
	r      *gitRunner
	res    gitResolved
	keep   bool
	dir    string // the checkout; made by checkout unless done
	done   bool
	commit string
}

// checkout fetches the job's commit (once) and returns the directory to
// copy: the checkout or its subdirectory.
func (j *gitJob) checkout(ctx context.Context) (string, error) {
	if !j.done {
		commit, err := j.g.fetch(ctx, j.r, j.res, j.dir, j.keep)
		if err != nil {
			return "", err
		}
		j.done, j.commit = true, commit
	}
	if j.g.subdir == "" {
		return j.dir, nil
	}
	p, err := secureJoin(j.dir, j.g.subdir)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		return "", errdefs.Newf(errdefs.InvalidArgument, "subdirectory %s of %s: not a directory", j.g.subdir, j.g.display())
	}
	return p, nil
}

// resolveGit resolves an ADD's git sources: the jobs, the parts of the
// step's cache key (remote, commit, subdir, keep-git-dir, submodules),
// what the history names them by, and a cleanup for the scratch
// directory. A forwarded SSH agent (--ssh default) serves git@ and ssh://
// remotes; without one, the daemon host's SSH setup does.
func (s *session) resolveGit(ctx context.Context, gits []*gitSource, keepFlag *bool, checksum string) ([]*gitJob, []string, string, func(), error) {
	if len(gits) == 0 {
		return nil, nil, "", func() {}, nil
	}
	var env []string
	if sock, ok := s.opts.SSH["default"]; ok {
		env = append(env, "SSH_AUTH_SOCK="+sock)
	}
	r, err := newGitRunner(env...)
	if err != nil {
		return nil, nil, "", nil, err
	}
	tmp, err := os.MkdirTemp(s.b.cfg.Root, "ctx-git-")
	if err != nil {
		return nil, nil, "", nil, err
	}
	cleanup := func() { os.RemoveAll(tmp) }
	var jobs []*gitJob
	var keys, whats []string
	for i, g := range gits {
		keep := keepFlag != nil && *keepFlag
		if g.keep != nil {
			if keepFlag != nil && *keepFlag != *g.keep {
				cleanup()
				return nil, nil, "", nil, errdefs.Newf(errdefs.InvalidArgument, "inconsistent keep-git-dir configuration")
			}
			keep = *g.keep
		}
		res, err := g.resolve(ctx, r)
		if err != nil {
			cleanup()
			return nil, nil, "", nil, err
		}
		j := &gitJob{g: g, r: r, res: res, keep: keep, dir: filepath.Join(tmp, strconv.Itoa(i)), commit: res.commit}
		if res.commit == "" {
			// An abbreviated commit: known once fetched.
			if _, err := j.checkout(ctx); err != nil {
				cleanup()
				return nil, nil, "", nil, err
			}
		}
		if err := g.checkChecksum(checksum, j.commit); err != nil {
			cleanup()
			return nil, nil, "", nil, err
		}
		jobs = append(jobs, j)
		keys = append(keys, g.remote, j.commit, g.subdir, strconv.FormatBool(keep), strconv.FormatBool(!g.noSubmod))
		w := g.display() + "#" + j.commit
		if g.subdir != "" {
			w += ":" + g.subdir
		}
		whats = append(whats, w)
	}
	return jobs, keys, strings.Join(whats, " "), cleanup, nil
}
