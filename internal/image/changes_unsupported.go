//go:build !linux

package image

import (
	"context"
	"io/fs"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ChangeKind is Docker's kind of filesystem change.
type ChangeKind uint8

const (
	ChangeModify ChangeKind = 0
	ChangeAdd    ChangeKind = 1
	ChangeDelete ChangeKind = 2
)

// Change is one changed path of a writable snapshot.
type Change struct {
	Path string
	Kind ChangeKind
}

type stubFilter struct{}

func newStubFilter(string, []string, []string) *stubFilter { return &stubFilter{} }

func (*stubFilter) skip(string, fs.FileMode, int64) bool { return false }

func changes(context.Context, string, []string, *stubFilter) ([]Change, error) {
	return nil, errdefs.Newf(errdefs.NotImplemented, "filesystem changes are only supported on Linux")
}

// Changes needs Linux (overlay whiteouts).
func (s *Service) Changes(ctx context.Context, key string) ([]Change, error) {
	return changes(ctx, "", nil, nil)
}
