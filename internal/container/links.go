package container

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/network"
)

// linkEnv is the environment of r's legacy links (--link name[:alias])
// as Docker sets it, for a container on the default bridge network
// linked to running containers also on it: <ALIAS>_NAME,
// <ALIAS>_PORT, <ALIAS>_PORT_<port>_<PROTO>{,_ADDR,_PORT,_PROTO},
// _START/_END/_PORT_START/_PORT_END for runs of consecutive ports, and
// <ALIAS>_ENV_<VAR> for each variable of the linked container but HOME
// and PATH. A linked container that is not running is an error, as with
// Docker.
func (s *Service) linkEnv(r *Record) ([]string, error) {
	if len(r.Host.Links) == 0 {
		return nil, nil
	}
	if ni := r.Networks["bridge"]; ni == nil {
		return nil, nil
	}
	parent := "/" + strings.TrimPrefix(r.Name, "/")
	var env []string
	for _, l := range r.Host.Links {
		name, alias := splitLink(l)
		c, err := s.Get(name)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if !c.rec.State.Running() {
			cname := "/" + strings.TrimPrefix(c.rec.Name, "/")
			c.mu.Unlock()
			if alias == "" {
				alias = cname[1:]
			}
			// Docker's message (and a plain error: 500, as dockerd).
			return nil, fmt.Errorf("Cannot link to a non running container: %s AS %s/%s", cname, parent, alias)
		}
		var ip string
		if ni := c.rec.Networks["bridge"]; ni != nil && ni.Endpoint != nil && ni.Endpoint.IPAddress.IsValid() {
			ip = ni.Endpoint.IPAddress.String()
		}
		if alias == "" {
			alias = strings.TrimPrefix(c.rec.Name, "/")
		}
		var childEnv []string
		var ports []network.Port
		if c.rec.Config != nil {
			childEnv = slices.Clone(c.rec.Config.Env)
			for p := range c.rec.Config.ExposedPorts {
				ports = append(ports, p)
			}
		}
		c.mu.Unlock()
		if ip == "" {
			continue
		}
		env = append(env, linkVars(parent+"/"+alias, ip, ports, childEnv)...)
	}
	return env, nil
}

// linkVars are the variables of one link named full ("/parent/alias").
func linkVars(full, ip string, ports []network.Port, childEnv []string) []string {
	prefix := strings.ReplaceAll(strings.ToUpper(full[strings.LastIndex(full, "/")+1:]), "-", "_")
	// By number, TCP first on a tie (Docker's order).
	slices.SortFunc(ports, func(a, b network.Port) int {
		if a.Num() != b.Num() {
			return int(a.Num()) - int(b.Num())
		}
		if a.Proto() == "tcp" {
			return -1
		}
		if b.Proto() == "tcp" {
			return 1
		}
		return strings.Compare(string(a.Proto()), string(b.Proto()))
	})
	var env []string
	key := func(p network.Port) string {
		return fmt.Sprintf("%s_PORT_%d_%s", prefix, p.Num(), strings.ToUpper(string(p.Proto())))
	}
	if len(ports) > 0 {
		p := ports[0]
		env = append(env, fmt.Sprintf("%s_PORT=%s://%s:%d", prefix, p.Proto(), ip, p.Num()))
	}
	// Runs of at least three consecutive numbers (Docker's rule, which
	// looks at the numbers only) get a range set too.
	for i := 0; i < len(ports); {
		j, v := i, int(ports[i].Num())
		for k := i + 1; k < len(ports) && int(ports[k].Num()) <= v+1; k++ {
			j, v = k, v+1
		}
		if j <= i+1 {
			i++
			continue
		}
		start, end := ports[i], ports[j]
		k := key(start)
		endKey := fmt.Sprintf("%s_PORT_%d_%s", prefix, start.Num(), strings.ToUpper(string(end.Proto())))
		env = append(env,
			fmt.Sprintf("%s_START=%s://%s:%d", k, start.Proto(), ip, start.Num()),
			fmt.Sprintf("%s_ADDR=%s", k, ip),
			fmt.Sprintf("%s_PROTO=%s", k, start.Proto()),
			fmt.Sprintf("%s_PORT_START=%d", k, start.Num()),
			fmt.Sprintf("%s_END=%s://%s:%d", endKey, end.Proto(), ip, end.Num()),
			fmt.Sprintf("%s_PORT_END=%d", endKey, end.Num()))
		i = j + 1
	}
	for _, p := range ports {
		k := key(p)
		env = append(env,
			fmt.Sprintf("%s=%s://%s:%d", k, p.Proto(), ip, p.Num()),
			fmt.Sprintf("%s_ADDR=%s", k, ip),
			fmt.Sprintf("%s_PORT=%d", k, p.Num()),
			fmt.Sprintf("%s_PROTO=%s", k, p.Proto()))
	}
	env = append(env, prefix+"_NAME="+full)
	for _, v := range childEnv {
		name, val, ok := strings.Cut(v, "=")
		if !ok || name == "HOME" || name == "PATH" {
			continue
		}
		env = append(env, prefix+"_ENV_"+name+"="+val)
	}
	return env
}

// withLinkEnv adds the link variables to a process environment; the
// container's own variables win, as with Docker.
func withLinkEnv(env, links []string) []string {
	have := map[string]bool{}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		have[k] = true
	}
	for _, e := range links {
		k, _, _ := strings.Cut(e, "=")
		if !have[k] {
			env = append(env, e)
			have[k] = true
		}
	}
	return env
}
