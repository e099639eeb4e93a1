package image

import (
	"encoding/json"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// applyChanges applies `--change` Dockerfile instructions to c, with the
// Dockerfile's rules (HEALTHCHECK parsed by the builder's parser): CMD,
// ENTRYPOINT and VOLUME take a JSON array or
// shell form; ENV and LABEL take key=value pairs (quotes and backslashes
// as in a Dockerfile) or the legacy "key value" form; an instruction that
// `docker import` does not allow is an InvalidArgument error.
func applyChanges(c *dockerspec.DockerOCIImageConfig, changes []string) error {
	for _, ch := range changes {
		if err := applyChange(c, ch); err != nil {
			return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("invalid change %q: %w", ch, err))
		}
	}
	return nil
}

func applyChange(c *dockerspec.DockerOCIImageConfig, change string) error {
	line := strings.TrimSpace(change)
	instr, rest := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		instr, rest = line[:i], line[i+1:]
	}
	rest = strings.TrimSpace(rest)
	switch strings.ToUpper(instr) {
	case "CMD":
		c.Cmd = commandForm(rest)
	case "ENTRYPOINT":
		c.Entrypoint = commandForm(rest)
	case "ENV":
		kv, err := keyValues(rest)
		if err != nil {
			return err
		}
		for _, p := range kv {
			c.Env = setEnv(c.Env, p[0], p[1])
		}
	case "LABEL":
		kv, err := keyValues(rest)
		if err != nil {
			return err
		}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for _, p := range kv {
			c.Labels[p[0]] = p[1]
		}
	case "EXPOSE":
		words, err := splitWords(rest)
		if err != nil {
			return err
		}
		if len(words) == 0 {
			return fmt.Errorf("EXPOSE requires at least one argument")
		}
		for _, w := range words {
			ps, err := exposedPorts(w)
			if err != nil {
				return err
			}
			if c.ExposedPorts == nil {
				c.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range ps {
				c.ExposedPorts[p] = struct{}{}
			}
		}
	case "VOLUME":
		vols, ok := jsonArray(rest)
		if !ok {
			var err error
			if vols, err = splitWords(rest); err != nil {
				return err
			}
		}
		if len(vols) == 0 {
			return fmt.Errorf("VOLUME requires at least one argument")
		}
		for _, v := range vols {
			if v == "" {
				return fmt.Errorf("VOLUME specified can not be an empty string")
			}
			if c.Volumes == nil {
				c.Volumes = map[string]struct{}{}
			}
			c.Volumes[v] = struct{}{}
		}
	case "USER":
		if rest == "" {
			return fmt.Errorf("USER requires exactly one argument")
		}
		c.User = rest
	case "WORKDIR":
		if rest == "" {
			return fmt.Errorf("WORKDIR requires exactly one argument")
		}
		if !path.IsAbs(rest) {
			rest = path.Join("/", c.WorkingDir, rest)
		}
		c.WorkingDir = path.Clean(rest)
	case "HEALTHCHECK":
		hc, err := parseHealthcheck(line)
		if err != nil {
			return err
		}
		c.Healthcheck = hc
	case "STOPSIGNAL":
		if rest == "" || strings.ContainsAny(rest, " \t") {
			return fmt.Errorf("STOPSIGNAL requires exactly one argument")
		}
		c.StopSignal = rest
	case "ONBUILD":
		sub, _, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(sub) {
		case "":
			return fmt.Errorf("ONBUILD requires at least one argument")
		case "ONBUILD":
			return fmt.Errorf("chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
		case "FROM", "MAINTAINER":
			return fmt.Errorf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(sub))
		}
		c.OnBuild = append(c.OnBuild, rest)
	case "":
		return fmt.Errorf("empty instruction")
	default:
		return fmt.Errorf("%s is not a valid change command", strings.ToUpper(instr))
	}
	return nil
}

// parseHealthcheck parses a HEALTHCHECK instruction (its flags, NONE, CMD
// in exec or shell form) with the Dockerfile parser the builder uses.
func parseHealthcheck(line string) (*dockerspec.HealthcheckConfig, error) {
	res, err := parser.Parse(strings.NewReader(line + "\n"))
	if err != nil {
		return nil, err
	}
	if len(res.AST.Children) != 1 {
		return nil, fmt.Errorf("HEALTHCHECK: one instruction expected")
	}
	cmd, err := instructions.ParseInstruction(res.AST.Children[0])
	if err != nil {
		return nil, err
	}
	hc, ok := cmd.(*instructions.HealthCheckCommand)
	if !ok {
		return nil, fmt.Errorf("HEALTHCHECK: not a healthcheck")
	}
	return hc.Health, nil
}

// commandForm is the exec form of a JSON array, or the shell form
// wrapped in /bin/sh -c.
func commandForm(s string) []string {
	if args, ok := jsonArray(s); ok {
		return args
	}
	if s == "" {
		return nil
	}
	return []string{"/bin/sh", "-c", s}
}

// jsonArray parses s as a JSON array of strings, as the Dockerfile does
// to decide between exec and shell forms.
func jsonArray(s string) ([]string, bool) {
	if !strings.HasPrefix(s, "[") {
		return nil, false
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, false
	}
	if out == nil {
		out = []string{}
	}
	return out, true
}

// keyValues parses ENV/LABEL arguments: key=value pairs, or the legacy
// single "key value..." form when the first word has no "=".
func keyValues(s string) ([][2]string, error) {
	words, err := splitWordsRaw(s)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("requires at least one argument")
	}
	if !strings.Contains(words[0].raw, "=") {
		key := unquote(words[0].raw)
		val := strings.TrimSpace(s[len(words[0].raw):])
		if val == "" {
			return nil, fmt.Errorf("%s must have two arguments", key)
		}
		return [][2]string{{key, unquote(val)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w.raw, "=")
		if !ok {
			return nil, fmt.Errorf("%q: key=value expected", w.raw)
		}
		k = unquote(k)
		if k == "" {
			return nil, fmt.Errorf("%q: empty key", w.raw)
		}
		out = append(out, [2]string{k, unquote(v)})
	}
	return out, nil
}

type word struct{ raw string }

// splitWordsRaw splits s on unquoted whitespace, keeping each word as
// written (quotes included).
func splitWordsRaw(s string) ([]word, error) {
	var out []word
	start := -1
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if start < 0 {
			if ch == ' ' || ch == '\t' {
				continue
			}
			start = i
		}
		switch {
		case quote == 0 && ch == '\\':
			i++
		case quote == '"' && ch == '\\':
			i++
		case quote == 0 && (ch == '"' || ch == '\''):
			quote = ch
		case quote != 0 && ch == quote:
			quote = 0
		case quote == 0 && (ch == ' ' || ch == '\t'):
			out = append(out, word{raw: s[start:i]})
			start = -1
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unmatched quote %c", quote)
	}
	if start >= 0 {
		out = append(out, word{raw: s[start:]})
	}
	return out, nil
}

func splitWords(s string) ([]string, error) {
	ws, err := splitWordsRaw(s)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = unquote(w.raw)
	}
	return out, nil
}

// unquote removes Dockerfile quoting: 'single' is literal, "double" and
// bare text honour backslash escapes.
func unquote(s string) string {
	var b strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case quote == '\'':
			if ch == '\'' {
				quote = 0
			} else {
				b.WriteByte(ch)
			}
		case ch == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case quote == '"' && ch == '"':
			quote = 0
		case quote == 0 && (ch == '"' || ch == '\''):
			quote = ch
		default:
			b.WriteByte(ch)
		}
	}
	return b.String()
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// exposedPorts normalises "80", "80/tcp", "53/udp" or a range
// "8000-8002/tcp", which stands for each of its ports, as Docker expands it.
func exposedPorts(s string) ([]string, error) {
	port, proto, ok := strings.Cut(s, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto %q in EXPOSE %s", proto, s)
	}
	lo, hi, isRange := strings.Cut(port, "-")
	if !isRange {
		hi = lo
	}
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return nil, fmt.Errorf("invalid port %q in EXPOSE", s)
	}
	var out []string
	for n := first; n <= last; n++ {
		out = append(out, strconv.FormatUint(n, 10)+"/"+proto)
	}
	return out, nil
}
