package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"golang.org/x/term"
)

// defaultDetachKeys is docker's detach sequence.
const defaultDetachKeys = "ctrl-p,ctrl-q"

func isTerminalFd(fd uintptr) bool { return term.IsTerminal(int(fd)) }

// parseDetachKeys converts "ctrl-p,ctrl-q" style sequences to bytes.
func parseDetachKeys(keys string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(keys, ",") {
		k = strings.TrimSpace(k)
		if len(k) == 1 {
			out = append(out, k[0])
			continue
		}
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "ctrl-") || len(lk) != 6 {
			return nil, fmt.Errorf("Unknown character: '%s'", k)
		}
		c := lk[5]
		switch {
		case c >= 'a' && c <= 'z':
			out = append(out, c-'a'+1)
		case c == '@':
			out = append(out, 0)
		case c == '[':
			out = append(out, 27)
		case c == '\\':
			out = append(out, 28)
		case c == ']':
			out = append(out, 29)
		case c == '^':
			out = append(out, 30)
		case c == '_':
			out = append(out, 31)
		default:
			return nil, fmt.Errorf("Unknown character: '%s'", k)
		}
	}
	return out, nil
}

// errDetached is returned when the user typed the detach sequence.
var errDetached = errors.New("read escape sequence")

// escapeProxy passes input through until the detach sequence is read. Bytes
// of a partial match are held back and released if the sequence breaks.
type escapeProxy struct {
	r       io.Reader
	keys    []byte
	matched int
}

func (p *escapeProxy) Read(buf []byte) (int, error) {
	if len(p.keys) == 0 {
		return p.r.Read(buf)
	}
	tmp := make([]byte, len(buf))
	n, err := p.r.Read(tmp)
	out := buf[:0]
	for _, b := range tmp[:n] {
		if b == p.keys[p.matched] {
			p.matched++
			if p.matched == len(p.keys) {
				return len(out), errDetached
			}
			continue
		}
		if p.matched > 0 {
			out = append(out, p.keys[:p.matched]...)
			p.matched = 0
		}
		if b == p.keys[0] {
			p.matched = 1
			continue
		}
		out = append(out, b)
	}
	return copy(buf, out), err
}

// streamOptions configures pumpStreams.
type streamOptions struct {
	stdin      io.Reader // nil when stdin is not attached
	stdout     io.Writer
	stderr     io.Writer
	tty        bool
	detachKeys []byte
}

// pumpStreams copies between the local streams and a hijacked connection:
// output is demultiplexed unless the container has a TTY, input is copied
// until EOF and then the write side is half-closed so the container sees
// the end of its stdin. It returns when the output ends, or errDetached
// when the detach sequence was typed.
func pumpStreams(ctx context.Context, resp *client.HijackedResponse, o streamOptions) error {
	outDone := make(chan error, 1)
	go func() {
		var err error
		if o.tty {
			_, err = io.Copy(o.stdout, resp.Reader)
		} else {
			_, err = stdcopy.StdCopy(o.stdout, o.stderr, resp.Reader)
		}
		outDone <- err
	}()
	inDone := make(chan error, 1)
	if o.stdin != nil {
		go func() {
			in := io.Reader(&escapeProxy{r: o.stdin, keys: o.detachKeys})
			_, err := io.Copy(resp.Conn, in)
			if errors.Is(err, errDetached) {
				inDone <- err
				return
			}
			_ = resp.CloseWrite()
			inDone <- nil
		}()
	}
	for {
		select {
		case err := <-outDone:
			if err != nil && isClosedConnErr(err) {
				err = nil
			}
			return err
		case err := <-inDone:
			if errors.Is(err, errDetached) {
				return err
			}
			// Stdin ended and was half-closed: keep copying the output
			// until the container closes the stream.
			inDone = nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func isClosedConnErr(err error) bool {
	return strings.Contains(err.Error(), "use of closed network connection")
}

// rawTerminal puts the terminal behind in/out into raw mode when tty is set
// and returns a function restoring it.
func (c *Cli) rawTerminal(tty, stdin bool) func() {
	var restores []func()
	if tty && stdin {
		if fd, ok := isTerminalReader(c.in); ok {
			if st, err := term.MakeRaw(int(fd)); err == nil {
				restores = append(restores, func() { _ = term.Restore(int(fd), st) })
			}
		}
	}
	return func() {
		for _, r := range restores {
			r()
		}
	}
}

// terminalSize returns the size of the terminal behind stdout.
func (c *Cli) terminalSize() (h, w uint, ok bool) {
	fd, isTerm := isTerminalWriter(c.out)
	if !isTerm {
		return 0, 0, false
	}
	width, height, err := term.GetSize(int(fd))
	if err != nil || width == 0 || height == 0 {
		return 0, 0, false
	}
	return uint(height), uint(width), true
}

// monitorTTYSize resizes the container (or exec) TTY now and on SIGWINCH
// until ctx ends.
func (c *Cli) monitorTTYSize(ctx context.Context, resize func(h, w uint)) {
	if h, w, ok := c.terminalSize(); ok {
		resize(h, w)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				if h, w, ok := c.terminalSize(); ok {
					resize(h, w)
				}
			}
		}
	}()
}

// proxySignals forwards the signals berth receives to the container until
// ctx ends (docker's --sig-proxy).
// signalProxyReady, when set (by tests), is called once proxySignals has
// registered its handler for startSignals (all false) and again once for
// every signal (all true), so a test can send a signal knowing it will be
// forwarded rather than take the default action.
var signalProxyReady func(all bool)

func proxySignals(ctx context.Context, api *client.Client, id string) {
	proxySignalsStaged(ctx, api, id)()
}

// startSignals are the signals run proxies from the start: the ones users
// and supervisors send (interrupt, terminate, hang-up, quit, the user
// signals) and job control. Registering a signal costs a round trip to the
// Go runtime's signal-mask thread, which is locked to its own OS thread:
// two hand-offs of the processor between threads each way. All ~60 of
// them took ~0.5-1 ms of both CPUs on the path of `run`, and registered
// once the container had started they still cost ~120 thread wake-ups
// beside its start and exit; so the rest are added once the container
// has run for restSignalsDelay (a short-lived one never pays for them).
// Until then such a signal takes the CLI's default action, as every
// signal does in docker's CLI until it registers them (before the start).
var startSignals = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2,
	syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU,
}

// restSignalsDelay is how long after the start run registers the signals
// that are not startSignals.
var restSignalsDelay = 100 * time.Millisecond

// proxySignalsStaged is proxySignals registering startSignals at once and
// every other signal restSignalsDelay after the returned function is
// called (run calls it once the container has started).
func proxySignalsStaged(ctx context.Context, api *client.Client, id string) (all func()) {
	ch := make(chan os.Signal, 128)
	rest := make(chan struct{})
	var once sync.Once
	ready := signalProxyReady // read here: the goroutine may outlive the caller
	// Registering takes a while: do it off the path that attaches and
	// starts the container.
	go func() {
		signal.Notify(ch, startSignals...)
		defer signal.Stop(ch)
		if ready != nil {
			ready(false)
		}
		more := (<-chan struct{})(rest)
		for {
			select {
			case <-ctx.Done():
				return
			case <-more:
				more = nil
				signal.Notify(ch)
				if ready != nil {
					ready(true)
				}
			case s := <-ch:
				sig, ok := s.(syscall.Signal)
				if !ok {
					continue
				}
				switch sig {
				case syscall.SIGCHLD, syscall.SIGPIPE, syscall.SIGURG, syscall.SIGWINCH:
					continue
				}
				name := signalName(sig)
				if name == "" {
					continue
				}
				_, _ = api.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: name})
			}
		}
	}()
	return func() {
		once.Do(func() { time.AfterFunc(restSignalsDelay, func() { close(rest) }) })
	}
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGBUS: "BUS", syscall.SIGCONT: "CONT",
	syscall.SIGFPE: "FPE", syscall.SIGHUP: "HUP", syscall.SIGILL: "ILL", syscall.SIGINT: "INT",
	syscall.SIGIO: "IO", syscall.SIGKILL: "KILL", syscall.SIGPROF: "PROF", syscall.SIGPWR: "PWR",
	syscall.SIGQUIT: "QUIT", syscall.SIGSEGV: "SEGV", syscall.SIGSTKFLT: "STKFLT", syscall.SIGSTOP: "STOP",
	syscall.SIGSYS: "SYS", syscall.SIGTERM: "TERM", syscall.SIGTRAP: "TRAP", syscall.SIGTSTP: "TSTP",
	syscall.SIGTTIN: "TTIN", syscall.SIGTTOU: "TTOU", syscall.SIGUSR1: "USR1", syscall.SIGUSR2: "USR2",
	syscall.SIGVTALRM: "VTALRM", syscall.SIGXCPU: "XCPU", syscall.SIGXFSZ: "XFSZ",
}

func signalName(s syscall.Signal) string {
	if n, ok := signalNames[s]; ok {
		return n
	}
	if s >= 34 && s <= 64 {
		return fmt.Sprint(int(s))
	}
	return ""
}
