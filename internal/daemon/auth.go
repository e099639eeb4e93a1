package daemon

import (
	"context"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/moby/moby/api/types/registry"

	"github.com/berth-dev/berth/internal/distribution"
	"github.com/berth-dev/berth/internal/errdefs"
)

// login checks credentials against a registry for POST /auth. Docker Hub's
// legacy address maps to docker.io (there is no route to it from here,
// and tests never use it).
func (d *Daemon) login(ctx context.Context, auth *registry.AuthConfig) (string, error) {
	if auth == nil {
		return "", errdefs.Newf(errdefs.InvalidArgument, "missing credentials")
	}
	host := auth.ServerAddress
	host = strings.TrimPrefix(strings.TrimPrefix(host, "https://"), "http://")
	host = strings.TrimSuffix(strings.TrimSuffix(host, "/v1/"), "/")
	if host == "" || host == "index.docker.io" {
		host = "docker.io"
	}
	a := distribution.AuthFromConfig(auth)
	if a == nil {
		a = authn.Anonymous
	}
	if err := d.registry.CheckLogin(ctx, host, a); err != nil {
		return "", err
	}
	return "", nil
}
