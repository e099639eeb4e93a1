package cli

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// cp follows the docker CLI's copy rules (cli/command/container/cp.go and
// the archive package it uses), written here from their documented
// behaviour:
//
//   - SRC "dir" copies the directory itself, "dir/." its content.
//   - A destination that exists as a directory receives the source inside
//     it; one that does not exist is created with the source's content
//     under that name (its parent must exist); a destination ending in "/"
//     must be an existing directory when the source is a file.
//   - A symlink as the source's last element is copied as a symlink
//     unless -L; symlinks in the destination are followed.
//   - "-" as the source is a tar on stdin extracted into a container
//     directory; "-" as the destination writes the container's tar to
//     stdout.
//
// Local extraction goes through os.Root, so a hostile archive from a
// container cannot write outside the destination.

type cpOptions struct {
	followLink bool
	copyUIDGID bool
	quiet      bool
}

func (c *Cli) newCpCommand() *cobra.Command {
	var o cpOptions
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: "Copy files/folders between a container and the local filesystem\n\n" +
			"Use '-' as the source to read a tar archive from stdin\n" +
			"and extract it to a directory destination in a container.\n" +
			"Use '-' as the destination to stream a tar archive of a\n" +
			"container source to stdout.",
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "" {
				return errors.New("source can not be empty")
			}
			if args[1] == "" {
				return errors.New("destination can not be empty")
			}
			if !cmd.Flags().Changed("quiet") {
				// Progress is only for people watching a terminal.
				_, tty := isTerminalWriter(c.out)
				o.quiet = !tty
			}
			return c.runCp(cmd, args[0], args[1], o)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&o.followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fl.BoolVarP(&o.copyUIDGID, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fl.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// splitCpArg splits "container:path"; an absolute path or one starting
// with "." is local even with a colon in it.
func splitCpArg(arg string) (ctr, p string) {
	if filepath.IsAbs(arg) {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(ctr, ".") {
		return "", arg
	}
	return ctr, p
}

func (c *Cli) runCp(cmd *cobra.Command, src, dst string, o cpOptions) error {
	srcCtr, srcPath := splitCpArg(src)
	dstCtr, dstPath := splitCpArg(dst)
	switch {
	case srcCtr != "" && dstCtr != "":
		return errors.New("copying between containers is not supported")
	case srcCtr != "":
		return c.copyFromContainer(cmd, srcCtr, srcPath, dstPath, o)
	case dstCtr != "":
		return c.copyToContainer(cmd, srcPath, dstCtr, dstPath, o)
	}
	return errors.New("must specify at least one container source")
}

// cpHumanSize is the size wording of docker's "Successfully copied".
func cpHumanSize(n int64) string {
	return units.HumanSizeWithPrecision(float64(n), 3)
}

// countingReader counts what passes through.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *Cli) copyFromContainer(cmd *cobra.Command, ctr, srcPath, dstPath string, o cpOptions) error {
	ctx := cmd.Context()
	if dstPath != "-" {
		abs, err := filepath.Abs(dstPath)
		if err != nil {
			return err
		}
		dstPath = preserveTrailingDotOrSeparator(abs, dstPath)
		if err := validateOutputPath(dstPath); err != nil {
			return err
		}
	}
	api, err := c.Client()
	if err != nil {
		return err
	}
	rebaseName := ""
	if o.followLink {
		st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: srcPath})
		if err == nil && st.Stat.Mode&os.ModeSymlink != 0 {
			target := st.Stat.LinkTarget
			if !filepath.IsAbs(target) {
				parent, _ := splitPathDirEntry(srcPath)
				target = filepath.Join(parent, target)
			}
			target, rebaseName = getRebaseName(srcPath, target)
			srcPath = target
		}
	}
	res, err := api.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: srcPath})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if dstPath == "-" {
		_, err := io.Copy(c.out, res.Content)
		return err
	}
	src := copyInfo{Path: srcPath, Exists: true, IsDir: res.Stat.Mode.IsDir(), RebaseName: rebaseName}
	cr := &countingReader{r: res.Content}
	var content io.Reader = cr
	if rebaseName != "" {
		_, srcBase := splitPathDirEntry(src.Path)
		content = rebaseArchive(content, srcBase, rebaseName)
	}
	if err := copyTo(content, src, dstPath); err != nil {
		return err
	}
	if !o.quiet {
		fmt.Fprintln(c.err, "Successfully copied", cpHumanSize(cr.n), "to", dstPath)
	}
	return nil
}

func (c *Cli) copyToContainer(cmd *cobra.Command, srcPath, ctr, dstPath string, o cpOptions) error {
	ctx := cmd.Context()
	if srcPath != "-" {
		abs, err := filepath.Abs(srcPath)
		if err != nil {
			return err
		}
		srcPath = preserveTrailingDotOrSeparator(abs, srcPath)
	}
	api, err := c.Client()
	if err != nil {
		return err
	}
	dst := copyInfo{Path: dstPath}
	st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dstPath})
	if err == nil && st.Stat.Mode&os.ModeSymlink != 0 {
		target := st.Stat.LinkTarget
		if !filepath.IsAbs(target) {
			parent, _ := splitPathDirEntry(dstPath)
			target = filepath.Join(parent, target)
		}
		dst.Path = target
		st, err = api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: target})
	}
	if verr := validateOutputPathFileMode(st.Stat.Mode); verr != nil {
		return fmt.Errorf("destination \"%s:%s\" must be a directory or a regular file: %w", ctr, dstPath, verr)
	}
	// A failed stat means the destination does not exist: its parent
	// may, and the daemon reports any conflict.
	if err == nil {
		dst.Exists, dst.IsDir = true, st.Stat.Mode.IsDir()
	}
	var (
		content  io.Reader
		dstDir   string
		counting *countingReader
	)
	if srcPath == "-" {
		content = c.in
		dstDir = dst.Path
		if !dst.IsDir {
			return fmt.Errorf("destination \"%s:%s\" must be a directory", ctr, dstPath)
		}
	} else {
		src, err := copyInfoSourcePath(srcPath, o.followLink)
		if err != nil {
			return err
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(tarResource(src, pw)) }()
		defer pr.Close()
		dir, prepared, err := prepareArchiveCopy(pr, src, dst)
		if err != nil {
			return err
		}
		dstDir = dir
		counting = &countingReader{r: prepared}
		content = counting
	}
	if _, err := api.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{
		DestinationPath: dstDir, Content: content, CopyUIDGID: o.copyUIDGID,
	}); err != nil {
		return err
	}
	if !o.quiet && counting != nil {
		fmt.Fprintln(c.err, "Successfully copied", cpHumanSize(counting.n), "to", ctr+":"+dst.Path)
	}
	return nil
}

// copyInfo describes one side of a copy.
type copyInfo struct {
	Path       string
	Exists     bool
	IsDir      bool
	RebaseName string
}

var (
	errCannotCopyDir = errors.New("cannot copy directory")
	errDirNotExists  = errors.New("no such directory")
	errNotDirectory  = errors.New("not a directory")
)

func hasTrailingPathSeparator(p string) bool {
	return len(p) > 0 && os.IsPathSeparator(p[len(p)-1])
}

func specifiesCurrentDir(p string) bool { return filepath.Base(p) == "." }

// preserveTrailingDotOrSeparator puts back the "/." or "/" of orig that
// cleaning removed from cleaned.
func preserveTrailingDotOrSeparator(cleaned, orig string) string {
	if !specifiesCurrentDir(cleaned) && specifiesCurrentDir(orig) {
		if !hasTrailingPathSeparator(cleaned) {
			cleaned += string(filepath.Separator)
		}
		cleaned += "."
	}
	if !hasTrailingPathSeparator(cleaned) && hasTrailingPathSeparator(orig) {
		cleaned += string(filepath.Separator)
	}
	return cleaned
}

// splitPathDirEntry splits p into its directory and last entry, keeping a
// final "." ("a/." → "a", ".").
func splitPathDirEntry(p string) (string, string) {
	cleaned := filepath.Clean(p)
	if specifiesCurrentDir(p) {
		cleaned += string(filepath.Separator) + "."
	}
	return filepath.Dir(cleaned), filepath.Base(cleaned)
}

// getRebaseName keeps the "/." or "/" of p on the resolved path, and names
// what the archive's top entry must be renamed to when resolving changed
// the last element.
func getRebaseName(p, resolved string) (string, string) {
	if specifiesCurrentDir(p) && !specifiesCurrentDir(resolved) {
		resolved += string(filepath.Separator) + "."
	}
	if hasTrailingPathSeparator(p) && !hasTrailingPathSeparator(resolved) {
		resolved += string(filepath.Separator)
	}
	rebase := ""
	if filepath.Base(p) != filepath.Base(resolved) {
		rebase = filepath.Base(p)
	}
	return resolved, rebase
}

// validateOutputPath checks a local destination: its parent must exist,
// and if it exists it must be a directory or a regular file.
func validateOutputPath(p string) error {
	dir := filepath.Dir(filepath.Clean(p))
	if dir != "" && dir != "." {
		if _, err := os.Stat(dir); os.IsNotExist(err) {
			return fmt.Errorf("invalid output path: directory %q does not exist", dir)
		}
	}
	fi, err := os.Stat(p)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().IsDir() || fi.Mode().IsRegular() {
		return nil
	}
	if err := validateOutputPathFileMode(fi.Mode()); err != nil {
		return fmt.Errorf("invalid output path: %q must be a directory or a regular file: %w", p, err)
	}
	return nil
}

func validateOutputPathFileMode(m os.FileMode) error {
	switch {
	case m&os.ModeDevice != 0:
		return errors.New("got a device")
	case m&os.ModeIrregular != 0:
		return errors.New("got an irregular file")
	}
	return nil
}

// copyInfoSourcePath describes a local source: symlinks in its parent are
// resolved, the last element only with followLink.
func copyInfoSourcePath(p string, followLink bool) (copyInfo, error) {
	var resolved, rebase string
	if followLink {
		r, err := filepath.EvalSymlinks(p)
		if err != nil {
			return copyInfo{}, err
		}
		resolved, rebase = getRebaseName(p, r)
	} else {
		dir, base := filepath.Split(p)
		r, err := filepath.EvalSymlinks(dir)
		if err != nil {
			return copyInfo{}, err
		}
		resolved = r + string(filepath.Separator) + base
		if hasTrailingPathSeparator(p) && filepath.Base(p) != filepath.Base(resolved) {
			rebase = filepath.Base(p)
		}
	}
	fi, err := os.Lstat(resolved)
	if err != nil {
		return copyInfo{}, err
	}
	return copyInfo{Path: resolved, Exists: true, IsDir: fi.IsDir(), RebaseName: rebase}, nil
}

// copyInfoDestinationPath describes a local destination, following
// symlinks (a dangling one names what to create); its parent must exist.
func copyInfoDestinationPath(p string) (copyInfo, error) {
	orig := p
	fi, err := os.Lstat(p)
	if err == nil && fi.Mode()&os.ModeSymlink == 0 {
		return copyInfo{Path: p, Exists: true, IsDir: fi.IsDir()}, nil
	}
	for n := 0; err == nil && fi.Mode()&os.ModeSymlink != 0; n++ {
		if n > 10 {
			return copyInfo{}, errors.New("too many symlinks in " + orig)
		}
		target, rerr := os.Readlink(p)
		if rerr != nil {
			return copyInfo{}, rerr
		}
		if !filepath.IsAbs(target) {
			parent, _ := splitPathDirEntry(p)
			target = filepath.Join(parent, target)
		}
		p = target
		fi, err = os.Lstat(p)
	}
	if err != nil {
		if !os.IsNotExist(err) {
			return copyInfo{}, err
		}
		parent, _ := splitPathDirEntry(p)
		pfi, err := os.Stat(parent)
		if err != nil {
			return copyInfo{}, err
		}
		if !pfi.IsDir() {
			return copyInfo{}, errNotDirectory
		}
		return copyInfo{Path: p}, nil
	}
	return copyInfo{Path: p, Exists: true, IsDir: fi.IsDir()}, nil
}

// prepareArchiveCopy decides where an archive of src is extracted for it
// to land at dst, and renames its top entry when it must take dst's name.
func prepareArchiveCopy(content io.Reader, src, dst copyInfo) (string, io.Reader, error) {
	dstDir, dstBase := splitPathDirEntry(dst.Path)
	_, srcBase := splitPathDirEntry(src.Path)
	if src.RebaseName != "" {
		srcBase = src.RebaseName
	}
	switch {
	case dst.Exists && dst.IsDir:
		return dst.Path, content, nil
	case dst.Exists && src.IsDir:
		return "", nil, errCannotCopyDir
	case dst.Exists:
		return dstDir, rebaseArchive(content, srcBase, dstBase), nil
	case src.IsDir:
		return dstDir, rebaseArchive(content, srcBase, dstBase), nil
	case hasTrailingPathSeparator(dst.Path) || specifiesCurrentDir(dst.Path):
		return "", nil, errDirNotExists
	}
	return dstDir, rebaseArchive(content, srcBase, dstBase), nil
}

// rebaseArchive renames the entries whose first element is oldBase to
// start with newBase instead (hardlink targets too).
func rebaseArchive(r io.Reader, oldBase, newBase string) io.Reader {
	if oldBase == newBase {
		return r
	}
	pr, pw := io.Pipe()
	go func() {
		tr, tw := tar.NewReader(r), tar.NewWriter(pw)
		rename := func(name string) string {
			if oldBase == string(filepath.Separator) {
				return filepath.Join(newBase, name)
			}
			first, rest, found := strings.Cut(name, "/")
			if first != oldBase {
				return name
			}
			if !found {
				return newBase
			}
			return newBase + "/" + rest
		}
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			hdr.Format = tar.FormatPAX
			hdr.Name = rename(hdr.Name)
			if hdr.Typeflag == tar.TypeLink {
				hdr.Linkname = rename(hdr.Linkname)
			}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

// tarResource writes a tar of src whose top entry is named after src's
// last element (or its RebaseName); "dir/." gives "./..." entries.
func tarResource(src copyInfo, w io.Writer) error {
	srcDir, srcBase := splitPathDirEntry(src.Path)
	top := srcBase
	if src.RebaseName != "" {
		top = src.RebaseName
	}
	root := filepath.Join(srcDir, srcBase)
	tw := tar.NewWriter(w)
	links := map[[2]uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := top
		switch {
		case rel == ".":
		case top == "/":
			name = "/" + filepath.ToSlash(rel)
		default:
			name = top + "/" + filepath.ToSlash(rel)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&os.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return nil // sockets and the like are skipped, as docker does
		}
		hdr.Name = name
		// Whole seconds and no atime/ctime: plain ustar headers unless a
		// long name needs PAX records, as docker writes them.
		hdr.Format = tar.FormatPAX
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.Uname, hdr.Gname = "", ""
		if fi.IsDir() && !strings.HasSuffix(hdr.Name, "/") {
			hdr.Name += "/"
		}
		if key, ok := inodeKey(fi); ok && fi.Mode().IsRegular() {
			if first, seen := links[key]; seen {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				return tw.WriteHeader(hdr)
			}
			links[key] = name
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// copyTo extracts the archive of src so that it lands at dstPath.
func copyTo(content io.Reader, src copyInfo, dstPath string) error {
	dst, err := copyInfoDestinationPath(dstPath)
	if err != nil {
		return err
	}
	dir, prepared, err := prepareArchiveCopy(content, src, dst)
	if err != nil {
		return err
	}
	return untarLocal(prepared, dir)
}

// untarLocal extracts a tar from a container into dir without ever
// leaving it (os.Root confines every path and symlink), never replacing a
// directory with a non-directory or the reverse, keeping the caller as
// owner (no chown). Device nodes are skipped.
func untarLocal(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	type dirTime struct {
		name string
		t    time.Time
	}
	var dirs []dirTime
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(strings.TrimLeft(filepath.FromSlash(hdr.Name), "/"))
		if name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("invalid archive entry %q: outside of %q", hdr.Name, dir)
		}
		if name == "." {
			continue
		}
		if parent := filepath.Dir(name); parent != "." {
			if err := root.MkdirAll(parent, 0o755); err != nil {
				return err
			}
		}
		mode := os.FileMode(hdr.Mode & 0o7777)
		if fi, err := root.Lstat(name); err == nil {
			isDir := hdr.Typeflag == tar.TypeDir
			if fi.IsDir() && !isDir {
				return fmt.Errorf("cannot overwrite directory %q with non-directory %q", filepath.Join(dir, name), dir)
			}
			if !fi.IsDir() && isDir {
				return fmt.Errorf("cannot overwrite non-directory %q with directory %q", filepath.Join(dir, name), dir)
			}
			if !isDir {
				if err := root.Remove(name); err != nil {
					return err
				}
			}
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			if err := root.Chmod(name, mode); err != nil {
				return err
			}
			dirs = append(dirs, dirTime{name, hdr.ModTime})
			continue
		case tar.TypeReg, tar.TypeGNUSparse, '\x00':
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := root.Chmod(name, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			// As docker: a relative link may not point above the
			// destination (os.Root would contain its use anyway).
			if t := filepath.Join(filepath.Dir(filepath.Join(dir, name)), hdr.Linkname); !filepath.IsAbs(hdr.Linkname) && !strings.HasPrefix(t, dir) {
				return fmt.Errorf("invalid symlink %q -> %q", filepath.Join(dir, name), hdr.Linkname)
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return err
			}
			continue
		case tar.TypeLink:
			target := filepath.Clean(strings.TrimLeft(filepath.FromSlash(hdr.Linkname), "/"))
			if target == ".." || strings.HasPrefix(target, "../") {
				return fmt.Errorf("invalid hardlink %q -> %q: outside of %q", hdr.Name, hdr.Linkname, dir)
			}
			if err := root.Link(target, name); err != nil {
				return err
			}
			continue
		case tar.TypeFifo, tar.TypeChar, tar.TypeBlock:
			continue // device nodes and FIFOs are not recreated locally
		default:
			continue
		}
		if err := root.Chtimes(name, hdr.AccessTime, hdr.ModTime); err != nil {
			return err
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = root.Chtimes(dirs[i].name, dirs[i].t, dirs[i].t)
	}
	return nil
}
