package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/internal/errdefs"
)

// errorCode is a distribution-spec error code. The spec's codes come
// first; the rest are the extra codes the CNCF Distribution registry uses
// and clients know.
type errorCode string

const (
	codeBlobUnknown         errorCode = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   errorCode = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   errorCode = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       errorCode = "DIGEST_INVALID"
	codeManifestBlobUnknown errorCode = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     errorCode = "MANIFEST_INVALID"
	codeManifestUnknown     errorCode = "MANIFEST_UNKNOWN"
	codeNameInvalid         errorCode = "NAME_INVALID"
	codeNameUnknown         errorCode = "NAME_UNKNOWN"
	codeSizeInvalid         errorCode = "SIZE_INVALID"
	codeUnauthorized        errorCode = "UNAUTHORIZED"
	codeDenied              errorCode = "DENIED"
	codeUnsupported         errorCode = "UNSUPPORTED"
	codeTooManyRequests     errorCode = "TOOMANYREQUESTS"

	codeTagInvalid        errorCode = "TAG_INVALID"
	codeRangeInvalid      errorCode = "RANGE_INVALID"
	codePaginationInvalid errorCode = "PAGINATION_NUMBER_INVALID"
	codeMethodUnknown     errorCode = "METHOD_UNKNOWN"
	codeNotFound          errorCode = "NOT_FOUND"
	codeUnknown           errorCode = "UNKNOWN"
)

// status is the single place where error codes become HTTP statuses.
func (c errorCode) status() int {
	switch c {
	case codeBlobUnknown, codeBlobUploadUnknown, codeManifestUnknown, codeNameUnknown, codeNotFound:
		return http.StatusNotFound
	case codeBlobUploadInvalid, codeDigestInvalid, codeManifestBlobUnknown, codeManifestInvalid,
		codeNameInvalid, codeSizeInvalid, codePaginationInvalid, codeTagInvalid:
		return http.StatusBadRequest
	case codeUnauthorized:
		return http.StatusUnauthorized
	case codeDenied:
		return http.StatusForbidden
	case codeUnsupported, codeMethodUnknown:
		return http.StatusMethodNotAllowed
	case codeTooManyRequests:
		return http.StatusTooManyRequests
	case codeRangeInvalid:
		return http.StatusRequestedRangeNotSatisfiable
	default:
		return http.StatusInternalServerError
	}
}

// apiError is an error a handler returns to be reported to the client.
type apiError struct {
	Code    errorCode `json:"code"`
	Message string    `json:"message"`
	Detail  any       `json:"detail,omitempty"`
	// header is set on the response (e.g. Range on a 416).
	header http.Header
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

func newError(code errorCode, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// toAPIError classifies any handler error: an apiError as is, otherwise by
// its errdefs class, and anything else as an internal error.
func toAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return newError(codeUnknown, "request cancelled")
	case errdefs.Is(err, errdefs.InvalidArgument):
		return newError(codeBlobUploadInvalid, "%v", err)
	}
	return newError(codeUnknown, "internal error")
}

type errorBody struct {
	Errors []*apiError `json:"errors"`
}

// writeError sends err in the spec's JSON error format (no body for HEAD).
func writeError(w http.ResponseWriter, r *http.Request, ae *apiError) {
	for k, v := range ae.header {
		w.Header()[k] = v
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(ae.Code.status())
		return
	}
	b, _ := json.Marshal(errorBody{Errors: []*apiError{ae}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(ae.Code.status())
	_, _ = w.Write(b)
}
