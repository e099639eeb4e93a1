package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/moby/moby/api/types/registry"
)

// DecodeAuth decodes an X-Registry-Auth value: base64url (padded or not;
// standard base64 is tolerated) of a JSON registry.AuthConfig. Empty or
// "{}" is no credentials (a zero AuthConfig, never nil).
func DecodeAuth(s string) (*registry.AuthConfig, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return &registry.AuthConfig{}, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(s); err != nil {
			return &registry.AuthConfig{}, InvalidParam(errors.New("invalid X-Registry-Auth header: must be a valid base64url-encoded string"))
		}
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("{}")) {
		return &registry.AuthConfig{}, nil
	}
	var ac registry.AuthConfig
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&ac); err != nil {
		return &registry.AuthConfig{}, InvalidParam(fmt.Errorf("invalid X-Registry-Auth header: invalid JSON: %w", err))
	}
	if dec.More() {
		return &registry.AuthConfig{}, InvalidParam(errors.New("invalid X-Registry-Auth header: multiple JSON documents not allowed"))
	}
	return &ac, nil
}

// AuthFromRequest decodes the request's X-Registry-Auth header.
func AuthFromRequest(r *http.Request) (*registry.AuthConfig, error) {
	return DecodeAuth(r.Header.Get(registry.AuthHeader))
}
