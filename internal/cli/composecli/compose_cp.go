package composecli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/cli"
)

func (c *cmds) newComposeCpCommand(o *composeOptions) *cobra.Command {
	var (
		index               int
		archive, followLink bool
	)
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] SERVICE:SRC_PATH DEST_PATH|-\n\tdocker compose cp [OPTIONS] SRC_PATH|- SERVICE:DEST_PATH",
		Short: "Copy files/folders between a service container and the local filesystem",
		Args:  cli.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			src, dst := args[0], args[1]
			srcSvc, srcPath, srcIn := composeSplitServicePath(src)
			dstSvc, dstPath, dstIn := composeSplitServicePath(dst)
			if srcIn == dstIn {
				return errors.New("copying between services is not supported; one of source or destination must be a service path")
			}
			p, e, err := c.composeTarget(ctx, o, nil)
			if err != nil {
				return err
			}
			api, _ := c.Client()
			if srcIn {
				ctr, err := e.ServiceContainer(ctx, p, srcSvc, index)
				if err != nil {
					return err
				}
				res, err := api.CopyFromContainer(ctx, ctr.ID, client.CopyFromContainerOptions{SourcePath: srcPath})
				if err != nil {
					return err
				}
				defer res.Content.Close()
				if dst == "-" {
					_, err = io.Copy(c.Out(), res.Content)
					return err
				}
				return composeExtractTar(res.Content, dst, path.Base(srcPath))
			}
			ctr, err := e.ServiceContainer(ctx, p, dstSvc, index)
			if err != nil {
				return err
			}
			var content io.Reader
			destDir := dstPath
			if src == "-" {
				content = c.In()
			} else {
				// Copy into dstPath when it is an existing directory,
				// otherwise as dstPath (renamed).
				name := filepath.Base(src)
				if st, err := api.ContainerStatPath(ctx, ctr.ID, client.ContainerStatPathOptions{Path: dstPath}); err != nil || !st.Stat.Mode.IsDir() {
					destDir, name = path.Dir(dstPath), path.Base(dstPath)
				}
				pr, pw := io.Pipe()
				go func() { pw.CloseWithError(composeTarPath(pw, src, name)) }()
				content = pr
			}
			_, err = api.CopyToContainer(ctx, ctr.ID, client.CopyToContainerOptions{DestinationPath: destDir, Content: content, CopyUIDGID: archive})
			return err
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&index, "index", 0, "Index of the container if service has multiple replicas")
	fs.BoolVarP(&archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fs.BoolVarP(&followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fs.Bool("all", false, "Include containers created by the run command")
	return cmd
}

// composeSplitServicePath splits "service:path"; a local path has no colon
// before its first slash.
func composeSplitServicePath(s string) (string, string, bool) {
	if s == "-" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return "", s, false
	}
	svc, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", s, false
	}
	return svc, p, true
}

// composeTarPath writes the local file or directory src as a tar stream whose
// top entry is named name.
func composeTarPath(w io.Writer, src, name string) error {
	tw := tar.NewWriter(w)
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = path.Join(name, filepath.ToSlash(rel))
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// composeExtractTar extracts a container archive whose top entry is base to
// dst: into dst when it is an existing directory, else as dst.
func composeExtractTar(r io.Reader, dst, base string) error {
	root := dst
	rename := true
	if st, err := os.Stat(dst); err == nil && st.IsDir() {
		rename = false
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean(h.Name)
		if strings.HasPrefix(name, "../") || name == ".." {
			return fmt.Errorf("invalid archive entry %q", h.Name)
		}
		var target string
		if rename {
			rest := strings.TrimPrefix(strings.TrimPrefix(name, base), "/")
			target = filepath.Join(root, filepath.FromSlash(rest))
		} else {
			target = filepath.Join(root, filepath.FromSlash(name))
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, os.FileMode(h.Mode)&os.ModePerm); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&os.ModePerm)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
		case tar.TypeSymlink:
			_ = os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		}
	}
}
