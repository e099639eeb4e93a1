package compose

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/client"
)

// copyInlineFiles copies the secrets and configs defined by content or
// environment (which have no host file to bind-mount) into the created
// container, before it starts.
func (e *Engine) copyInlineFiles(ctx context.Context, p *types.Project, s types.ServiceConfig, id string) error {
	type file struct {
		target, content string
		mode            int64
		uid, gid        string
	}
	var files []file
	for _, sec := range s.Secrets {
		def, ok := p.Secrets[sec.Source]
		if !ok || (def.Environment == "" && def.Content == "") {
			continue
		}
		content, err := inlineContent(p, types.FileObjectConfig(def))
		if err != nil {
			return err
		}
		files = append(files, file{fileTarget("/run/secrets/", sec.Source, sec.Target), content, fileMode(sec.Mode, 0o444), sec.UID, sec.GID})
	}
	for _, c := range s.Configs {
		def, ok := p.Configs[c.Source]
		if !ok || (def.Environment == "" && def.Content == "") {
			continue
		}
		content, err := inlineContent(p, types.FileObjectConfig(def))
		if err != nil {
			return err
		}
		files = append(files, file{fileTarget("/", c.Source, c.Target), content, fileMode(c.Mode, 0o444), c.UID, c.GID})
	}
	for _, f := range files {
		// As Docker Compose: the archive goes to / with the whole target
		// path as the entry's name, so that missing parent directories
		// (/run/secrets in most images) are created by the extraction.
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		hdr := &tar.Header{Name: strings.TrimPrefix(path.Clean(f.target), "/"), Mode: f.mode, Size: int64(len(f.content)), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
		if f.uid != "" {
			hdr.Uid, _ = strconv.Atoi(f.uid)
		}
		if f.gid != "" {
			hdr.Gid, _ = strconv.Atoi(f.gid)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(f.content)); err != nil {
			return err
		}
		if err := tw.Close(); err != nil {
			return err
		}
		if _, err := e.API.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf, CopyUIDGID: f.uid != "" || f.gid != ""}); err != nil {
			return fmt.Errorf("copying %s into the container: %w", f.target, err)
		}
	}
	return nil
}

func inlineContent(p *types.Project, def types.FileObjectConfig) (string, error) {
	if def.Content != "" {
		return def.Content, nil
	}
	v, ok := p.Environment[def.Environment]
	if !ok {
		return "", fmt.Errorf("environment variable %q required by file %q is not set", def.Environment, def.Name)
	}
	return v, nil
}

func fileMode(m *types.FileMode, def int64) int64 {
	if m == nil {
		return def
	}
	return int64(*m)
}
