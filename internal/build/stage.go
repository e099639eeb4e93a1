package build

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/image/reference"
)

// dispatcher builds one stage, instruction by instruction.
type dispatcher struct {
	s   *session
	sr  *stageRun
	st  *image.State
	key string
	// args are the ARGs in scope with a value.
	args *envMap
	// cmdSet: CMD was given in this stage (ENTRYPOINT then keeps it).
	cmdSet bool
	step   int
	// global are the ARGs before the first FROM (with build args): an
	// ARG redeclared in the stage without a default takes its value.
	global *envMap
}

func (s *session) buildStage(ctx context.Context, sr *stageRun, meta *envMap) (*image.State, string, error) {
	d := &dispatcher{s: s, sr: sr, args: newEnvMap(), step: sr.first, global: meta}
	stage := sr.stage
	d.printf("Step %d/%d : %s\n", d.step, s.total, strings.TrimSpace(stage.SourceCode))
	if stage.Platform != "" {
		p, err := expandWord(s.df.escape, stage.Platform, meta)
		if err != nil {
			return nil, "", stepError(stage.Location, err)
		}
		if err := s.b.checkPlatform(p); err != nil {
			return nil, "", stepError(stage.Location, err)
		}
	}
	if err := d.from(ctx, stage.BaseName); err != nil {
		return nil, "", stepError(stage.Location, err)
	}
	// The base image's ONBUILD triggers run first, and are consumed.
	if triggers := d.st.Config.Config.OnBuild; len(triggers) > 0 {
		d.st.Config.Config.OnBuild = nil
		d.key = cacheKey(d.key, "onbuild-consumed")
		d.printf("# Executing %d build trigger", len(triggers))
		if len(triggers) > 1 {
			d.printf("s")
		}
		d.printf("\n")
		for _, t := range triggers {
			res, err := parser.Parse(strings.NewReader(t))
			if err != nil {
				return nil, "", err
			}
			for _, n := range res.AST.Children {
				cmd, err := instructions.ParseCommand(n)
				if err != nil {
					return nil, "", stepError(stage.Location, err)
				}
				if err := d.dispatch(ctx, cmd); err != nil {
					return nil, "", stepError(stage.Location, fmt.Errorf("ONBUILD %s: %w", t, err))
				}
			}
		}
	}
	for _, cmd := range stage.Commands {
		d.step++
		d.printf("Step %d/%d : %s\n", d.step, s.total, commandText(cmd))
		if err := d.dispatch(ctx, cmd); err != nil {
			return nil, "", stepError(cmd.Location(), err)
		}
	}
	return d.st, d.key, nil
}

func commandText(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return s.String()
	}
	return cmd.Name()
}

func (d *dispatcher) printf(format string, a ...any) {
	d.s.printer.write(d.sr.idx, fmt.Sprintf(format, a...))
}

// from sets the stage's base: an earlier stage, scratch or an image
// (pulled when missing, or always with --pull).
func (d *dispatcher) from(ctx context.Context, base string) error {
	s := d.s
	if j, ok := s.df.stageIndex(base, d.sr.idx); ok {
		src := s.stages[j]
		d.st, d.key = src.state.Clone(), src.key
		d.printf(" ---> %s\n", shortID(d.st.ID().String()))
		return nil
	}
	if strings.EqualFold(base, "scratch") {
		d.st = s.b.cfg.Images.Scratch()
		p := d.st.Config.Platform
		d.key = cacheKey("", "scratch", p.OS, p.Architecture)
		d.printf(" ---> \n")
		return nil
	}
	if _, err := reference.Parse(base); err != nil {
		return errdefs.With(errdefs.InvalidArgument, fmt.Errorf("invalid reference format: %q", base))
	}
	if s.opts.Pull && s.b.cfg.Pull != nil {
		if err := s.b.cfg.Pull(ctx, base, s.opts.AuthConfigs); err != nil {
			return err
		}
	}
	st, id, err := s.b.cfg.Images.StateOf(ctx, base)
	if errdefs.Is(err, errdefs.NotFound) && !s.opts.Pull && s.b.cfg.Pull != nil {
		if perr := s.b.cfg.Pull(ctx, base, s.opts.AuthConfigs); perr != nil {
			return perr
		}
		st, id, err = s.b.cfg.Images.StateOf(ctx, base)
	}
	if err != nil {
		return err
	}
	d.st, d.key = st, cacheKey("", "from", id.String())
	d.printf(" ---> %s\n", shortID(id.String()))
	return nil
}

// env is the expansion scope: ARGs, overridden by the config's ENV.
func (d *dispatcher) env() *envMap {
	e := newEnvMap()
	for _, k := range d.args.keys {
		e.Set(k, d.args.vals[k])
	}
	for _, kv := range d.st.Config.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		e.Set(k, v)
	}
	return e
}

func (d *dispatcher) expander() instructions.SingleWordExpander {
	env := d.env()
	return func(word string) (string, error) {
		return expandWord(d.s.df.escape, word, env)
	}
}

// argsEnv are the ARGs a RUN sees as environment (those ENV does not
// override), as "k=v", sorted.
func (d *dispatcher) argsEnv() []string {
	set := map[string]bool{}
	for _, kv := range d.st.Config.Config.Env {
		k, _, _ := strings.Cut(kv, "=")
		set[k] = true
	}
	var out []string
	for _, k := range d.args.keys {
		if !set[k] {
			out = append(out, k+"="+d.args.vals[k])
		}
	}
	for k, v := range d.s.opts.BuildArgs {
		if builtinArgs[k] && v != nil && !set[k] {
			if _, declared := d.args.vals[k]; !declared {
				out = append(out, k+"="+*v)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (d *dispatcher) shell() []string {
	if sh := d.st.Config.Config.Shell; len(sh) > 0 {
		return append([]string(nil), sh...)
	}
	return []string{"/bin/sh", "-c"}
}

// commandLine is the argv of a shell-dependent instruction.
func (d *dispatcher) commandLine(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string(nil), c.CmdLine...)
	}
	line := strings.Join(c.CmdLine, " ")
	if len(c.Files) > 0 {
		if len(c.CmdLine) == 1 && strings.HasPrefix(strings.TrimSpace(c.CmdLine[0]), "<<") {
			// RUN <<EOF ... EOF: the document is the script.
			line = c.Files[0].Data
		} else {
			// The shell reads here-documents itself.
			var b strings.Builder
			b.WriteString(line)
			b.WriteString("\n")
			for _, f := range c.Files {
				b.WriteString(f.Data)
				if !strings.HasSuffix(f.Data, "\n") {
					b.WriteString("\n")
				}
				b.WriteString(f.Name + "\n")
			}
			line = b.String()
		}
	}
	return append(d.shell(), line)
}

func (d *dispatcher) dispatch(ctx context.Context, cmd instructions.Command) error {
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		env := d.env()
		lex := shell.NewLex(d.s.df.escape)
		lex.RawQuotes, lex.RawEscapes = true, true
		if err := ex.ExpandRaw(func(word string) (string, error) {
			out, _, err := lex.ProcessWord(word, env)
			return out, err
		}); err != nil {
			return err
		}
	}
	if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		if err := ex.Expand(d.expander()); err != nil {
			return err
		}
	}
	cfg := &d.st.Config.Config
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		var parts []string
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		return d.meta("ENV " + strings.Join(parts, " "))
	case *instructions.LabelCommand:
		var parts []string
		for _, kv := range c.Labels {
			if cfg.Labels == nil {
				cfg.Labels = map[string]string{}
			}
			cfg.Labels[kv.Key] = kv.Value
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		return d.meta("LABEL " + strings.Join(parts, " "))
	case *instructions.MaintainerCommand:
		d.st.Config.Author = c.Maintainer
		return d.meta("MAINTAINER " + c.Maintainer)
	case *instructions.ExposeCommand:
		var ports []string
		for _, p := range c.Ports {
			ex, err := expandWord(d.s.df.escape, p, d.env())
			if err != nil {
				return err
			}
			ports = append(ports, strings.Fields(ex)...)
		}
		if err := image.ApplyChanges(&d.st.Config.Config, []string{"EXPOSE " + strings.Join(ports, " ")}); err != nil {
			return err
		}
		var keys []string
		for p := range cfg.ExposedPorts {
			keys = append(keys, p)
		}
		sort.Strings(keys)
		return d.meta("EXPOSE " + strings.Join(keys, " "))
	case *instructions.CmdCommand:
		cfg.Cmd = d.commandLine(c.ShellDependantCmdLine)
		d.cmdSet = true
		return d.meta("CMD " + jsonList(cfg.Cmd))
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = d.commandLine(c.ShellDependantCmdLine)
		if !c.PrependShell && len(c.CmdLine) == 0 {
			cfg.Entrypoint = nil
		}
		if !d.cmdSet {
			cfg.Cmd = nil
		}
		return d.meta("ENTRYPOINT " + jsonList(cfg.Entrypoint))
	case *instructions.UserCommand:
		cfg.User = c.User
		return d.meta("USER " + c.User)
	case *instructions.VolumeCommand:
		for _, v := range c.Volumes {
			if v == "" {
				return errdefs.Newf(errdefs.InvalidArgument, "VOLUME specified can not be an empty string")
			}
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
		}
		return d.meta("VOLUME " + jsonList(c.Volumes))
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
		return d.meta("STOPSIGNAL " + c.Signal)
	case *instructions.HealthCheckCommand:
		cfg.Healthcheck = c.Health
		return d.meta("HEALTHCHECK " + strings.Join(c.Health.Test, " "))
	case *instructions.ShellCommand:
		cfg.Shell = append([]string(nil), c.Shell...)
		return d.meta("SHELL " + jsonList(c.Shell))
	case *instructions.OnbuildCommand:
		cfg.OnBuild = append(cfg.OnBuild, c.Expression)
		return d.meta("ONBUILD " + c.Expression)
	case *instructions.ArgCommand:
		return d.arg(c)
	case *instructions.WorkdirCommand:
		return d.workdir(ctx, c)
	case *instructions.RunCommand:
		return d.run(ctx, c)
	case *instructions.CopyCommand:
		return d.copy(ctx, copySpec{
			name: "COPY", srcs: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath, from: c.From,
			chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, parents: c.Parents, link: c.Link,
		})
	case *instructions.AddCommand:
		return d.copy(ctx, copySpec{
			name: "ADD", srcs: c.SourcePaths, contents: c.SourceContents, dest: c.DestPath,
			chown: c.Chown, chmod: c.Chmod, excludes: c.ExcludePatterns, link: c.Link,
			checksum: c.Checksum, unpack: c.Unpack == nil || *c.Unpack, add: true, keepGit: c.KeepGitDir,
		})
	}
	return errdefs.Newf(errdefs.NotImplemented, "%s is not supported", strings.ToUpper(cmd.Name()))
}

// arg declares build arguments in the stage's scope.
func (d *dispatcher) arg(c *instructions.ArgCommand) error {
	var parts []string
	for _, kv := range c.Args {
		v, has := "", false
		if kv.Value != nil {
			v, has = *kv.Value, true
		}
		d.s.mu.Lock()
		if bv, ok := d.s.opts.BuildArgs[kv.Key]; ok && bv != nil {
			v, has = *bv, true
			d.s.consumed[kv.Key] = true
		} else if ok {
			d.s.consumed[kv.Key] = true
		}
		d.s.mu.Unlock()
		if !has && d.global != nil {
			v, has = d.global.Get(kv.Key)
		}
		if has {
			d.args.Set(kv.Key, v)
			parts = append(parts, kv.Key+"="+v)
		} else {
			parts = append(parts, kv.Key)
		}
	}
	// Arguments are recorded as an empty-layer history entry (as the
	// classic builder does); their values are part of the key of what
	// follows.
	// The declaration as written: values reach the keys of the steps
	// that use them (RUN's environment, expanded words), not this one.
	return d.meta(commandText(c))
}

// meta records a metadata-only step: an empty-layer history entry, the
// result cached (so rebuilds give the same image ID).
func (d *dispatcher) meta(desc string) error {
	key := cacheKey(d.key, "meta", desc)
	applied := d.st.Clone()
	return d.stepWith(key, desc, func() (*image.State, int64, error) {
		now := time.Now().UTC()
		applied.Config.History = append(applied.Config.History, ocispec.History{
			Created: &now, CreatedBy: "/bin/sh -c #(nop)  " + desc, EmptyLayer: true,
		})
		applied.Config.Created = &now
		return applied, 0, nil
	}, true)
}

// stepWith looks key up in the cache or computes the step, records it
// and makes it the current state. verbose prints "Using cache" for hits.
func (d *dispatcher) stepWith(key, desc string, compute func() (*image.State, int64, error), verbose bool) error {
	if !d.s.opts.NoCache {
		e := d.s.b.cache.get(key)
		if e == nil {
			e = d.s.fromImports(d, key, desc) // cacheio.go
		}
		if e != nil {
			d.s.mu.Lock()
			d.s.hits = append(d.s.hits, key)
			d.s.mu.Unlock()
			d.st, d.key = e.State, key
			if verbose {
				d.printf(" ---> Using cache\n")
			}
			d.printf(" ---> %s\n", shortID(d.st.ID().String()))
			return nil
		}
	}
	v, err, _ := d.s.b.steps.Do(key, func() (any, error) {
		// Another build may have finished this step between the lookup
		// above and now (the flight only joins calls in progress).
		if !d.s.opts.NoCache {
			if e := d.s.b.cache.get(key); e != nil {
				return e.State, nil
			}
		}
		st, size, err := compute()
		if err != nil {
			return nil, err
		}
		if err := d.s.b.cache.put(key, &cacheEntry{State: st, Parent: d.key, Description: desc, Size: size}); err != nil {
			return nil, err
		}
		return st, nil
	})
	if err != nil {
		return err
	}
	d.st, d.key = v.(*image.State).Clone(), key
	d.printf(" ---> %s\n", shortID(d.st.ID().String()))
	return nil
}

// workdir sets the working directory and creates it when missing.
func (d *dispatcher) workdir(ctx context.Context, c *instructions.WorkdirCommand) error {
	p := c.Path
	if !path.IsAbs(p) {
		p = path.Join("/", d.st.Config.Config.WorkingDir, p)
	}
	p = path.Clean(p)
	d.st.Config.Config.WorkingDir = p
	key := cacheKey(d.key, "WORKDIR", p)
	parent := d.st.Clone()
	return d.stepWith(key, "WORKDIR "+p, func() (*image.State, int64, error) {
		return d.s.withRootfs(ctx, parent, "WORKDIR "+p, func(root string) error {
			target, err := secureJoin(root, p)
			if err != nil {
				return err
			}
			return mkdirAllOwned(target, 0, 0)
		})
	}, true)
}

func jsonList(l []string) string {
	var b strings.Builder
	b.WriteString("[")
	for i, s := range l {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%q", s)
	}
	b.WriteString("]")
	return b.String()
}

func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if name, _, _ := strings.Cut(e, "="); name == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

func familiar(ref string) string {
	r, err := reference.Parse(ref)
	if err != nil {
		return ref
	}
	if r.Tag() == "" && r.Digest() == "" {
		r, _ = r.WithTag("latest")
	}
	return r.Familiar()
}

// orderedOutput prints the stages' output in stage order: the stage at
// the head streams live, later ones are buffered until it is done.
type orderedOutput struct {
	mu    sync.Mutex
	out   Output
	quiet bool
	order []int
	pos   int
	bufs  map[int]*strings.Builder
	done  map[int]bool
}

func newOrderedOutput(out Output, order []int, quiet bool) *orderedOutput {
	return &orderedOutput{out: out, quiet: quiet, order: order, bufs: map[int]*strings.Builder{}, done: map[int]bool{}}
}

func (o *orderedOutput) write(stage int, s string) {
	if o.quiet || s == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pos < len(o.order) && o.order[o.pos] == stage {
		o.out.Stream(s)
		return
	}
	b := o.bufs[stage]
	if b == nil {
		b = &strings.Builder{}
		o.bufs[stage] = b
	}
	b.WriteString(s)
}

func (o *orderedOutput) finish(stage int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done[stage] = true
	for o.pos < len(o.order) && o.done[o.order[o.pos]] {
		o.pos++
		if o.pos < len(o.order) {
			if b := o.bufs[o.order[o.pos]]; b != nil && !o.quiet {
				o.out.Stream(b.String())
				b.Reset()
			}
		}
	}
}

// streamWriter sends a stage's process output to the printer.
type streamWriter struct {
	d *dispatcher
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.d.s.printer.write(w.d.sr.idx, string(p))
	return len(p), nil
}

// withLayer is parent with layer (nil: none, an empty-layer history
// entry) on top and a history entry created now by createdBy; size is the
// layer's.
func withLayer(parent *image.State, layer *image.Layer, createdBy string) (*image.State, int64) {
	st := parent.Clone()
	now := time.Now().UTC()
	h := ocispec.History{Created: &now, CreatedBy: createdBy}
	var size int64
	if layer != nil {
		st.Layers = append(st.Layers, *layer)
		size = layer.Size
	} else {
		h.EmptyLayer = true
	}
	st.Config.History = append(st.Config.History, h)
	st.Config.Created = &now
	return st, size
}
