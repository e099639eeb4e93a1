package build

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/moby/api/types/mount"

	"github.com/berth-dev/berth/internal/errdefs"
)

// sshMount serves RUN --mount=type=ssh: a unix socket of the builder's
// own (owner and mode from the mount's uid, gid and mode, 0600 root by
// default) bind-mounted at the target for this RUN only, each connection
// to it relayed to the agent socket the client forwarded under the
// mount's id (berth build --ssh). An id the client did not forward is an
// error when the mount is required and no mount otherwise. The socket is
// a mount: it is never part of the step's layer.
func (s *session) sshMount(m *instructions.Mount, target string) (*mount.Mount, func(), error) {
	id := m.CacheID
	if id == "" {
		id = "default"
	}
	src, ok := s.opts.SSH[id]
	if !ok {
		if m.Required {
			return nil, nil, errdefs.Newf(errdefs.InvalidArgument, "no SSH key %q forwarded from the client (berth build --ssh %s=...)", id, id)
		}
		return nil, func() {}, nil
	}
	// Unix socket paths are short: the data root may be deep.
	base := s.b.cfg.Root
	if len(base) > 80 {
		base = ""
	}
	dir, err := os.MkdirTemp(base, "mnt-ssh-")
	if err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(dir, "agent")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	mode := os.FileMode(0o600)
	if m.Mode != nil {
		mode = os.FileMode(*m.Mode) & os.ModePerm
	}
	uid, gid := 0, 0
	if m.UID != nil {
		uid = int(*m.UID)
	}
	if m.GID != nil {
		gid = int(*m.GID)
	}
	if err := os.Chmod(sock, mode); err == nil {
		err = os.Lchown(sock, uid, gid)
	}
	if err != nil {
		ln.Close()
		os.RemoveAll(dir)
		return nil, nil, err
	}
	r := &sshRelay{ln: ln, src: src, conns: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.serve()
	cleanup := func() {
		r.close()
		os.RemoveAll(dir)
	}
	return &mount.Mount{Type: mount.TypeBind, Source: sock, Target: target}, cleanup, nil
}

// sshRelay relays connections on ln to the agent socket src.
type sshRelay struct {
	ln  *net.UnixListener
	src string
	wg  sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
}

func (r *sshRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = struct{}{}
	return true
}

func (r *sshRelay) serve() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if !r.track(c) {
			continue
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			up, err := net.Dial("unix", r.src)
			if err != nil {
				return
			}
			if !r.track(up) {
				return
			}
			defer up.Close()
			done := make(chan struct{})
			go func() {
				io.Copy(up, c)
				if cw, ok := up.(interface{ CloseWrite() error }); ok {
					cw.CloseWrite()
				}
				close(done)
			}()
			io.Copy(c, up)
			if cw, ok := c.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
			<-done
		}()
	}
}

// close stops accepting, cuts open relays and waits for them.
func (r *sshRelay) close() {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.ln.Close()
	r.wg.Wait()
}
