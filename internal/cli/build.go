package cli

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"
)

// newBuildCommand is `berth build`: the context directory (or "-" for a
// tar or a Dockerfile on stdin) is sent as a tar without what
// .dockerignore excludes, to POST /build; the classic builder's output is
// printed as it comes.
func (c *Cli) newBuildCommand() *cobra.Command {
	var (
		tags, buildArgs, labels, addHosts []string
		file, target, iidfile, network    string
		platform                          string
		secrets, sshSpecs                 []string
		cacheFrom, cacheTo                []string
		output, progress                  string
		noCache, pull, quiet              bool
		rm, forceRm                       bool
	)
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH | URL | -",
		Short: "Build an image from a Dockerfile",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(secrets) > 0 {
				h, err := secretsHeader(secrets)
				if err != nil {
					return err
				}
				c.headers = map[string]string{SecretsHeader: h}
			}
			if err := c.cacheOptions(cacheTo); err != nil {
				return err
			}
			stopSSH, err := c.sshForward(sshSpecs)
			if err != nil {
				return err
			}
			defer stopSSH()
			byRef := c.contextByReference(args[0], file)
			api, err := c.Client()
			if err != nil {
				return err
			}
			var (
				body       io.Reader
				dockerfile string
				dfText     []byte
				remote     string
			)
			switch {
			case isGitContext(args[0]):
				// Cloned by the daemon (the remote parameter, as dockerd).
				remote, dockerfile, body = args[0], file, http.NoBody
			case byRef:
				body, dockerfile, dfText = referenceContext(args[0], file)
			default:
				if body, dockerfile, dfText, err = c.buildContext(args[0], file); err != nil {
					return err
				}
			}
			opts := client.ImageBuildOptions{
				Tags: tags, Dockerfile: dockerfile, Target: target, NoCache: noCache, PullParent: pull,
				SuppressOutput: quiet, NetworkMode: network, ExtraHosts: addHosts, Remove: rm, ForceRemove: forceRm,
				BuildArgs: map[string]*string{}, Labels: map[string]string{},
				AuthConfigs: map[string]registry.AuthConfig{}, CacheFrom: absCacheSpecs(cacheFrom),
			}
			// Every stored credential, as docker sends them: the daemon
			// picks the registry of each base image it pulls.
			if cf, err := loadConfigFile(c.configDir); err == nil {
				for k := range cf.Auths {
					opts.AuthConfigs[authKey(k)] = cf.authConfig(k)
				}
			}
			for _, a := range buildArgs {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					// "--build-arg NAME" takes NAME from the environment.
					if ev, set := os.LookupEnv(k); set {
						opts.BuildArgs[k] = &ev
					} else {
						opts.BuildArgs[k] = nil
					}
					continue
				}
				opts.BuildArgs[k] = &v
			}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				opts.Labels[k] = v
			}
			if platform != "" {
				p, err := parsePlatform(platform)
				if err != nil {
					return err
				}
				opts.Platforms = append(opts.Platforms, p)
			}
			opts.RemoteContext = remote
			res, err := api.ImageBuild(cmd.Context(), body, opts)
			if byRef && isContextNotVisible(err) {
				c.dropContextReference()
				if api, err = c.Client(); err != nil {
					return err
				}
				if body, opts.Dockerfile, dfText, err = c.buildContext(args[0], file); err != nil {
					return err
				}
				res, err = api.ImageBuild(cmd.Context(), body, opts)
			}
			if err != nil {
				return err
			}
			defer res.Body.Close()
			progressOut := c.out
			if output != "" {
				progressOut = c.err // the output may be a tar on stdout
			}
			var bk *buildkitProgress
			switch progress {
			case "classic":
			case "auto", "plain", "tty", "":
				if !quiet {
					bk = newBuildkitProgress(progressOut, dfText)
					progressOut = bk
				}
			default:
				return fmt.Errorf("invalid --progress %q: auto, plain, tty or classic", progress)
			}
			id, err := renderBuild(res.Body, progressOut)
			if bk != nil {
				bk.Close()
			}
			if err != nil {
				return err
			}
			if output != "" {
				return c.exportBuild(cmd.Context(), api, id, output, len(tags) == 0)
			}
			if iidfile != "" {
				if err := os.WriteFile(iidfile, []byte(id), 0o644); err != nil {
					return err
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&tags, "tag", "t", nil, `Name and optionally a tag in the "name:tag" format`)
	fl.StringVarP(&file, "file", "f", "", `Name of the Dockerfile (Default is "PATH/Dockerfile")`)
	fl.StringArrayVar(&buildArgs, "build-arg", nil, "Set build-time variables")
	fl.StringArrayVar(&labels, "label", nil, "Set metadata for an image")
	fl.StringVar(&target, "target", "", "Set the target build stage to build.")
	fl.BoolVar(&noCache, "no-cache", false, "Do not use cache when building the image")
	fl.BoolVar(&pull, "pull", false, "Always attempt to pull a newer version of the image")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Suppress the build output and print image ID on success")
	fl.StringVar(&iidfile, "iidfile", "", "Write the image ID to the file")
	fl.StringVar(&network, "network", "default", "Set the networking mode for the RUN instructions during build")
	fl.StringSliceVar(&addHosts, "add-host", nil, "Add a custom host-to-IP mapping (\"host:ip\")")
	fl.StringVar(&platform, "platform", "", "Set platform if server is multi-platform capable")
	fl.StringVar(&progress, "progress", "auto", `Set type of progress output ("auto", "plain", "tty": BuildKit's style; "classic": the classic builder's text)`)
	fl.StringVarP(&output, "output", "o", "", `Output destination (format: "type=local,dest=path", "type=tar,dest=file", "-" for a tar on stdout, or a directory)`)
	fl.StringArrayVar(&secrets, "secret", nil, `Secret to expose to the build (format: "id=mysecret[,src=/local/secret]" or "id=mysecret,env=VAR")`)
	fl.StringArrayVar(&cacheFrom, "cache-from", nil, `External cache sources: an image, or "type=registry,ref=REG/REPO:TAG", "type=local,src=DIR"`)
	fl.StringArrayVar(&cacheTo, "cache-to", nil, `Cache export destinations: "type=registry,ref=REG/REPO:TAG[,mode=min|max]", "type=local,dest=DIR"`)
	fl.StringArrayVar(&sshSpecs, "ssh", nil, `SSH agent socket or keys to expose to the build (format: "default|<id>[=<socket>|<key>[,<key>]]")`)
	fl.BoolVar(&rm, "rm", true, "Remove intermediate containers after a successful build")
	fl.BoolVar(&forceRm, "force-rm", false, "Always remove intermediate containers")
	return cmd
}

// exportBuild writes the built image's filesystem to an --output
// destination (the classic builder makes an image; berth exports it
// through a container that is never started, then removes both unless
// the image was tagged).
func (c *Cli) exportBuild(ctx context.Context, api *client.Client, id, output string, untagged bool) error {
	typ, dest := "local", output
	if output == "-" {
		typ, dest = "tar", "-"
	} else if strings.Contains(output, "=") {
		dest = ""
		for _, kv := range strings.Split(output, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch strings.TrimSpace(k) {
			case "type":
				typ = v
			case "dest":
				dest = v
			default:
				return fmt.Errorf("unsupported --output attribute %q", k)
			}
		}
	}
	if typ != "local" && typ != "tar" {
		return fmt.Errorf("unsupported --output type %q (local or tar)", typ)
	}
	if dest == "" {
		if typ != "tar" {
			return errors.New("--output type=local needs dest=DIR")
		}
		dest = "-"
	}
	res, err := api.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: id, Entrypoint: []string{"/.berth-export"}}})
	if err != nil {
		return err
	}
	defer api.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
	rc, err := api.ContainerExport(ctx, res.ID, client.ContainerExportOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	switch {
	case typ == "tar" && dest == "-":
		_, err = io.Copy(c.out, rc)
	case typ == "tar":
		var f *os.File
		if f, err = os.Create(dest); err == nil {
			_, err = io.Copy(f, rc)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
	default:
		err = extractTo(rc, dest)
	}
	if err != nil {
		return err
	}
	if untagged {
		// Only an image nothing names (the same build may have been
		// tagged before: then it stays).
		_, _ = api.ContainerRemove(context.WithoutCancel(ctx), res.ID, client.ContainerRemoveOptions{Force: true})
		if insp, err := api.ImageInspect(ctx, id); err == nil && len(insp.RepoTags) == 0 {
			_, _ = api.ImageRemove(context.WithoutCancel(ctx), id, client.ImageRemoveOptions{})
		}
	}
	return nil
}

// extractTo unpacks a filesystem tar into dir, every path resolved
// inside dir (a symlink in the image never sends a file elsewhere).
func extractTo(r io.Reader, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		name := path.Clean("/" + hdr.Name)
		if name == "/" {
			continue
		}
		parent, err := securejoin.SecureJoin(dir, path.Dir(name))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		p := filepath.Join(parent, path.Base(name))
		mode := os.FileMode(hdr.Mode) & os.ModePerm
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, mode|0o700); err != nil {
				return err
			}
		case tar.TypeReg:
			os.Remove(p)
			f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|syscall.O_NOFOLLOW, mode)
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
		case tar.TypeSymlink:
			os.Remove(p)
			if err := os.Symlink(hdr.Linkname, p); err != nil {
				return err
			}
		case tar.TypeLink:
			src, err := securejoin.SecureJoin(dir, hdr.Linkname)
			if err != nil {
				return err
			}
			os.Remove(p)
			if err := os.Link(src, p); err != nil {
				return err
			}
		}
	}
}

// SecretsHeader carries `build --secret` values to berthd (a berth
// extension of POST /build: the classic builder's API has no session to
// ask the client for them). The value is base64 of a JSON object mapping
// secret IDs to their (base64) bytes.
const SecretsHeader = "X-Berth-Build-Secrets"

// secretsHeader reads the --secret sources: src= a file, env= a
// variable; with neither, the variable named like the ID, else the file.
func secretsHeader(specs []string) (string, error) {
	m := map[string][]byte{}
	for _, spec := range specs {
		var id, src, env string
		for _, kv := range strings.Split(spec, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "id":
				id = v
			case "src", "source":
				src = v
			case "env":
				env = v
			case "type":
				if v != "file" && v != "env" {
					return "", fmt.Errorf("unsupported secret type %q", v)
				}
			default:
				return "", fmt.Errorf("unexpected key %q in %q", k, spec)
			}
		}
		if id == "" {
			return "", fmt.Errorf("secret %q: id is required", spec)
		}
		switch {
		case src != "":
			b, err := os.ReadFile(src)
			if err != nil {
				return "", fmt.Errorf("secret %s: %w", id, err)
			}
			m[id] = b
		case env != "":
			v, ok := os.LookupEnv(env)
			if !ok {
				return "", fmt.Errorf("secret %s: environment variable %s is not set", id, env)
			}
			m[id] = []byte(v)
		default:
			if v, ok := os.LookupEnv(id); ok {
				m[id] = []byte(v)
			} else if b, err := os.ReadFile(id); err == nil {
				m[id] = b
			} else {
				return "", fmt.Errorf("secret %s: no source", id)
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// buildContext streams the context tar of dir (or stdin for "-"), with a
// Dockerfile given as "-" or outside the context placed in it: the tar is
// written as the daemon reads it. It returns the stream, the
// Dockerfile's name in it and its text (nil when unknown).
func (c *Cli) buildContext(arg, file string) (io.Reader, string, []byte, error) {
	var dfData []byte
	if file == "-" {
		if arg == "-" {
			return nil, "", nil, errors.New("invalid argument: can't use stdin for both build context and dockerfile")
		}
		b, err := io.ReadAll(c.in)
		if err != nil {
			return nil, "", nil, err
		}
		dfData = b
	}
	if arg == "-" {
		return c.in, file, nil, nil
	}
	if strings.Contains(arg, "://") || strings.HasPrefix(arg, "git@") {
		return nil, "", nil, errors.New("remote build contexts are not supported by berth")
	}
	fi, err := os.Stat(arg)
	if err != nil {
		return nil, "", nil, fmt.Errorf("unable to prepare context: path %q not found", arg)
	}
	if !fi.IsDir() {
		return nil, "", nil, fmt.Errorf("unable to prepare context: context must be a directory: %s", arg)
	}
	dfName := "Dockerfile"
	if file != "" && file != "-" {
		abs, _ := filepath.Abs(file)
		if !filepath.IsAbs(file) {
			abs, _ = filepath.Abs(file)
		}
		ctxAbs, _ := filepath.Abs(arg)
		if rel, err := filepath.Rel(ctxAbs, abs); err == nil && !strings.HasPrefix(rel, "..") {
			dfName = filepath.ToSlash(rel)
		} else {
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, "", nil, err
			}
			dfData = b
		}
	}
	var pm *patternmatcher.PatternMatcher
	for _, name := range []string{dfName + ".dockerignore", ".dockerignore"} {
		if f, err := os.Open(filepath.Join(arg, name)); err == nil {
			pats, err := ignorefile.ReadAll(f)
			f.Close()
			if err != nil {
				return nil, "", nil, err
			}
			if pm, err = patternmatcher.New(pats); err != nil {
				return nil, "", nil, err
			}
			break
		}
	}
	if dfData == nil {
		text, _ := os.ReadFile(filepath.Join(arg, filepath.FromSlash(dfName)))
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeContextTar(pw, arg, dfName, pm, nil, "")) }()
		return pr, dfName, text, nil
	}
	name := ".dockerfile." + randomSuffix()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContextTar(pw, arg, dfName, pm, dfData, name)) }()
	return pr, name, dfData, nil
}

// writeContextTar writes dir as a tar to w without what pm excludes
// (the Dockerfile and ignore files always go), plus extra as extraName.
func writeContextTar(w io.Writer, arg, dfName string, pm *patternmatcher.PatternMatcher, extra []byte, extraName string) error {
	// Buffered: thousands of small headers and files must not each be a
	// write on the connection.
	bw := bufio.NewWriterSize(w, 256<<10)
	tw := tar.NewWriter(bw)
	err := filepath.WalkDir(arg, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(arg, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		keep := rel == dfName || rel == ".dockerignore" || rel == dfName+".dockerignore"
		if pm != nil && !keep {
			if m, _ := pm.MatchesOrParentMatches(rel); m {
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return nil // sockets and the like
		}
		h.Name = rel
		h.Uid, h.Gid, h.Uname, h.Gname = 0, 0, "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
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
	if extra != nil {
		if err := tw.WriteHeader(&tar.Header{Name: extraName, Mode: 0o600, Size: int64(len(extra)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(extra); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

func randomSuffix() string {
	b := make([]byte, 10)
	f, err := os.Open("/dev/urandom")
	if err == nil {
		_, _ = io.ReadFull(f, b)
		f.Close()
	}
	return fmt.Sprintf("%x", b)
}

// renderBuild prints the build stream and returns the image ID from its
// aux message; an error message in the stream is the command's error
// (with the failed RUN's status as exit code).
func renderBuild(in io.Reader, out io.Writer) (string, error) {
	dec := json.NewDecoder(in)
	id := ""
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return id, nil
			}
			return id, err
		}
		if m.Error != nil {
			code := m.Error.Code
			if code == 0 {
				code = 1
			}
			return id, StatusError{Status: m.Error.Message, StatusCode: code}
		}
		if m.Aux != nil {
			var aux struct{ ID string }
			if json.Unmarshal(*m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
			continue
		}
		if m.Stream != "" {
			fmt.Fprint(out, m.Stream)
		} else if m.Status != "" {
			fmt.Fprintln(out, m.Status)
		}
	}
}

// newBuilderCommand is `berth builder` (build, prune).
func (c *Cli) newBuilderCommand() *cobra.Command {
	var all, force bool
	var filters []string
	prune := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				fmt.Fprint(c.out, "WARNING! This will remove all dangling build cache. Are you sure you want to continue? [y/N] ")
				var ans string
				fmt.Fscanln(c.in, &ans)
				if ans != "y" && ans != "Y" {
					return nil
				}
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			opts := client.BuildCachePruneOptions{All: all, Filters: make(client.Filters)}
			for _, f := range filters {
				k, v, _ := strings.Cut(f, "=")
				opts.Filters.Add(k, v)
			}
			res, err := api.BuildCachePrune(cmd.Context(), opts)
			if err != nil {
				return err
			}
			if len(res.Report.CachesDeleted) > 0 {
				fmt.Fprintln(c.out, "Deleted build cache objects:")
				for _, id := range res.Report.CachesDeleted {
					fmt.Fprintln(c.out, id)
				}
				fmt.Fprintln(c.out)
			}
			fmt.Fprintf(c.out, "Total reclaimed space: %s\n", humanSize(int64(res.Report.SpaceReclaimed)))
			return nil
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused build cache, not just dangling ones")
	prune.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	prune.Flags().StringArrayVar(&filters, "filter", nil, `Provide filter values (e.g. "until=24h")`)
	return managementCommand("builder", "Manage builds", withAlias(c.newBuildCommand(), "build"), prune)
}
