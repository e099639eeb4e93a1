package registry

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"

	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// paginate applies the spec's n (page size) and last (exclusive start)
// query parameters to sorted items, returning the page and the Link
// header value for the next page ("" when this is the last one).
func paginate(items []string, q url.Values, path string) ([]string, string, error) {
	last := q.Get("last")
	start := 0
	if last != "" {
		start = sort.Search(len(items), func(i int) bool { return items[i] > last })
	}
	page := items[start:]
	if !q.Has("n") {
		return page, "", nil
	}
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil || n < 0 {
		return nil, "", newError(codePaginationInvalid, "invalid page size n=%q", q.Get("n"))
	}
	if len(page) <= n {
		return page, "", nil
	}
	page = page[:n]
	if n == 0 {
		return page, "", nil
	}
	next := url.Values{"last": {page[n-1]}, "n": {strconv.Itoa(n)}}
	return page, fmt.Sprintf(`<%s?%s>; rel="next"`, path, next.Encode()), nil
}

func writeJSON(w http.ResponseWriter, r *http.Request, contentType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
	return nil
}

func (s *Server) tagsList(w http.ResponseWriter, r *http.Request, rt route) error {
	if !s.meta.repoExists(rt.name) {
		return newError(codeNameUnknown, "repository %s unknown", rt.name)
	}
	tags, err := s.meta.tags(rt.name)
	if err != nil {
		return err
	}
	page, link, err := paginate(tags, r.URL.Query(), "/v2/"+rt.name+"/tags/list")
	if err != nil {
		return err
	}
	if link != "" {
		w.Header().Set("Link", link)
	}
	return writeJSON(w, r, "application/json", struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, append([]string{}, page...)})
}

func (s *Server) catalog(w http.ResponseWriter, r *http.Request, _ route) error {
	repos, err := s.meta.catalog(r.Context())
	if err != nil {
		return err
	}
	page, link, err := paginate(repos, r.URL.Query(), "/v2/_catalog")
	if err != nil {
		return err
	}
	if link != "" {
		w.Header().Set("Link", link)
	}
	return writeJSON(w, r, "application/json", struct {
		Repositories []string `json:"repositories"`
	}{append([]string{}, page...)})
}

// referrers answers the referrers API: an image index of the manifests of
// the repository whose subject is the given digest, optionally filtered
// by artifactType. An unknown subject has an empty list.
func (s *Server) referrers(w http.ResponseWriter, r *http.Request, rt route) error {
	d, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	descs, err := s.meta.referrers(rt.name, d)
	if err != nil {
		return err
	}
	if at := r.URL.Query().Get("artifactType"); at != "" {
		kept := descs[:0]
		for _, desc := range descs {
			if desc.ArtifactType == at {
				kept = append(kept, desc)
			}
		}
		descs = kept
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	if descs == nil {
		descs = []ocispec.Descriptor{}
	}
	return writeJSON(w, r, ocispec.MediaTypeImageIndex, ocispec.Index{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex,
		Manifests: descs,
	})
}
