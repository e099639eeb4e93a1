package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image/content"
)

func parseDigest(s string) (digest.Digest, error) {
	d := digest.Digest(s)
	if s == "" {
		return "", newError(codeDigestInvalid, "digest required")
	}
	if err := content.ValidateDigest(d); err != nil {
		return "", newError(codeDigestInvalid, "invalid digest %q (only sha256 digests are supported)", s)
	}
	return d, nil
}

func blobLocation(name string, d digest.Digest) string {
	return "/v2/" + name + "/blobs/" + string(d)
}

// getBlob serves GET and HEAD of a blob the repository holds, with Range
// support. A manifest of the repository can be fetched this way too.
func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	if !s.meta.hasLayer(rt.name, d) {
		if _, ok, err := s.meta.manifest(rt.name, d); err != nil {
			return err
		} else if !ok {
			return newError(codeBlobUnknown, "blob %s unknown to repository %s", d, rt.name)
		}
	}
	rc, err := s.store.Open(r.Context(), d)
	if errdefs.Is(err, errdefs.NotFound) {
		return newError(codeBlobUnknown, "blob %s unknown to registry", d)
	}
	if err != nil {
		return err
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Docker-Content-Digest", string(d))
	h.Set("ETag", `"`+string(d)+`"`)
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Cache-Control", "max-age=31536000")
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(rc, 0, rc.Size()))
	return nil
}

// deleteBlob removes the repository's link to a blob; the bytes stay in
// the content store for its owner's garbage collection.
func (s *Server) deleteBlob(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	ok, err := s.meta.unlinkLayer(rt.name, d)
	if err != nil {
		return err
	}
	if !ok {
		return newError(codeBlobUnknown, "blob %s unknown to repository %s", d, rt.name)
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

func uploadRef(id string) string { return "registry-upload-" + id }

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

// rangeHeader is the Range value reporting offset bytes received; the
// reference registry reports "0-0" for an empty upload.
func rangeHeader(offset int64) string {
	if offset <= 0 {
		return "0-0"
	}
	return fmt.Sprintf("0-%d", offset-1)
}

func setUploadHeaders(h http.Header, name, id string, offset int64) {
	h.Set("Location", uploadLocation(name, id))
	h.Set("Range", rangeHeader(offset))
	h.Set("Docker-Upload-UUID", id)
	h.Set("Content-Length", "0")
}

func created(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", blobLocation(name, d))
	h.Set("Docker-Content-Digest", string(d))
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// startUpload handles POST .../blobs/uploads/: a cross-repository mount
// (?mount=&from=), a monolithic upload (?digest=), or a new session.
func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := parseDigest(mount)
		if err != nil {
			return err
		}
		// Mount only from a named repository that holds the blob; otherwise
		// fall back to a new session, as the spec allows.
		if from := q.Get("from"); validName(from) && s.meta.hasLayer(from, d) && s.store.Exists(d) {
			if err := s.meta.linkLayer(rt.name, d); err != nil {
				return err
			}
			created(w, rt.name, d)
			return nil
		}
	} else if q.Has("digest") {
		d, err := parseDigest(q.Get("digest"))
		if err != nil {
			return err
		}
		if err := s.monolithic(r.Context(), rt.name, d, r.ContentLength, r.Body); err != nil {
			return err
		}
		created(w, rt.name, d)
		return nil
	}
	id := newUploadID()
	if err := s.meta.putUpload(id, uploadSession{Repo: rt.name, StartedAt: time.Now().UTC()}); err != nil {
		return err
	}
	setUploadHeaders(w.Header(), rt.name, id, 0)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// monolithic stores body as blob d in one request, verifying its digest
// (and size when given) before anything becomes visible.
func (s *Server) monolithic(ctx context.Context, name string, d digest.Digest, size int64, body io.Reader) error {
	ref := "registry-post-" + newUploadID()
	cw, err := s.store.Writer(ctx, ref, d, size)
	if errdefs.Is(err, errdefs.AlreadyExists) {
		// Still verify what the client sent before linking.
		dg := digest.SHA256.Digester()
		n, err := io.Copy(dg.Hash(), body)
		if err != nil {
			return err
		}
		if dg.Digest() != d {
			return newError(codeDigestInvalid, "uploaded content has digest %s, not %s", dg.Digest(), d)
		}
		if size > 0 && n != size {
			return newError(codeSizeInvalid, "uploaded %d bytes, Content-Length was %d", n, size)
		}
		return s.meta.linkLayer(name, d)
	}
	if err != nil {
		return err
	}
	if _, err := io.Copy(cw, body); err != nil {
		cw.Close()
		_ = s.store.Abort(context.WithoutCancel(ctx), ref)
		return err
	}
	if err := cw.Commit(ctx); err != nil {
		cw.Close()
		_ = s.store.Abort(context.WithoutCancel(ctx), ref)
		return commitError(err)
	}
	return s.meta.linkLayer(name, d)
}

func commitError(err error) error {
	switch {
	case errors.Is(err, content.ErrDigestMismatch):
		return newError(codeDigestInvalid, "%v", err)
	case errors.Is(err, content.ErrSizeMismatch):
		return newError(codeSizeInvalid, "%v", err)
	}
	return err
}

// session loads the upload session of rt, which must belong to rt's
// repository.
func (s *Server) session(rt route) (uploadSession, error) {
	if !validUploadID(rt.ref) {
		return uploadSession{}, newError(codeBlobUploadUnknown, "upload %q unknown", rt.ref)
	}
	u, ok, err := s.meta.upload(rt.ref)
	if err != nil {
		return uploadSession{}, err
	}
	if !ok || u.Repo != rt.name {
		return uploadSession{}, newError(codeBlobUploadUnknown, "upload %s unknown to repository %s", rt.ref, rt.name)
	}
	return u, nil
}

// parseContentRange reads "start-end", tolerating the "bytes " / "bytes="
// prefix and "/total" suffix some clients send.
func parseContentRange(v string) (start, end int64, ok bool) {
	v = strings.TrimSpace(v)
	v = strings.TrimPrefix(strings.TrimPrefix(v, "bytes="), "bytes ")
	v, _, _ = strings.Cut(v, "/")
	a, b, found := strings.Cut(v, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start {
		return 0, 0, false
	}
	return start, end, true
}

// appendChunk checks the request's Content-Range against the upload's
// offset and appends the body.
func (s *Server) appendChunk(r *http.Request, rt route, cw *content.Writer) error {
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, end, ok := parseContentRange(cr)
		if !ok {
			return newError(codeBlobUploadInvalid, "malformed Content-Range %q", cr)
		}
		if start != cw.Offset() {
			e := newError(codeRangeInvalid, "chunk starts at %d, upload is at %d", start, cw.Offset())
			e.header = http.Header{}
			setUploadHeaders(e.header, rt.name, rt.ref, cw.Offset())
			e.header.Del("Content-Length")
			return e
		}
		if r.ContentLength >= 0 && r.ContentLength != end-start+1 {
			return newError(codeBlobUploadInvalid, "Content-Range %q does not match Content-Length %d", cr, r.ContentLength)
		}
	}
	if _, err := io.Copy(cw, r.Body); err != nil {
		return err
	}
	return nil
}

func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	if _, err := s.session(rt); err != nil {
		return err
	}
	cw, err := s.store.Writer(r.Context(), uploadRef(rt.ref), "", -1)
	if err != nil {
		return err
	}
	defer cw.Close()
	if err := s.appendChunk(r, rt, cw); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	setUploadHeaders(w.Header(), rt.name, rt.ref, cw.Offset())
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// finishUpload handles PUT ?digest=: append the last chunk, verify the
// whole upload against the digest, and commit. On a mismatch the upload
// is discarded and nothing is stored.
func (s *Server) finishUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(r.URL.Query().Get("digest"))
	if err != nil {
		return err
	}
	if _, err := s.session(rt); err != nil {
		return err
	}
	ctx := r.Context()
	ref := uploadRef(rt.ref)
	cw, err := s.store.Writer(ctx, ref, "", -1)
	if err != nil {
		return err
	}
	defer cw.Close()
	if err := s.appendChunk(r, rt, cw); err != nil {
		return err
	}
	if got := cw.Digest(); got != d {
		cw.Close()
		s.discardUpload(ctx, rt.ref)
		return newError(codeDigestInvalid, "uploaded content has digest %s, not %s", got, d)
	}
	if err := cw.Commit(ctx); err != nil {
		return commitError(err)
	}
	if err := s.meta.linkLayer(rt.name, d); err != nil {
		return err
	}
	if err := s.meta.deleteUpload(rt.ref); err != nil {
		return err
	}
	created(w, rt.name, d)
	return nil
}

func (s *Server) discardUpload(ctx context.Context, id string) {
	ctx = context.WithoutCancel(ctx)
	if err := s.store.Abort(ctx, uploadRef(id)); err != nil && !errdefs.Is(err, errdefs.NotFound) {
		s.log.Warn("discard upload", "upload", id, "err", err)
	}
	if err := s.meta.deleteUpload(id); err != nil {
		s.log.Warn("discard upload", "upload", id, "err", err)
	}
}

func (s *Server) uploadStatus(w http.ResponseWriter, r *http.Request, rt route) error {
	if _, err := s.session(rt); err != nil {
		return err
	}
	var offset int64
	st, err := s.store.Status(r.Context(), uploadRef(rt.ref))
	if err == nil {
		offset = st.Offset
	} else if !errdefs.Is(err, errdefs.NotFound) {
		return err
	}
	setUploadHeaders(w.Header(), rt.name, rt.ref, offset)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) cancelUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	if _, err := s.session(rt); err != nil {
		return err
	}
	s.discardUpload(r.Context(), rt.ref)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// PruneUploads discards upload sessions started before olderThan ago, with
// their partial data. The caller runs it periodically.
func (s *Server) PruneUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	ids, err := s.meta.uploads()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		u, ok, err := s.meta.upload(id)
		if err != nil || !ok || time.Since(u.StartedAt) < olderThan {
			continue
		}
		s.discardUpload(ctx, id)
		n++
	}
	return n, nil
}
