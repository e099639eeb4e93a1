// Package errdefs defines berth's small set of error classes. Code that
// detects a failure wraps it with one class where it arises; each boundary
// (Engine API, CLI exit codes) maps classes exactly once. The package owns
// no behaviour beyond classification and must not import other berth code.
package errdefs

import (
	"errors"
	"fmt"
)

// Class is the kind of a failure, independent of where it happened.
type Class int

// The classes. Internal is the zero value for an unclassified error.
const (
	Internal Class = iota
	NotFound
	AlreadyExists
	InvalidArgument
	Conflict
	FailedPrecondition
	Unauthorized
	Forbidden
	Unavailable
	NotImplemented
	// NotModified is a request that changed nothing because the object
	// is already in the asked state (start a running container, stop a
	// stopped one): the Engine API answers 304.
	NotModified
)

var classNames = [...]string{"internal", "not found", "already exists", "invalid argument",
	"conflict", "failed precondition", "unauthorized", "forbidden", "unavailable", "not implemented", "not modified"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("class(%d)", int(c))
}

type classified struct {
	class Class
	err   error
}

func (e *classified) Error() string { return e.err.Error() }
func (e *classified) Unwrap() error { return e.err }

// With wraps err with class c. A nil err stays nil.
func With(c Class, err error) error {
	if err == nil {
		return nil
	}
	return &classified{class: c, err: err}
}

// Newf formats a new error of class c; %w is honoured.
func Newf(c Class, format string, args ...any) error {
	return &classified{class: c, err: fmt.Errorf(format, args...)}
}

// ClassOf returns the outermost class found in err's chain, Internal if none.
func ClassOf(err error) Class {
	var ce *classified
	if errors.As(err, &ce) {
		return ce.class
	}
	return Internal
}

// Is reports whether err is of class c.
func Is(err error, c Class) bool { return err != nil && ClassOf(err) == c }
