package cli

import (
	"encoding/json"
	"fmt"
	"github.com/distribution/reference"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

const defaultPsFormat = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

var psHeaders = map[string]string{
	"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
	"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS",
	"Size": "SIZE", "Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS",
	"Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES", "Platform": "PLATFORM",
}

func (c *Cli) newPsCommand() *cobra.Command {
	var (
		all, latest, noTrunc, quiet, size bool
		last                              int
		format                            string
		filters                           filterOpts
	)
	cmd := &cobra.Command{
		Use:   "ps [OPTIONS]",
		Short: "List containers",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == "" {
				if cf, err := loadConfigFile(c.configDir); err == nil && cf.PsFormat != "" && !quiet {
					format = cf.PsFormat
				}
			}
			if latest && last == -1 {
				last = 1
			}
			opts := client.ContainerListOptions{All: all, Limit: last, Filters: filters.f, Size: size}
			if !quiet && strings.Contains(format, ".Size") {
				opts.Size = true
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.ContainerList(cmd.Context(), opts)
			if err != nil {
				return err
			}
			def := defaultPsFormat
			if size {
				def += "\t{{.Size}}"
			}
			rows := make([]any, 0, len(res.Items))
			for _, s := range res.Items {
				rows = append(rows, psRow{s: s, trunc: !noTrunc})
			}
			return listFormat{Format: format, Default: def, Quiet: quiet, Headers: psHeaders}.write(c.out, rows)
		},
	}
	fs := cmd.Flags()
	fs.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fs.VarP(&filters, "filter", "f", "Filter output based on conditions provided")
	fs.StringVar(&format, "format", "", formatHelp)
	fs.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fs.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fs.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fs.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	return cmd
}

const formatHelp = "Format output using a custom template:\n" +
	"'table':            Print output in table format with column headers (default)\n" +
	"'table TEMPLATE':   Print output in table format using the given Go template\n" +
	"'json':             Print in JSON format\n" +
	"'TEMPLATE':         Print output using the given Go template.\n" +
	"Refer to https://docs.docker.com/go/formatting/ for more information about formatting output with templates"

// psRow exposes a container summary with the fields of docker's
// ContainerContext.
type psRow struct {
	s     container.Summary
	trunc bool
}

func (r psRow) MarshalJSON() ([]byte, error) { return fieldsJSON(r) }

func (r psRow) ID() string {
	if r.trunc {
		return truncateID(r.s.ID)
	}
	return r.s.ID
}

// Names lists the container's names; truncated output shows only the first
// name that is not a legacy link ("other/alias").
func (r psRow) Names() string {
	var names []string
	for _, n := range r.s.Names {
		n = strings.TrimPrefix(n, "/")
		if r.trunc {
			if !strings.Contains(n, "/") {
				return n
			}
			continue
		}
		names = append(names, n)
	}
	return strings.Join(names, ",")
}

// Platform is the platform of the image manifest the container runs, or nil.
func (r psRow) Platform() any {
	if d := r.s.ImageManifestDescriptor; d != nil && d.Platform != nil {
		return d.Platform
	}
	return nil
}

// Image is the image the container was created from; truncated output
// shortens image IDs and drops digests and default registry prefixes.
func (r psRow) Image() string {
	img := r.s.Image
	if img == "" {
		return "<no image>"
	}
	if !r.trunc {
		return img
	}
	if short := truncateID(r.s.ImageID); short == truncateID(img) {
		return short
	}
	ref, err := reference.ParseNormalizedNamed(img)
	if err != nil {
		return img
	}
	if tagged, ok := ref.(reference.NamedTagged); ok {
		if withTag, err := reference.WithTag(reference.TrimNamed(tagged), tagged.Tag()); err == nil {
			return reference.FamiliarString(withTag)
		}
		return img
	}
	return reference.FamiliarString(reference.TrimNamed(ref))
}

func (r psRow) Command() string {
	cmd := r.s.Command
	if r.trunc {
		cmd = ellipsis(cmd, 20)
	}
	return strconv.Quote(cmd)
}

func (r psRow) CreatedAt() string { return time.Unix(r.s.Created, 0).String() }

func (r psRow) RunningFor() string { return humanSince(r.s.Created) }

func (r psRow) Ports() string { return displayPorts(r.s.Ports) }

func (r psRow) State() string { return string(r.s.State) }

func (r psRow) Status() string { return r.s.Status }

func (r psRow) Size() string {
	if r.s.SizeRw == 0 && r.s.SizeRootFs == 0 {
		return "0B"
	}
	srw := humanSize(r.s.SizeRw)
	sv := humanSize(r.s.SizeRootFs)
	if r.s.SizeRootFs > 0 {
		return fmt.Sprintf("%s (virtual %s)", srw, sv)
	}
	return srw
}

func (r psRow) Labels() string {
	if r.s.Labels == nil {
		return ""
	}
	var kv []string
	for k, v := range r.s.Labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// Label returns the value of one label.
func (r psRow) Label(name string) string {
	if r.s.Labels == nil {
		return ""
	}
	return r.s.Labels[name]
}

func (r psRow) Mounts() string {
	var names []string
	for _, m := range r.s.Mounts {
		name := m.Name
		if name == "" {
			name = m.Source
		} else if r.trunc {
			name = ellipsis(name, 15)
		}
		names = append(names, name)
	}
	return strings.Join(names, ",")
}

func (r psRow) LocalVolumes() string {
	n := 0
	for _, m := range r.s.Mounts {
		if m.Driver == "local" {
			n++
		}
	}
	return strconv.Itoa(n)
}

func (r psRow) Networks() string {
	if r.s.NetworkSettings == nil {
		return ""
	}
	var nets []string
	for k := range r.s.NetworkSettings.Networks {
		nets = append(nets, k)
	}
	sort.Strings(nets)
	return strings.Join(nets, ",")
}

// displayPorts renders ports as docker ps does: ports sorted by private
// port, then IP, public port and protocol; unpublished ports and ports
// published on the same number grouped into ranges per IP and protocol
// (in order of first appearance); other host mappings listed last.
func displayPorts(ports []container.PortSummary) string {
	sorted := append([]container.PortSummary(nil), ports...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i], sorted[j]
		if a.PrivatePort != b.PrivatePort {
			return a.PrivatePort < b.PrivatePort
		}
		if a.IP != b.IP {
			return a.IP.String() < b.IP.String()
		}
		if a.PublicPort != b.PublicPort {
			return a.PublicPort < b.PublicPort
		}
		return a.Type < b.Type
	})
	type span struct{ first, last uint16 }
	var (
		order    []string
		groups   = map[string]*span{}
		result   []string
		mappings []string
	)
	for _, p := range sorted {
		key := p.Type
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				hp := net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort)))
				mappings = append(mappings, fmt.Sprintf("%s->%d/%s", hp, p.PrivatePort, p.Type))
				continue
			}
			key = p.IP.String() + "/" + p.Type
		}
		g := groups[key]
		switch {
		case g == nil:
			groups[key] = &span{p.PrivatePort, p.PrivatePort}
			order = append(order, key)
		case p.PrivatePort == g.last+1:
			g.last = p.PrivatePort
		default:
			result = append(result, portGroup(key, *g))
			groups[key] = &span{p.PrivatePort, p.PrivatePort}
		}
	}
	for _, k := range order {
		result = append(result, portGroup(k, *groups[k]))
	}
	return strings.Join(append(result, mappings...), ", ")
}

func portGroup(key string, s struct{ first, last uint16 }) string {
	ip, proto, hasIP := strings.Cut(key, "/")
	if !hasIP {
		ip, proto = "", key
	}
	r := strconv.Itoa(int(s.first))
	if s.first != s.last {
		r += "-" + strconv.Itoa(int(s.last))
	}
	if ip != "" {
		r = net.JoinHostPort(ip, r) + "->" + r
	}
	return r + "/" + proto
}

var _ json.Marshaler = psRow{}
