package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Berth's extensions of POST /build for a local daemon (the headers
// internal/api/router/build reads).
const (
	// contextHeader names the context directory, which the daemon then
	// reads in place instead of a tar of it.
	contextHeader = "X-Berth-Build-Context"
	// sshHeader maps --ssh IDs to agent socket paths.
	sshHeader = "X-Berth-Build-Ssh"
	// errContextNotVisible is the daemon's answer when the directory is
	// not the same one on its side (another mount namespace, another
	// host): the context is then sent as a tar.
	errContextNotVisible = "build context directory is not visible to the daemon"
)

// isGitContext is dockerd's test for a git context: an http(s) URL ending
// in .git (optionally with a #fragment), or git://, git@, github.com/.
func isGitContext(s string) bool {
	if (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")) && gitContextSuffix().MatchString(s) {
		return true
	}
	for _, p := range []string{"git://", "git@", "github.com/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

var gitContextSuffix = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\.git(?:#.+)?$`) })

func (c *Cli) setHeader(k, v string) {
	if c.headers == nil {
		c.headers = map[string]string{}
	}
	c.headers[k] = v
}

// contextByReference reports whether the context directory can be passed
// by reference: a directory holding its Dockerfile, a daemon on a unix
// socket (BERTH_BUILD_CONTEXT=tar forces the tar). It sets the header.
func (c *Cli) contextByReference(arg, file string) bool {
	if os.Getenv("BERTH_BUILD_CONTEXT") == "tar" || arg == "-" || file == "-" || isGitContext(arg) || strings.Contains(arg, "://") {
		return false
	}
	host, err := c.resolveHost()
	if err != nil || !strings.HasPrefix(host, "unix://") {
		return false
	}
	abs, err := filepath.Abs(arg)
	if err != nil {
		return false
	}
	if file != "" {
		f, _ := filepath.Abs(file)
		if rel, err := filepath.Rel(abs, f); err != nil || strings.HasPrefix(rel, "..") {
			return false
		}
	}
	var st syscall.Stat_t
	if syscall.Stat(abs, &st) != nil || st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return false
	}
	b, _ := json.Marshal(map[string]any{"dir": abs, "dev": st.Dev, "ino": st.Ino})
	c.setHeader(contextHeader, base64.StdEncoding.EncodeToString(b))
	return true
}

// referenceContext is the request for a context passed by reference: an
// empty body, the Dockerfile's name relative to the context and its text.
func referenceContext(arg, file string) (io.Reader, string, []byte) {
	name := "Dockerfile"
	if file != "" {
		abs, _ := filepath.Abs(arg)
		f, _ := filepath.Abs(file)
		rel, _ := filepath.Rel(abs, f)
		name = filepath.ToSlash(rel)
	}
	text, _ := os.ReadFile(filepath.Join(arg, filepath.FromSlash(name)))
	return http.NoBody, name, text
}

// dropContextReference forgets the reference (the daemon could not see
// the directory): the next client sends a tar.
func (c *Cli) dropContextReference() {
	delete(c.headers, contextHeader)
	if c.api != nil {
		_ = c.api.Close()
		c.api = nil
	}
}

func isContextNotVisible(err error) bool {
	return err != nil && strings.Contains(err.Error(), errContextNotVisible)
}

// sshForward reads --ssh specs (docker's format: default|ID[=SOCKET|KEY[,KEY]])
// into the SSH header. "default" without a path is $SSH_AUTH_SOCK; key
// files are served by a private ssh-agent this command starts (and
// stop ends). The daemon relays RUN --mount=type=ssh connections to the
// sockets, so they must be reachable on its host.
func (c *Cli) sshForward(specs []string) (stop func(), err error) {
	stop = func() {}
	if len(specs) == 0 {
		return stop, nil
	}
	m := map[string]string{}
	var agents []*exec.Cmd
	var dirs []string
	stop = func() {
		for _, a := range agents {
			_ = a.Process.Kill()
			_ = a.Wait()
		}
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	for _, spec := range specs {
		id, paths, _ := strings.Cut(spec, "=")
		if id == "" {
			return stop, fmt.Errorf("invalid --ssh %q", spec)
		}
		if paths == "" {
			if id != "default" {
				return stop, fmt.Errorf("invalid --ssh %q: ID=SOCKET|KEY[,KEY] (or default for $SSH_AUTH_SOCK)", spec)
			}
			paths = os.Getenv("SSH_AUTH_SOCK")
			if paths == "" {
				return stop, errors.New("--ssh default: SSH_AUTH_SOCK is not set")
			}
		}
		list := strings.Split(paths, ",")
		if fi, err := os.Stat(list[0]); err == nil && fi.Mode()&os.ModeSocket != 0 && len(list) == 1 {
			abs, _ := filepath.Abs(list[0])
			m[id] = abs
			continue
		}
		// Key files: a private agent holding them.
		dir, err := os.MkdirTemp("", "berth-ssh-")
		if err != nil {
			return stop, err
		}
		dirs = append(dirs, dir)
		sock := filepath.Join(dir, "agent.sock")
		agent := exec.Command("ssh-agent", "-D", "-a", sock)
		agent.Stdout, agent.Stderr = io.Discard, io.Discard
		if err := agent.Start(); err != nil {
			return stop, fmt.Errorf("--ssh %s: starting ssh-agent: %w", id, err)
		}
		agents = append(agents, agent)
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := os.Stat(sock); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return stop, fmt.Errorf("--ssh %s: ssh-agent did not start", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
		for _, k := range list {
			add := exec.Command("ssh-add", "-q", k)
			add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock, "SSH_ASKPASS_REQUIRE=never")
			add.Stdin = nil
			if out, err := add.CombinedOutput(); err != nil {
				return stop, fmt.Errorf("--ssh %s: ssh-add %s: %v: %s", id, k, err, strings.TrimSpace(string(out)))
			}
		}
		m[id] = sock
	}
	b, _ := json.Marshal(m)
	c.setHeader(sshHeader, base64.StdEncoding.EncodeToString(b))
	return stop, nil
}
