package compose

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/client"
)

// BuildOptions are `compose build`'s flags.
type BuildOptions struct {
	Services []string
	NoCache  bool
	Pull     bool
	Quiet    bool
	Args     map[string]*string // --build-arg, over build.args
	// Output receives the builder's output (nil: the progress stream).
	Output io.Writer
}

// inlineDockerfile is the name the build context gets for a
// dockerfile_inline.
const inlineDockerfile = ".compose-inline.Dockerfile"

// Build builds the images of the services that have a build section
// (all of them when o.Services is empty) with the classic builder
// (POST /build): the context directory is sent as a tar stream, with
// .dockerignore applied; dockerfile, target, args, labels, cache_from,
// extra_hosts, network, shm_size and tags are passed along.
func (e *Engine) Build(ctx context.Context, p *types.Project, o BuildOptions) error {
	services, err := servicesOf(p, o.Services)
	if err != nil {
		return err
	}
	for _, s := range services {
		if s.Build == nil {
			continue
		}
		if err := e.buildService(ctx, p, s, o); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) buildService(ctx context.Context, p *types.Project, s types.ServiceConfig, o BuildOptions) error {
	b := s.Build
	ref := ImageName(p.Name, s)
	dir := b.Context
	if dir == "" {
		dir = p.WorkingDir
	}
	if strings.Contains(dir, "://") || strings.HasPrefix(dir, "git@") {
		return fmt.Errorf("service %q: remote build contexts are not supported: %s", s.Name, dir)
	}
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if filepath.IsAbs(dockerfile) {
		rel, err := filepath.Rel(dir, dockerfile)
		if err != nil || strings.HasPrefix(rel, "..") {
			return fmt.Errorf("service %q: the Dockerfile (%s) must be within the build context (%s)", s.Name, dockerfile, dir)
		}
		dockerfile = rel
	}
	inline := ""
	if b.DockerfileInline != "" {
		inline = b.DockerfileInline
		dockerfile = inlineDockerfile
	}
	args := map[string]*string{}
	for k, v := range b.Args {
		args[k] = v
	}
	for k, v := range o.Args {
		args[k] = v
	}
	tags := append([]string{ref}, b.Tags...)
	// As Docker Compose: the image carries the build's labels and the
	// compose version, project and service.
	labels := map[string]string{}
	for k, v := range b.Labels {
		labels[k] = v
	}
	labels[LabelVersion] = e.Version
	labels[LabelProject] = p.Name
	labels[LabelService] = s.Name
	opts := client.ImageBuildOptions{
		Tags:        tags,
		Dockerfile:  filepath.ToSlash(dockerfile),
		BuildArgs:   args,
		Labels:      labels,
		CacheFrom:   b.CacheFrom,
		Target:      b.Target,
		NoCache:     o.NoCache || b.NoCache,
		PullParent:  o.Pull || b.Pull,
		NetworkMode: b.Network,
		ShmSize:     int64(b.ShmSize),
		ExtraHosts:  extraHosts(b.ExtraHosts),
		Remove:      true,
		ForceRemove: true,
	}
	for _, pl := range b.Platforms {
		if parsed, err := parsePlatform(pl); err == nil {
			opts.Platforms = append(opts.Platforms, parsed)
		}
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContext(pw, dir, dockerfile, inline)) }()
	resource := "Service " + s.Name
	e.event(resource, "Building")
	res, err := e.API.ImageBuild(ctx, pr, opts)
	if err != nil {
		pr.CloseWithError(err)
		e.event(resource, "Error")
		return fmt.Errorf("building %s: %w", s.Name, err)
	}
	defer res.Body.Close()
	out := o.Output
	if out == nil && !o.Quiet {
		out = e.Progress
	}
	if o.Quiet {
		out = nil
	}
	if err := readBuildStream(res.Body, out); err != nil {
		e.event(resource, "Error")
		return fmt.Errorf("building %s: %w", s.Name, err)
	}
	e.event(resource, "Built")
	return nil
}

// readBuildStream copies the build's stream messages and fails on the
// first error message.
func readBuildStream(r io.Reader, out io.Writer) error {
	dec := json.NewDecoder(r)
	for {
		var m struct {
			Stream      string `json:"stream"`
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return fmt.Errorf("%s", m.ErrorDetail.Message)
		}
		if m.Error != "" {
			return fmt.Errorf("%s", m.Error)
		}
		if out != nil && m.Stream != "" {
			_, _ = io.WriteString(out, m.Stream)
		}
	}
}

// writeContext writes dir as a tar stream, leaving out what .dockerignore
// excludes (the Dockerfile and .dockerignore are always sent), plus the
// inline Dockerfile when given.
func writeContext(w io.Writer, dir, dockerfile, inline string) error {
	ignore, err := readDockerignore(dir)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if rel != dockerfile && rel != ".dockerignore" && ignore.excluded(rel) {
			if d.IsDir() && !ignore.hasExceptions() {
				return filepath.SkipDir
			}
			return nil
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, rel := range files {
		full := filepath.Join(dir, filepath.FromSlash(rel))
		fi, err := os.Lstat(full)
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(full); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = rel
		if fi.IsDir() {
			h.Name += "/"
		}
		h.Uname, h.Gname = "", ""
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	if inline != "" {
		if err := tw.WriteHeader(&tar.Header{Name: inlineDockerfile, Mode: 0o644, Size: int64(len(inline)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, inline); err != nil {
			return err
		}
	}
	return tw.Close()
}

// ignoreRules are .dockerignore patterns: path.Match patterns on the
// slash-separated path, "**" matching any number of directories, "!"
// re-including, the last matching rule deciding.
type ignoreRules []struct {
	pattern string
	exclude bool
}

func readDockerignore(dir string) (ignoreRules, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rules ignoreRules
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		exclude := true
		if strings.HasPrefix(line, "!") {
			exclude = false
			line = strings.TrimSpace(line[1:])
		}
		line = path.Clean(strings.TrimPrefix(filepath.ToSlash(line), "/"))
		rules = append(rules, struct {
			pattern string
			exclude bool
		}{line, exclude})
	}
	return rules, sc.Err()
}

func (r ignoreRules) hasExceptions() bool {
	for _, rule := range r {
		if !rule.exclude {
			return true
		}
	}
	return false
}

func (r ignoreRules) excluded(rel string) bool {
	out := false
	for _, rule := range r {
		if matchIgnore(rule.pattern, rel) {
			out = rule.exclude
		}
	}
	return out
}

// matchIgnore matches pattern against rel or one of its parent
// directories (excluding a directory excludes its content).
func matchIgnore(pattern, rel string) bool {
	for p := rel; p != "." && p != "/" && p != ""; p = path.Dir(p) {
		if globMatch(strings.Split(pattern, "/"), strings.Split(p, "/")) {
			return true
		}
	}
	return false
}

func globMatch(pat, parts []string) bool {
	if len(pat) == 0 {
		return len(parts) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(parts); i++ {
			if globMatch(pat[1:], parts[i:]) {
				return true
			}
		}
		return false
	}
	if len(parts) == 0 {
		return false
	}
	if ok, _ := path.Match(pat[0], parts[0]); !ok {
		return false
	}
	return globMatch(pat[1:], parts[1:])
}
