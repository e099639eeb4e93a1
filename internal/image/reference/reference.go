package reference

import (
	// Digests in references may use any algorithm go-digest knows once
	// its hash is linked in; Docker accepts sha256 and sha512.
	_ "crypto/sha256"
	_ "crypto/sha512"
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/opencontainers/go-digest"
)

const (
	// DefaultDomain is the canonical domain of Docker Hub, used when a
	// reference names no registry.
	DefaultDomain = "docker.io"
	// DefaultTag is added by Parse when a reference has neither tag nor
	// digest.
	DefaultTag = "latest"
	// officialPrefix is the namespace of Docker Hub's official images.
	officialPrefix = "library/"
	// legacyDomain is an older spelling of Docker Hub's domain that Docker
	// still accepts and rewrites to DefaultDomain.
	legacyDomain = "index.docker.io"
	// hubRegistryHost serves the registry API for DefaultDomain.
	hubRegistryHost = "registry-1.docker.io"
	// maxNameLength bounds domain + "/" + path, as in Docker.
	maxNameLength = 255
	// maxTagLength bounds a tag, as in Docker.
	maxTagLength = 128
)

// ErrInvalidFormat is wrapped by every error this package returns for a
// string that is not a valid reference.
var ErrInvalidFormat = errors.New("invalid reference format")

// formatError keeps Docker's exact wording while still matching
// errors.Is(err, ErrInvalidFormat).
type formatError struct{ msg string }

func (e *formatError) Error() string { return e.msg }
func (e *formatError) Unwrap() error { return ErrInvalidFormat }

// invalidf returns "invalid reference format: <detail>".
func invalidf(format string, args ...any) error {
	return errdefs.With(errdefs.InvalidArgument,
		&formatError{msg: ErrInvalidFormat.Error() + ": " + fmt.Sprintf(format, args...)})
}

// Reference is a parsed, normalised image reference. The zero value is
// not a valid reference (IsZero reports it). References are comparable
// values: two references are == exactly when their String forms are equal.
type Reference struct {
	domain string
	path   string
	tag    string
	digest digest.Digest
}

// Parse parses s with Docker's normalisation rules and adds the default
// tag "latest" when s has neither a tag nor a digest.
//
//	busybox                          docker.io/library/busybox:latest
//	user/app:v1                      docker.io/user/app:v1
//	localhost:5000/app               localhost:5000/app:latest
//	busybox@sha256:<hex>             docker.io/library/busybox@sha256:<hex>
//	busybox:1.36@sha256:<hex>        tag and digest are both kept
func Parse(s string) (Reference, error) {
	r, err := parse(s)
	if err != nil {
		return Reference{}, err
	}
	if r.tag == "" && r.digest == "" {
		r.tag = DefaultTag
	}
	return r, nil
}

// ParseRepository parses a repository name such as "busybox" or
// "localhost:5000/a/b" and returns it normalised, with no tag and no
// digest. A tag or digest in s is an error.
func ParseRepository(s string) (Reference, error) {
	r, err := parse(s)
	if err != nil {
		return Reference{}, err
	}
	if r.tag != "" || r.digest != "" {
		return Reference{}, invalidf("%q is not a repository name: it has a tag or digest", s)
	}
	return r, nil
}

// ParseNormalized parses s like Parse but never adds a default tag: the
// result has exactly the tag and digest written in s (possibly neither).
func ParseNormalized(s string) (Reference, error) { return parse(s) }

func parse(s string) (Reference, error) {
	if s == "" {
		return Reference{}, invalidf("empty reference")
	}
	if isHex64(s) {
		return Reference{}, errdefs.With(errdefs.InvalidArgument, &formatError{
			msg: fmt.Sprintf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)})
	}
	name, dgst, hasDigest := strings.Cut(s, "@")
	var tag string
	hasTag := false
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, tag, hasTag = name[:i], name[i+1:], true
	}
	domain, repoPath := splitDomain(name)

	// Docker reports case before any other problem, naming the repository
	// path as it would be with "library/" added.
	if strings.ToLower(repoPath) != repoPath {
		return Reference{}, invalidf("repository name (%s) must be lowercase", repoPath)
	}
	if !validDomain(domain) {
		return Reference{}, invalidf("invalid registry domain %q", domain)
	}
	if err := validatePath(repoPath); err != nil {
		return Reference{}, err
	}
	if len(domain)+1+len(repoPath) > maxNameLength {
		return Reference{}, invalidf("repository name must not be more than %d characters", maxNameLength)
	}
	r := Reference{domain: domain, path: repoPath}
	if hasTag {
		if !ValidTag(tag) {
			return Reference{}, invalidf("invalid tag %q: a tag is 1 to %d of [A-Za-z0-9_.-] and must not start with '.' or '-'", tag, maxTagLength)
		}
		r.tag = tag
	}
	if hasDigest {
		d, err := digest.Parse(dgst)
		if err != nil {
			return Reference{}, invalidf("invalid digest %q: %v", dgst, err)
		}
		r.digest = d
	}
	return r, nil
}

// splitDomain separates the registry domain from the repository path,
// applying Docker Hub's defaults. The first component names a registry
// iff it contains '.' or ':' or is "localhost".
func splitDomain(name string) (domain, repoPath string) {
	first, rest, ok := strings.Cut(name, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		domain, repoPath = first, rest
	} else {
		domain, repoPath = DefaultDomain, name
	}
	if domain == legacyDomain {
		domain = DefaultDomain
	}
	if domain == DefaultDomain && repoPath != "" && !strings.Contains(repoPath, "/") {
		repoPath = officialPrefix + repoPath
	}
	return domain, repoPath
}

// validatePath checks the repository path: one or more '/'-separated
// components, each [a-z0-9]+ runs joined by '.', '_', '__' or '-'+.
func validatePath(p string) error {
	if p == "" {
		return invalidf("repository name must have at least one component")
	}
	for _, c := range strings.Split(p, "/") {
		if !validPathComponent(c) {
			if c == "" {
				return invalidf("empty path component in repository name %q", p)
			}
			return invalidf("invalid path component %q in repository name %q: use lowercase letters and digits separated by '.', '_', '__' or '-'", c, p)
		}
	}
	return nil
}

func validPathComponent(c string) bool {
	i := 0
	alnumRun := func() bool {
		start := i
		for i < len(c) && (c[i] >= 'a' && c[i] <= 'z' || c[i] >= '0' && c[i] <= '9') {
			i++
		}
		return i > start
	}
	if !alnumRun() {
		return false
	}
	for i < len(c) {
		switch {
		case c[i] == '.':
			i++
		case c[i] == '_':
			i++
			if i < len(c) && c[i] == '_' {
				i++
			}
		case c[i] == '-':
			for i < len(c) && c[i] == '-' {
				i++
			}
		default:
			return false
		}
		if !alnumRun() {
			return false
		}
	}
	return true
}

// validDomain accepts host names (components of letters, digits and
// inner '-', joined by '.'), bracketed IPv6 addresses, and an optional
// ":port".
func validDomain(d string) bool {
	host, port, hasPort := d, "", false
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 {
			return false
		}
		addr := d[1:end]
		if addr == "" || strings.Trim(addr, "0123456789abcdefABCDEF:") != "" {
			return false
		}
		rest := d[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return false
			}
			return allDigits(rest[1:])
		}
		return true
	}
	if i := strings.LastIndexByte(d, ':'); i >= 0 {
		host, port, hasPort = d[:i], d[i+1:], true
	}
	if hasPort && !allDigits(port) {
		return false
	}
	if host == "" {
		return false
	}
	for _, c := range strings.Split(host, ".") {
		if c == "" || !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
			return false
		}
		for j := 0; j < len(c); j++ {
			if !isAlnum(c[j]) && c[j] != '-' {
				return false
			}
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func isWord(b byte) bool { return isAlnum(b) || b == '_' }

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// ValidTag reports whether tag matches Docker's tag grammar
// [\w][\w.-]{0,127}.
func ValidTag(tag string) bool {
	if tag == "" || len(tag) > maxTagLength || !isWord(tag[0]) {
		return false
	}
	for i := 1; i < len(tag); i++ {
		if !isWord(tag[i]) && tag[i] != '.' && tag[i] != '-' {
			return false
		}
	}
	return true
}

// Domain returns the registry domain, e.g. "docker.io" or
// "localhost:5000". Docker Hub is always "docker.io"; use RegistryHost for
// the host to contact.
func (r Reference) Domain() string { return r.domain }

// Path returns the repository path within the registry, e.g.
// "library/busybox".
func (r Reference) Path() string { return r.path }

// Name returns domain/path, e.g. "docker.io/library/busybox".
func (r Reference) Name() string {
	if r.IsZero() {
		return ""
	}
	return r.domain + "/" + r.path
}

// Tag returns the tag, or "" for an untagged reference.
func (r Reference) Tag() string { return r.tag }

// Digest returns the digest, or "" for a reference without one.
func (r Reference) Digest() digest.Digest { return r.digest }

// IsDigested reports whether r pins a digest.
func (r Reference) IsDigested() bool { return r.digest != "" }

// IsZero reports whether r is the zero Reference.
func (r Reference) IsZero() bool { return r.path == "" }

// String returns the canonical full form, e.g.
// "docker.io/library/busybox:latest" or "localhost:5000/app@sha256:...".
func (r Reference) String() string { return r.Name() + r.suffix() }

// FamiliarName returns the repository as Docker shows it: without
// "docker.io/", and without "library/" for official images.
func (r Reference) FamiliarName() string {
	if r.IsZero() {
		return ""
	}
	if r.domain != DefaultDomain {
		return r.Name()
	}
	if rest, ok := strings.CutPrefix(r.path, officialPrefix); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return r.path
}

// Familiar returns Docker's short form: "busybox:latest",
// "user/app:v1", "localhost:5000/app:v1", "busybox@sha256:...".
func (r Reference) Familiar() string { return r.FamiliarName() + r.suffix() }

func (r Reference) suffix() string {
	s := ""
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}

// Repository returns r without tag and digest.
func (r Reference) Repository() Reference { return Reference{domain: r.domain, path: r.path} }

// WithTag returns r with its tag replaced by tag; a digest is kept.
func (r Reference) WithTag(tag string) (Reference, error) {
	if r.IsZero() {
		return Reference{}, invalidf("no repository to tag")
	}
	if !ValidTag(tag) {
		return Reference{}, invalidf("invalid tag %q: a tag is 1 to %d of [A-Za-z0-9_.-] and must not start with '.' or '-'", tag, maxTagLength)
	}
	r.tag = tag
	return r, nil
}

// WithDigest returns r with its digest replaced by d; a tag is kept.
func (r Reference) WithDigest(d digest.Digest) (Reference, error) {
	if r.IsZero() {
		return Reference{}, invalidf("no repository for digest")
	}
	if err := d.Validate(); err != nil {
		return Reference{}, invalidf("invalid digest %q: %v", d, err)
	}
	r.digest = d
	return r, nil
}

// MarshalText stores the canonical form, so references can be kept in
// JSON as strings.
func (r Reference) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses the text exactly, without adding a default tag.
// Empty text gives the zero Reference.
func (r *Reference) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*r = Reference{}
		return nil
	}
	p, err := parse(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

// FamiliarMatch reports whether pattern (path.Match syntax) matches ref's
// familiar form ("busybox:latest"), familiar name ("busybox"), full form
// ("docker.io/library/busybox:latest") or full name. This is the meaning
// of the Engine API's reference= filter. A malformed pattern matches
// nothing; check it first with ValidPattern.
func FamiliarMatch(pattern string, ref Reference) bool {
	if ref.IsZero() {
		return false
	}
	for _, s := range [...]string{ref.Familiar(), ref.FamiliarName(), ref.String(), ref.Name()} {
		if ok, err := path.Match(pattern, s); err == nil && ok {
			return true
		}
	}
	return false
}

// ValidPattern returns an InvalidArgument error if pattern is not a valid
// path.Match pattern.
func ValidPattern(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return errdefs.Newf(errdefs.InvalidArgument, "invalid reference filter %q: %w", pattern, err)
	}
	return nil
}

// RegistryHost returns the host to contact for the registry API of
// domain: Docker Hub's canonical domain "docker.io" (and its legacy
// spelling "index.docker.io") is served by "registry-1.docker.io"; every
// other domain is its own host.
func RegistryHost(domain string) string {
	if domain == DefaultDomain || domain == legacyDomain {
		return hubRegistryHost
	}
	return domain
}
