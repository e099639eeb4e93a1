package cli

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
)

// parsePublish parses -p values ([ip:][hostPort:]containerPort[/proto], with
// ranges, or the long form target=,published=,protocol=,host_ip=) into
// exposed ports and port bindings.
func parsePublish(specs []string) (network.PortSet, network.PortMap, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, spec := range specs {
		if strings.Contains(spec, "=") {
			s, err := longPortSpec(spec)
			if err != nil {
				return nil, nil, err
			}
			spec = s
		}
		if err := parsePortSpec(spec, exposed, bindings); err != nil {
			return nil, nil, err
		}
	}
	return exposed, bindings, nil
}

func longPortSpec(spec string) (string, error) {
	var target, published, proto, hostIP string
	for _, f := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return "", fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", f)
		}
		switch strings.ToLower(k) {
		case "target":
			target = v
		case "published":
			published = v
		case "protocol":
			proto = v
		case "mode":
			if v != "ingress" && v != "host" {
				return "", fmt.Errorf("invalid publish mode value (%s): must be either 'ingress' or 'host'", v)
			}
		case "host_ip", "host-ip":
			hostIP = v
		default:
			return "", fmt.Errorf("invalid field key: %s", k)
		}
	}
	if target == "" {
		return "", fmt.Errorf("missing mandatory field 'target'")
	}
	s := target
	if published != "" {
		s = published + ":" + s
		if hostIP != "" {
			s = hostIP + ":" + s
		}
	}
	if proto != "" {
		s += "/" + proto
	}
	return s, nil
}

func parsePortSpec(spec string, exposed network.PortSet, bindings network.PortMap) error {
	raw, proto, _ := strings.Cut(spec, "/")
	if i := strings.LastIndex(spec, "/"); i >= 0 {
		raw, proto = spec[:i], spec[i+1:]
	}
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return fmt.Errorf("invalid proto: %s", proto)
	}

	var ip, hostPort, containerPort string
	if strings.HasPrefix(raw, "[") {
		end := strings.Index(raw, "]")
		if end < 0 {
			return fmt.Errorf("invalid IP address: %s", raw)
		}
		ip = raw[1:end]
		rest := strings.TrimPrefix(raw[end+1:], ":")
		hostPort, containerPort, _ = strings.Cut(rest, ":")
		if containerPort == "" {
			containerPort, hostPort = hostPort, ""
		}
	} else {
		parts := strings.Split(raw, ":")
		switch len(parts) {
		case 1:
			containerPort = parts[0]
		case 2:
			hostPort, containerPort = parts[0], parts[1]
		case 3:
			ip, hostPort, containerPort = parts[0], parts[1], parts[2]
		default:
			n := len(parts)
			ip = strings.Join(parts[:n-2], ":")
			hostPort, containerPort = parts[n-2], parts[n-1]
		}
	}
	var hostIP netip.Addr
	if ip != "" {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("invalid IP address: %s", ip)
		}
		hostIP = a
	}
	if containerPort == "" {
		return fmt.Errorf("no port specified: %s<empty>", spec)
	}
	cStart, cEnd, err := portRange(containerPort)
	if err != nil {
		return fmt.Errorf("invalid containerPort: %s", containerPort)
	}
	var hStart, hEnd uint64
	if hostPort != "" {
		hStart, hEnd, err = portRange(hostPort)
		if err != nil {
			return fmt.Errorf("invalid hostPort: %s", hostPort)
		}
	}
	if hostPort != "" && (cEnd-cStart) != (hEnd-hStart) {
		// A single container port may map to a range of host ports.
		if cEnd != cStart {
			return fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", containerPort, hostPort)
		}
	}
	for i := uint64(0); i <= cEnd-cStart; i++ {
		p, ok := network.PortFrom(uint16(cStart+i), network.IPProtocol(proto))
		if !ok {
			return fmt.Errorf("invalid port: %d", cStart+i)
		}
		hp := ""
		if hostPort != "" {
			if hEnd-hStart == cEnd-cStart {
				hp = strconv.FormatUint(hStart+i, 10)
			} else {
				hp = fmt.Sprintf("%d-%d", hStart, hEnd)
			}
		}
		exposed[p] = struct{}{}
		b := network.PortBinding{HostIP: hostIP, HostPort: hp}
		if !containsBinding(bindings[p], b) {
			bindings[p] = append(bindings[p], b)
		}
	}
	return nil
}

func containsBinding(bs []network.PortBinding, b network.PortBinding) bool {
	for _, x := range bs {
		if x == b {
			return true
		}
	}
	return false
}

func portRange(s string) (uint64, uint64, error) {
	a, b, isRange := strings.Cut(s, "-")
	start, err := strconv.ParseUint(a, 10, 16)
	if err != nil {
		return 0, 0, err
	}
	if !isRange {
		return start, start, nil
	}
	end, err := strconv.ParseUint(b, 10, 16)
	if err != nil || end < start {
		return 0, 0, fmt.Errorf("invalid range %s", s)
	}
	return start, end, nil
}

// parseExpose parses an --expose value: port[/proto] or start-end[/proto].
func parseExpose(e string) ([]network.Port, error) {
	raw, proto, _ := strings.Cut(e, "/")
	if proto == "" {
		proto = "tcp"
	}
	startStr, endStr, isRange := strings.Cut(raw, "-")
	start, err := strconv.ParseUint(startStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid range format for --expose: %s, error: %w", e, err)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(endStr, 10, 16); err != nil {
			return nil, fmt.Errorf("invalid range format for --expose: %s, error: %w", e, err)
		}
		if end < start {
			return nil, fmt.Errorf("invalid range format for --expose: %s, error: invalid range", e)
		}
	}
	var out []network.Port
	for n := start; n <= end; n++ {
		p, ok := network.PortFrom(uint16(n), network.IPProtocol(strings.ToLower(proto)))
		if !ok {
			return nil, fmt.Errorf("invalid range format for --expose: %s", e)
		}
		out = append(out, p)
	}
	return out, nil
}
