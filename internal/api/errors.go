package api

import (
	"errors"
	"net/http"

	"github.com/berth-dev/berth/internal/errdefs"
)

// StatusFromError is the one place where an error class becomes an HTTP
// status code (dockerd: daemon/server/httpstatus). Handlers return errors
// and never choose codes. An unclassified error is 500.
func StatusFromError(err error) int {
	if err == nil {
		return http.StatusInternalServerError
	}
	switch errdefs.ClassOf(err) {
	case errdefs.NotFound:
		return http.StatusNotFound
	case errdefs.InvalidArgument:
		return http.StatusBadRequest
	case errdefs.Conflict, errdefs.AlreadyExists:
		return http.StatusConflict
	case errdefs.FailedPrecondition:
		// dockerd answers 400 for failed preconditions, not 412.
		return http.StatusBadRequest
	case errdefs.Unauthorized:
		return http.StatusUnauthorized
	case errdefs.Forbidden:
		return http.StatusForbidden
	case errdefs.Unavailable:
		return http.StatusServiceUnavailable
	case errdefs.NotImplemented:
		return http.StatusNotImplemented
	case errdefs.NotModified:
		return http.StatusNotModified
	}
	return http.StatusInternalServerError
}

// ErrorResponse is the body of every error answer, Docker's
// {"message": "..."} (common.ErrorResponse).
type ErrorResponse struct {
	Message string `json:"message"`
}

// WriteError answers err with its status and Docker's JSON body; 304 has
// no body.
func WriteError(w http.ResponseWriter, err error) {
	code := StatusFromError(err)
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	msg := "internal error"
	if err != nil {
		msg = err.Error()
	}
	b, _ := marshal(ErrorResponse{Message: msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Del("Content-Length")
	w.WriteHeader(code)
	w.Write(b)
}

// ErrPageNotFound is what dockerd answers for an unknown path or a known
// path with the wrong method.
var ErrPageNotFound = errdefs.With(errdefs.NotFound, errors.New("page not found"))

// Errorf is a shorthand for a classified error of class c.
func Errorf(c errdefs.Class, format string, args ...any) error {
	return errdefs.Newf(c, format, args...)
}

// InvalidParam classifies err as an invalid argument (400).
func InvalidParam(err error) error { return errdefs.With(errdefs.InvalidArgument, err) }
