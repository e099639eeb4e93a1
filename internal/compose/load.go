package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// LoadOptions selects and parameterises a project, as the global options
// of `docker compose` do.
type LoadOptions struct {
	ConfigPaths []string // -f, in order; later files override earlier ones
	ProjectName string   // -p
	WorkingDir  string   // --project-directory
	EnvFiles    []string // --env-file
	Profiles    []string // --profile
	// Environ is the environment used for interpolation, COMPOSE_* variables
	// and .env lookups; nil means os.Environ().
	Environ []string
	// Services restricts the project to these services and what they
	// depend on; services named here are enabled even if their profile is
	// not.
	Services []string
	// Version is recorded in the com.docker.compose.version label.
	Version string
	// For `config`: skip interpolation, normalisation, path resolution or
	// the consistency checks.
	NoInterpolate, NoNormalize, NoResolvePaths, NoConsistency bool
}

// Load reads the project: compose files (COMPOSE_FILE, or compose.yaml /
// docker-compose.yml found in the working directory or a parent), .env and
// --env-file interpolation, profiles (COMPOSE_PROFILES), extends and
// include, and the project name (-p, COMPOSE_PROJECT_NAME, name:, then the
// directory name normalised). Services get the Compose labels of the
// project. A dependency cycle is an error.
func Load(ctx context.Context, o LoadOptions) (*types.Project, error) {
	environ := o.Environ
	if environ == nil {
		environ = os.Environ()
	}
	if !hasEnv(environ, "PWD") {
		if wd, err := os.Getwd(); err == nil {
			environ = append(environ, "PWD="+wd)
		}
	}
	popts, err := cli.NewProjectOptions(o.ConfigPaths,
		cli.WithWorkingDirectory(o.WorkingDir),
		cli.WithEnv(environ),
		cli.WithEnvFiles(o.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		// The project directory may differ from the current one: read its
		// .env now that it is known.
		cli.WithEnvFiles(o.EnvFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(o.Profiles...),
		cli.WithName(o.ProjectName),
		// As Docker Compose: env_file is folded into environment and
		// dropped, so it is not part of the config hash (nor of `config`).
		cli.WithDiscardEnvFile,
		cli.WithResolvedPaths(!o.NoResolvePaths),
		cli.WithInterpolation(!o.NoInterpolate),
		cli.WithNormalization(!o.NoNormalize),
		cli.WithConsistency(!o.NoConsistency),
	)
	if err != nil {
		return nil, err
	}
	p, err := popts.LoadProject(ctx)
	if err != nil {
		return nil, locateError(err, popts.ConfigPaths)
	}
	if p.Name == "" {
		return nil, errors.New("project name can't be empty. Use `--project-name` to set a valid name")
	}
	p, err = p.WithServicesEnabled(o.Services...)
	if err != nil {
		return nil, err
	}
	for name, s := range p.Services {
		s.CustomLabels = map[string]string{
			LabelProject:     p.Name,
			LabelService:     name,
			LabelVersion:     o.Version,
			LabelWorkingDir:  p.WorkingDir,
			LabelConfigFiles: strings.Join(p.ComposeFiles, ","),
			LabelOneoff:      "False",
		}
		if len(o.EnvFiles) > 0 {
			s.CustomLabels[LabelEnvironmentFile] = strings.Join(o.EnvFiles, ",")
		}
		p.Services[name] = s
	}
	if _, err := newGraph(p); err != nil {
		return nil, err
	}
	if len(o.Services) > 0 {
		p, err = p.WithSelectedServices(o.Services)
		if err != nil {
			return nil, err
		}
	}
	return p.WithoutUnnecessaryResources(), nil
}

func hasEnv(environ []string, key string) bool {
	for _, kv := range environ {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}

// locateError makes sure a load error names the file it comes from:
// compose-go's validation errors do, YAML syntax errors do not, so the
// file that fails to parse is found and prefixed.
func locateError(err error, files []string) error {
	msg := err.Error()
	for _, f := range files {
		if strings.Contains(msg, f) {
			return err
		}
	}
	for _, f := range files {
		if f == "-" {
			continue
		}
		b, rerr := os.ReadFile(f)
		if rerr != nil {
			continue
		}
		var v any
		if yaml.Unmarshal(b, &v) != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return err
}

// serviceNotFound reports an unknown service name the way Compose does.
func serviceNotFound(name string) error {
	return fmt.Errorf("no such service: %s", name)
}
