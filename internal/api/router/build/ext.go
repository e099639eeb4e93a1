package build

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ContextHeader is the berth CLI's header naming a context directory the
// daemon reads in place (a berth extension for clients on the daemon's
// unix socket, which is root-equivalent anyway): base64 of a JSON
// ContextRef. The request body is then empty.
const ContextHeader = "X-Berth-Build-Context"

// SSHHeader carries `build --ssh` sources: base64 of a JSON object of IDs
// to agent socket paths on the daemon's host.
const SSHHeader = "X-Berth-Build-Ssh"

// ContextRef names a context directory with its device and inode as the
// client saw them.
type ContextRef struct {
	Dir string `json:"dir"`
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// parseExt reads berth's build extensions (context by reference, SSH
// agent sockets) and checks the remote parameter: only git URLs, which
// the backend clones (as dockerd does).
func parseExt(r *http.Request, o *Options) error {
	local := overUnixSocket(r)
	if !local && (r.Header.Get(ContextHeader) != "" || r.Header.Get(SSHHeader) != "") {
		return errdefs.Newf(errdefs.InvalidArgument, "%s and %s are only accepted on the daemon's unix socket", ContextHeader, SSHHeader)
	}
	if h := r.Header.Get(ContextHeader); h != "" {
		var ref ContextRef
		b, err := base64.StdEncoding.DecodeString(h)
		if err == nil {
			err = json.Unmarshal(b, &ref)
		}
		if err != nil || ref.Dir == "" {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid %s header", ContextHeader)
		}
		o.ContextRef = &ref
	}
	if h := r.Header.Get(SSHHeader); h != "" {
		b, err := base64.StdEncoding.DecodeString(h)
		if err == nil {
			err = json.Unmarshal(b, &o.SSH)
		}
		if err != nil {
			return errdefs.Newf(errdefs.InvalidArgument, "invalid %s header", SSHHeader)
		}
	}
	if o.Remote != "" && !IsGitURL(o.Remote) {
		return errdefs.Newf(errdefs.NotImplemented, "remote build contexts other than git repositories are not supported")
	}
	return nil
}

// overUnixSocket reports whether r came in on a unix socket (a client on
// the daemon's host, with the socket's root-equivalent access).
func overUnixSocket(r *http.Request) bool {
	_, ok := r.Context().Value(http.LocalAddrContextKey).(*net.UnixAddr)
	return ok
}

// IsGitURL is dockerd's test for a git remote: an http(s) URL ending in
// .git (optionally with a #fragment), or one starting git://, git@ or
// github.com/.
func IsGitURL(s string) bool {
	if (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")) && gitSuffix.MatchString(s) {
		return true
	}
	for _, p := range []string{"git://", "git@", "github.com/"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

var gitSuffix = regexp.MustCompile(`\.git(?:#.+)?$`)
