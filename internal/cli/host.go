package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultHost is the berthd socket used when no endpoint is configured.
const DefaultHost = "unix:///run/berth/berth.sock"

// resolveHost picks the daemon endpoint: -H, then --context, then BERTH_HOST,
// then DOCKER_HOST, then DOCKER_CONTEXT, then the config file's
// currentContext, then DefaultHost. The context named "default" is the
// default endpoint.
func (c *Cli) resolveHost() (string, error) {
	return resolveHostFrom(c.hosts, c.contextArg, c.configDir)
}

// resolveHostFrom is resolveHost for the given -H values, --context and
// --config.
func resolveHostFrom(hosts []string, contextArg, configDir string) (string, error) {
	if len(hosts) > 1 {
		return "", errors.New("specify only one -H")
	}
	if len(hosts) == 1 {
		if contextArg != "" {
			return "", errors.New(`conflicting options: cannot specify both --host and --context`)
		}
		return hosts[0], nil
	}
	if contextArg != "" {
		return contextHost(configDir, contextArg)
	}
	if h := os.Getenv("BERTH_HOST"); h != "" {
		return h, nil
	}
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h, nil
	}
	if name := os.Getenv("DOCKER_CONTEXT"); name != "" {
		return contextHost(configDir, name)
	}
	if cf, err := loadConfigFile(configDir); err == nil && cf.CurrentContext != "" {
		return contextHost(configDir, cf.CurrentContext)
	}
	return DefaultHost, nil
}

// contextMeta is the part of docker's context store metadata berth reads.
type contextMeta struct {
	Name      string `json:"Name"`
	Endpoints map[string]struct {
		Host string `json:"Host"`
	} `json:"Endpoints"`
}

// contextHost reads the docker endpoint of context name from docker's
// context store: <config>/contexts/meta/<sha256(name)>/meta.json.
func contextHost(configDir, name string) (string, error) {
	if name == "default" {
		return DefaultHost, nil
	}
	sum := sha256.Sum256([]byte(name))
	p := filepath.Join(configDir, "contexts", "meta", hex.EncodeToString(sum[:]), "meta.json")
	b, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("context %q does not exist", name)
		}
		return "", fmt.Errorf("loading context %q: %w", name, err)
	}
	var m contextMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return "", fmt.Errorf("parsing context %q metadata: %w", name, err)
	}
	ep, ok := m.Endpoints["docker"]
	if !ok || ep.Host == "" {
		return "", fmt.Errorf("context %q has no docker endpoint", name)
	}
	return ep.Host, nil
}
