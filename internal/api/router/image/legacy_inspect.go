package image

import (
	"context"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"

	"github.com/berth-dev/berth/internal/api"
)

// legacyInspect is GET /images/{name}/json as API versions before 1.45
// answer it: with the Container and ContainerConfig fields (dropped in
// 1.45) and, before 1.44, VirtualSize. Old clients index them without
// checking — docker-compose 1.29 reads ContainerConfig.Volumes when it
// recreates a container and fails with KeyError 'ContainerConfig'
// without it. berth keeps no builder container configuration, so
// ContainerConfig is the empty configuration dockerd gives images that
// have none (BuildKit-built or imported ones).
type legacyInspect struct {
	*image.InspectResponse
	Container       string           `json:"Container"`
	ContainerConfig container.Config `json:"ContainerConfig"`
	VirtualSize     *int64           `json:"VirtualSize,omitempty"`
}

// inspectForVersion shapes resp for the request's API version.
func inspectForVersion(ctx context.Context, resp *image.InspectResponse) any {
	if api.VersionAtLeast(ctx, "1.45") || resp == nil {
		return resp
	}
	l := &legacyInspect{InspectResponse: resp}
	if !api.VersionAtLeast(ctx, "1.44") {
		size := resp.Size
		l.VirtualSize = &size
	}
	return l
}
