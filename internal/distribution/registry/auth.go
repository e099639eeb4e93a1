package registry

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/berth-dev/berth/internal/errdefs"
)

// basicAuth checks HTTP basic credentials against htpasswd-style hashes.
// Verifying a SHA-crypt hash costs thousands of hash rounds, so the last
// credentials that verified for each user are remembered (as a SHA-256 of
// user and password) and a repeat request costs one hash.
type basicAuth struct {
	realm string
	users map[string]string

	mu       sync.Mutex
	verified map[string][32]byte
}

// unknownUserHash is checked against when the user does not exist.
const unknownUserHash = "$6$berthregistry$fD7atPiOyUDFLYAZabFzKBYiRPYHHdTs2fJe4oDr6CEEtY6nyLZfBIPeb/0h.JGqdE9X.N/lEZTaTFUxLCke91"

func newBasicAuth(users map[string]string, realm string) (*basicAuth, error) {
	for u, h := range users {
		if u == "" || strings.Contains(u, ":") {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "htpasswd: invalid user name %q", u)
		}
		if err := validateHash(h); err != nil {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "htpasswd: user %s: %w", u, err)
		}
	}
	return &basicAuth{realm: realm, users: users, verified: map[string][32]byte{}}, nil
}

func (a *basicAuth) check(r *http.Request) bool {
	user, pw, ok := r.BasicAuth()
	if !ok {
		return false
	}
	stored, ok := a.users[user]
	if !ok {
		// Spend the time a real check would, so the response time does
		// not tell which user names exist.
		_, _ = CheckHash(pw, unknownUserHash)
		return false
	}
	key := sha256.Sum256([]byte(user + "\x00" + pw))
	a.mu.Lock()
	prev, seen := a.verified[user]
	a.mu.Unlock()
	if seen && subtle.ConstantTimeCompare(prev[:], key[:]) == 1 {
		return true
	}
	if ok, _ := CheckHash(pw, stored); !ok {
		return false
	}
	a.mu.Lock()
	a.verified[user] = key
	a.mu.Unlock()
	return true
}

// ParseHtpasswd reads "user:hash" lines (blank lines and # comments are
// skipped). See CheckHash for the hash formats.
func ParseHtpasswd(r io.Reader) (map[string]string, error) {
	users := map[string]string{}
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		u, h, ok := strings.Cut(t, ":")
		if !ok || u == "" || h == "" {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "htpasswd line %d: want user:hash", line)
		}
		if err := validateHash(h); err != nil {
			return nil, errdefs.Newf(errdefs.InvalidArgument, "htpasswd line %d (user %s): %w", line, u, err)
		}
		users[u] = h
	}
	return users, sc.Err()
}

// HashPassword returns a SHA-512-crypt hash ("$6$...") of password with a
// random salt, as `openssl passwd -6` or `mkpasswd -m sha-512` produce.
func HashPassword(password string) (string, error) {
	const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	salt := make([]byte, len(b))
	for i, c := range b {
		salt[i] = alphabet[int(c)%len(alphabet)]
	}
	return shaCrypt(sha512Crypt, []byte(password), salt, defaultRounds, false), nil
}

// CheckHash reports whether password matches hash. Accepted formats are
// bcrypt ("$2y$", "$2b$", "$2a$": `htpasswd -B`, what the reference
// registry requires), SHA-256-crypt ("$5$") and SHA-512-crypt ("$6$",
// `openssl passwd -6`), the latter optionally with "rounds=N$".
func CheckHash(password, hash string) (bool, error) {
	if isBcrypt(hash) {
		return checkBcrypt(password, hash)
	}
	p, err := parseCryptHash(hash)
	if err != nil {
		return false, err
	}
	got := shaCrypt(p.alg, []byte(password), []byte(p.salt), p.rounds, p.customRounds)
	return subtle.ConstantTimeCompare([]byte(got), []byte(hash)) == 1, nil
}

func isBcrypt(h string) bool { return strings.HasPrefix(h, "$2") }

// validateHash reports whether h is in an accepted format.
func validateHash(h string) error {
	if isBcrypt(h) {
		_, err := parseBcrypt(h)
		return err
	}
	_, err := parseCryptHash(h)
	return err
}

// SHA-crypt, as specified by Ulrich Drepper ("Unix crypt using SHA-256 and
// SHA-512", 2007-2008).

const (
	defaultRounds = 5000
	minRounds     = 1000
	maxRounds     = 999_999_999
	maxSaltLen    = 16
)

type cryptAlg struct {
	id   string // "5" or "6"
	new  func() hash.Hash
	perm []int // output byte order, three bytes per 4 characters
}

var (
	sha256Crypt = &cryptAlg{id: "5", new: sha256.New, perm: cryptPerm(32, false)}
	sha512Crypt = &cryptAlg{id: "6", new: sha512.New, perm: cryptPerm(64, true)}
)

// cryptPerm builds the byte order of the final encoding: groups i of
// bytes (i, i+k, i+2k), k = size/3, rotated by i mod 3 (rightwards for
// SHA-512, leftwards for SHA-256), then the leftover bytes.
func cryptPerm(size int, right bool) []int {
	k := size / 3
	var out []int
	for i := 0; i < k; i++ {
		g := [3]int{i, i + k, i + 2*k}
		r := i % 3
		if !right && r != 0 {
			r = 3 - r
		}
		out = append(out, g[r], g[(r+1)%3], g[(r+2)%3])
	}
	if size == 32 {
		return append(out, 0, 31, 30) // sentinel 0 stands for a zero byte
	}
	return append(out, 0, 0, 63)
}

type cryptParams struct {
	alg          *cryptAlg
	salt         string
	rounds       int
	customRounds bool
}

func parseCryptHash(h string) (cryptParams, error) {
	var p cryptParams
	switch {
	case strings.HasPrefix(h, "$5$"):
		p.alg = sha256Crypt
	case strings.HasPrefix(h, "$6$"):
		p.alg = sha512Crypt
	default:
		return p, fmt.Errorf("unsupported password hash format (want bcrypt $2y$, or SHA-crypt $5$ or $6$)")
	}
	rest := h[3:]
	p.rounds = defaultRounds
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		n, tail, found := strings.Cut(r, "$")
		v, err := strconv.Atoi(n)
		if !found || err != nil {
			return p, fmt.Errorf("malformed rounds in SHA-crypt hash")
		}
		p.rounds, p.customRounds, rest = min(max(v, minRounds), maxRounds), true, tail
	}
	salt, _, found := strings.Cut(rest, "$")
	if !found {
		return p, fmt.Errorf("malformed SHA-crypt hash")
	}
	if len(salt) > maxSaltLen {
		salt = salt[:maxSaltLen]
	}
	p.salt = salt
	return p, nil
}

func shaCrypt(alg *cryptAlg, pw, salt []byte, rounds int, customRounds bool) string {
	if len(salt) > maxSaltLen {
		salt = salt[:maxSaltLen]
	}
	h := alg.new()
	size := h.Size()

	// B = H(pw salt pw)
	h.Write(pw)
	h.Write(salt)
	h.Write(pw)
	b := h.Sum(nil)

	// A = H(pw salt, B stretched to len(pw), then per bit of len(pw): B or pw)
	h.Reset()
	h.Write(pw)
	h.Write(salt)
	for n := len(pw); n > 0; n -= size {
		h.Write(b[:min(n, size)])
	}
	for n := len(pw); n > 0; n >>= 1 {
		if n&1 != 0 {
			h.Write(b)
		} else {
			h.Write(pw)
		}
	}
	a := h.Sum(nil)

	// P = H(pw repeated len(pw) times) stretched to len(pw)
	h.Reset()
	for range len(pw) {
		h.Write(pw)
	}
	dp := h.Sum(nil)
	p := make([]byte, len(pw))
	for i := range p {
		p[i] = dp[i%size]
	}

	// S = H(salt repeated 16+A[0] times) cut to len(salt)
	h.Reset()
	for range 16 + int(a[0]) {
		h.Write(salt)
	}
	s := h.Sum(nil)[:len(salt)]

	c := a
	for i := range rounds {
		h.Reset()
		if i&1 != 0 {
			h.Write(p)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(s)
		}
		if i%7 != 0 {
			h.Write(p)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(p)
		}
		c = h.Sum(c[:0])
	}

	var out strings.Builder
	out.WriteString("$" + alg.id + "$")
	if customRounds {
		fmt.Fprintf(&out, "rounds=%d$", rounds)
	}
	out.Write(salt)
	out.WriteByte('$')
	const alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	perm := alg.perm
	for i := 0; i+3 <= len(perm); i += 3 {
		chars := 4
		last := i+3 == len(perm)
		var w uint32
		if last && size == 32 {
			w, chars = uint32(c[perm[i+1]])<<8|uint32(c[perm[i+2]]), 3
		} else if last {
			w, chars = uint32(c[perm[i+2]]), 2
		} else {
			w = uint32(c[perm[i]])<<16 | uint32(c[perm[i+1]])<<8 | uint32(c[perm[i+2]])
		}
		for range chars {
			out.WriteByte(alphabet[w&0x3f])
			w >>= 6
		}
	}
	return out.String()
}
