package build

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-dev/berth/internal/errdefs"
)

// dockerfile is a parsed Dockerfile.
type dockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
	escape   rune
}

// parseDockerfile parses src with BuildKit's parser and instruction
// parser. Errors are InvalidArgument and name the line, as dockerd's
// ("dockerfile parse error on line 3: unknown instruction: FOO").
func parseDockerfile(src []byte) (*dockerfile, error) {
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		return nil, lineError(err)
	}
	lint := linter.New(&linter.Config{SkipAll: true})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		return nil, lineError(err)
	}
	if len(stages) == 0 {
		return nil, errdefs.Newf(errdefs.InvalidArgument, "dockerfile parse error: file with no instructions")
	}
	return &dockerfile{stages: stages, metaArgs: metaArgs, escape: rune(res.EscapeToken)}, nil
}

// lineError turns a parser error into dockerd's wording with its line.
func lineError(err error) error {
	var le *parser.LocationError
	msg := err.Error()
	if errors.As(err, &le) && len(le.Locations) > 0 && len(le.Locations[0]) > 0 {
		line := le.Locations[0][0].Start.Line
		return errdefs.Newf(errdefs.InvalidArgument, "dockerfile parse error on line %d: %s", line, strings.TrimSpace(msg))
	}
	return errdefs.Newf(errdefs.InvalidArgument, "dockerfile parse error: %s", msg)
}

// stepError names the Dockerfile line of a failing instruction.
func stepError(loc []parser.Range, err error) error {
	if err == nil {
		return nil
	}
	if len(loc) == 0 {
		return err
	}
	var re *RunError
	if errors.As(err, &re) {
		return err
	}
	return errdefs.With(errdefs.ClassOf(err), fmt.Errorf("Dockerfile:%d: %w", loc[0].Start.Line, err))
}

// stageIndex finds a stage by name (case-insensitive) or index among the
// first n stages.
func (df *dockerfile) stageIndex(name string, n int) (int, bool) {
	lname := strings.ToLower(name)
	for i := 0; i < n && i < len(df.stages); i++ {
		if strings.ToLower(df.stages[i].Name) == lname && lname != "" {
			return i, true
		}
	}
	if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < n {
		return i, true
	}
	return -1, false
}

// envMap is an EnvGetter over ordered key/values.
type envMap struct {
	keys []string
	vals map[string]string
}

func newEnvMap() *envMap { return &envMap{vals: map[string]string{}} }

func (e *envMap) Get(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *envMap) Keys() []string { return e.keys }

func (e *envMap) Set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

var _ shell.EnvGetter = (*envMap)(nil)
