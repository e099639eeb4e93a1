package cli

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
)

// indexServer is the key docker uses in config.json for Docker Hub.
const indexServer = "https://index.docker.io/v1/"

func defaultConfigDir() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".docker"
	}
	return filepath.Join(home, ".docker")
}

// configFile is docker's config.json. Fields berth does not know are kept
// in raw so that saving does not lose them.
type configFile struct {
	Auths          map[string]authEntry   `json:"auths"`
	CurrentContext string                 `json:"currentContext,omitempty"`
	DetachKeys     string                 `json:"detachKeys,omitempty"`
	PsFormat       string                 `json:"psFormat,omitempty"`
	ImagesFormat   string                 `json:"imagesFormat,omitempty"`
	Proxies        map[string]proxyConfig `json:"proxies,omitempty"`

	raw map[string]json.RawMessage
}

// proxyConfig is one entry of config.json "proxies", keyed by daemon host
// or "default".
type proxyConfig struct {
	HTTPProxy  string `json:"httpProxy,omitempty"`
	HTTPSProxy string `json:"httpsProxy,omitempty"`
	NoProxy    string `json:"noProxy,omitempty"`
	FTPProxy   string `json:"ftpProxy,omitempty"`
	AllProxy   string `json:"allProxy,omitempty"`
}

// proxyEnv merges the proxy settings for daemon host into the -e values as
// docker does: -e values are keyed by name (a later value replaces an
// earlier one), then HTTP_PROXY/http_proxy etc. are added unless set.
func (cf *configFile) proxyEnv(host string, env []string) []string {
	p, ok := cf.Proxies[host]
	if !ok {
		p = cf.Proxies["default"]
	}
	var order []string
	vals := map[string]string{}
	hasVal := map[string]bool{}
	set := func(k, v string, withVal bool) {
		if _, seen := vals[k]; !seen && !hasVal[k] {
			order = append(order, k)
		}
		vals[k], hasVal[k] = v, withVal
	}
	for _, e := range env {
		k, v, ok := strings.Cut(e, "=")
		set(k, v, ok)
	}
	for _, kv := range []struct{ k, v string }{
		{"HTTP_PROXY", p.HTTPProxy}, {"HTTPS_PROXY", p.HTTPSProxy}, {"NO_PROXY", p.NoProxy},
		{"FTP_PROXY", p.FTPProxy}, {"ALL_PROXY", p.AllProxy},
	} {
		if kv.v == "" {
			continue
		}
		for _, k := range []string{kv.k, strings.ToLower(kv.k)} {
			if _, present := vals[k]; !present && !hasVal[k] {
				set(k, kv.v, true)
			}
		}
	}
	if len(order) == 0 {
		return env
	}
	out := make([]string, 0, len(order))
	for _, k := range order {
		if hasVal[k] {
			out = append(out, k+"="+vals[k])
		} else {
			out = append(out, k)
		}
	}
	return out
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
}

func loadConfigFile(dir string) (*configFile, error) {
	cf := &configFile{Auths: map[string]authEntry{}, raw: map[string]json.RawMessage{}}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return cf, nil
	}
	if err != nil {
		return cf, err
	}
	if err := json.Unmarshal(b, &cf.raw); err != nil {
		return cf, fmt.Errorf("loading config file: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	if err := json.Unmarshal(b, cf); err != nil {
		return cf, fmt.Errorf("loading config file: %s: %w", filepath.Join(dir, "config.json"), err)
	}
	if cf.Auths == nil {
		cf.Auths = map[string]authEntry{}
	}
	return cf, nil
}

// save writes config.json atomically with mode 0600.
func (cf *configFile) save(dir string) error {
	if cf.raw == nil {
		cf.raw = map[string]json.RawMessage{}
	}
	auths, err := json.Marshal(cf.Auths)
	if err != nil {
		return err
	}
	cf.raw["auths"] = auths
	b, err := json.MarshalIndent(cf.raw, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "config.json.tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), filepath.Join(dir, "config.json"))
}

// authConfig returns the stored credentials for a registry host.
func (cf *configFile) authConfig(server string) registry.AuthConfig {
	key := authKey(server)
	ac := registry.AuthConfig{ServerAddress: key}
	e, ok := cf.Auths[key]
	if !ok {
		// docker also accepts entries stored with a scheme or a path.
		for k, v := range cf.Auths {
			if authKey(k) == key {
				e, ok = v, true
				break
			}
		}
	}
	if !ok {
		return ac
	}
	if e.Auth != "" {
		if raw, err := base64.StdEncoding.DecodeString(e.Auth); err == nil {
			ac.Username, ac.Password, _ = strings.Cut(string(raw), ":")
		}
	}
	ac.IdentityToken = e.IdentityToken
	return ac
}

// authKey normalises a registry address to config.json's key: Docker Hub's
// index URL, else the bare host[:port].
func authKey(server string) string {
	s := strings.TrimPrefix(strings.TrimPrefix(server, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return indexServer
	}
	return s
}

// registryOf returns the registry host of an image reference.
func registryOf(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return indexServer
	}
	return authKey(reference.Domain(named))
}

// encodedAuth returns the X-Registry-Auth value for pulling or pushing ref,
// or "" when the config has no credentials for its registry.
func (c *Cli) encodedAuth(ref string) (string, error) {
	cf, err := loadConfigFile(c.configDir)
	if err != nil {
		return "", err
	}
	ac := cf.authConfig(registryOf(ref))
	if ac.Username == "" && ac.IdentityToken == "" {
		return "", nil
	}
	return authconfig.Encode(ac)
}
