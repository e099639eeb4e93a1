package distribution

import (
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/moby/api/types/registry"
)

// AuthFromConfig turns the Engine API's registry credentials (a decoded
// X-Registry-Auth, or the body of POST /auth) into an authenticator for
// WithAuth and CheckLogin: user and password, the base64 "auth" pair, an
// identity token (OAuth refresh token) or a registry (bearer) token.
// ServerAddress is not used: the credentials go to the registry of the
// reference the operation names.
//
// It returns nil when a is nil or carries no credentials, which WithAuth
// takes as "no per-request credentials" (the keychain answers).
func AuthFromConfig(a *registry.AuthConfig) authn.Authenticator {
	if a == nil {
		return nil
	}
	if a.Username == "" && a.Password == "" && a.Auth == "" && a.IdentityToken == "" && a.RegistryToken == "" {
		return nil
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	})
}
