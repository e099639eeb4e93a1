package ocispec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ValidationError is the error Validate returns. Field is the JSON path of
// the offending value in config.json, e.g. "linux.namespaces[2].type".
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	return "invalid config.json: " + e.Field + ": " + e.Reason
}

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks that s can be run from bundleDir and returns the first
// problem found as a *ValidationError, or nil.
//
// Beyond the structure of s it reads the filesystem in two places:
//
//   - root.path (relative paths are resolved against bundleDir) must exist
//     and be a directory. It may be a symlink, and that symlink may point
//     outside the bundle directory: this is allowed on purpose, because
//     engines commonly keep a bundle's rootfs elsewhere (an overlay mount,
//     an image store) and link to it; the target must be a directory.
//   - linux.namespaces[].path must be an absolute path to a namespace file
//     (such as /proc/PID/ns/net or a bind mount of one) whose namespace is
//     of the declared type.
//
// Seccomp profiles are not checked here.
func Validate(s *specs.Spec, bundleDir string) error {
	if s == nil {
		return invalid("(config)", "no configuration")
	}
	checks := []func(*specs.Spec, string) error{
		validateVersion,
		validateRoot,
		validateProcess,
		validateHostname,
		validateMounts,
		validateHooks,
		validateLinux,
	}
	for _, check := range checks {
		if err := check(s, bundleDir); err != nil {
			return err
		}
	}
	return nil
}

var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$`)

func validateVersion(s *specs.Spec, _ string) error {
	if s.Version == "" {
		return invalid("ociVersion", "missing; set it to the runtime-spec version the config follows, e.g. %q", DefaultOCIVersion)
	}
	m := versionRE.FindStringSubmatch(s.Version)
	if m == nil {
		return invalid("ociVersion", "%q is not a version of the form MAJOR.MINOR.PATCH", s.Version)
	}
	if m[1] != "1" {
		return invalid("ociVersion", "version %q is not supported; berth supports runtime-spec 1.x", s.Version)
	}
	return nil
}

func validateRoot(s *specs.Spec, bundleDir string) error {
	if s.Root == nil {
		return invalid("root", "missing; the container needs a root filesystem")
	}
	if s.Root.Path == "" {
		return invalid("root.path", "empty; set it to the rootfs directory (usually \"rootfs\")")
	}
	path := s.Root.Path
	if !filepath.IsAbs(path) {
		path = filepath.Join(bundleDir, path)
	}
	lst, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return invalid("root.path", "rootfs %s does not exist", path)
	}
	if err != nil {
		return invalid("root.path", "cannot inspect rootfs %s: %v", path, err)
	}
	if lst.Mode()&fs.ModeSymlink != 0 {
		st, err := os.Stat(path)
		if err != nil {
			return invalid("root.path", "rootfs %s is a symlink that cannot be resolved: %v", path, err)
		}
		if !st.IsDir() {
			return invalid("root.path", "rootfs %s is a symlink to something that is not a directory", path)
		}
		return nil
	}
	if !lst.IsDir() {
		return invalid("root.path", "rootfs %s is not a directory", path)
	}
	return nil
}

func validateProcess(s *specs.Spec, _ string) error {
	p := s.Process
	if p == nil {
		return invalid("process", "missing; the container needs a process to run")
	}
	if len(p.Args) == 0 {
		return invalid("process.args", "empty; give at least the program to run")
	}
	if p.Args[0] == "" {
		return invalid("process.args[0]", "empty program name")
	}
	if p.Cwd == "" {
		return invalid("process.cwd", "missing; use \"/\" for the root directory")
	}
	if !strings.HasPrefix(p.Cwd, "/") {
		return invalid("process.cwd", "%q is relative; it must be an absolute path inside the container", p.Cwd)
	}
	for i, e := range p.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return invalid(fmt.Sprintf("process.env[%d]", i), "%q is not of the form KEY=value", e)
		}
	}
	if err := validateRlimits(p.Rlimits); err != nil {
		return err
	}
	if err := validateCapabilities(p.Capabilities); err != nil {
		return err
	}
	if p.OOMScoreAdj != nil && (*p.OOMScoreAdj < -1000 || *p.OOMScoreAdj > 1000) {
		return invalid("process.oomScoreAdj", "%d is outside -1000..1000", *p.OOMScoreAdj)
	}
	if io := p.IOPriority; io != nil {
		switch io.Class {
		case specs.IOPRIO_CLASS_RT, specs.IOPRIO_CLASS_BE, specs.IOPRIO_CLASS_IDLE:
		default:
			return invalid("process.ioPriority.class", "unknown class %q (want IOPRIO_CLASS_RT, IOPRIO_CLASS_BE or IOPRIO_CLASS_IDLE)", io.Class)
		}
		if io.Priority < 0 || io.Priority > 7 {
			return invalid("process.ioPriority.priority", "%d is outside 0..7", io.Priority)
		}
	}
	return nil
}

func validateRlimits(rl []specs.POSIXRlimit) error {
	seen := map[string]bool{}
	for i, r := range rl {
		field := fmt.Sprintf("process.rlimits[%d]", i)
		if _, ok := rlimitResources[r.Type]; !ok {
			hint := ""
			guess := "RLIMIT_" + strings.TrimPrefix(strings.ToUpper(r.Type), "RLIMIT_")
			if _, ok := rlimitResources[guess]; ok {
				hint = fmt.Sprintf(" (did you mean %q?)", guess)
			}
			return invalid(field+".type", "unknown rlimit %q%s", r.Type, hint)
		}
		if seen[r.Type] {
			return invalid(field+".type", "%s is set more than once", r.Type)
		}
		seen[r.Type] = true
		if r.Soft > r.Hard {
			return invalid(field, "%s soft limit %d is greater than hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	return nil
}

func validateCapabilities(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	sets := []struct {
		name string
		caps []string
	}{
		{"bounding", c.Bounding},
		{"effective", c.Effective},
		{"inheritable", c.Inheritable},
		{"permitted", c.Permitted},
		{"ambient", c.Ambient},
	}
	for _, set := range sets {
		for i, name := range set.caps {
			if _, ok := CapabilityNumber(name); ok {
				continue
			}
			hint := ""
			guess := "CAP_" + strings.TrimPrefix(strings.ToUpper(name), "CAP_")
			if _, ok := CapabilityNumber(guess); ok {
				hint = fmt.Sprintf(" (did you mean %q?)", guess)
			}
			return invalid(fmt.Sprintf("process.capabilities.%s[%d]", set.name, i), "unknown capability %q%s", name, hint)
		}
	}
	return nil
}

func validateHostname(s *specs.Spec, _ string) error {
	if s.Hostname == "" && s.Domainname == "" {
		return nil
	}
	if !hasNamespace(s, specs.UTSNamespace) {
		field := "hostname"
		if s.Hostname == "" {
			field = "domainname"
		}
		return invalid(field, "set, but there is no uts namespace; setting it would change the host's name (add {\"type\": \"uts\"} to linux.namespaces)")
	}
	return nil
}

var propagationOptions = []string{
	"shared", "rshared", "slave", "rslave", "private", "rprivate", "unbindable", "runbindable",
}

// looksLikePropagation reports whether an unknown mount option was probably
// meant as a propagation mode (a typo such as "rprivat" or "shard").
func looksLikePropagation(opt string) bool {
	o := strings.ToLower(opt)
	for _, stem := range []string{"share", "shard", "slav", "privat", "bindable"} {
		if strings.Contains(o, stem) {
			return true
		}
	}
	return false
}

func validateMounts(s *specs.Spec, _ string) error {
	for i, m := range s.Mounts {
		field := fmt.Sprintf("mounts[%d]", i)
		if m.Destination == "" {
			return invalid(field+".destination", "empty; give the path inside the container")
		}
		isBind := m.Type == "bind"
		for j, o := range m.Options {
			if o == "bind" || o == "rbind" {
				isBind = true
			}
			if !slices.Contains(propagationOptions, o) && looksLikePropagation(o) {
				return invalid(fmt.Sprintf("%s.options[%d]", field, j),
					"unknown mount propagation option %q (known: %s)", o, strings.Join(propagationOptions, ", "))
			}
		}
		if isBind && m.Source == "" {
			return invalid(field+".source", "empty; a bind mount of %s needs a source path", m.Destination)
		}
	}
	return nil
}

func validateHooks(s *specs.Spec, _ string) error {
	if s.Hooks == nil {
		return nil
	}
	h := s.Hooks
	lists := []struct {
		name  string
		hooks []specs.Hook
	}{
		{"prestart", h.Prestart}, //nolint:staticcheck // still honoured for compatibility
		{"createRuntime", h.CreateRuntime},
		{"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer},
		{"poststart", h.Poststart},
		{"poststop", h.Poststop},
	}
	for _, l := range lists {
		for i, hook := range l.hooks {
			field := fmt.Sprintf("hooks.%s[%d]", l.name, i)
			if hook.Path == "" {
				return invalid(field+".path", "empty; give the absolute path of the hook program")
			}
			if !filepath.IsAbs(hook.Path) {
				return invalid(field+".path", "%q is relative; hook paths must be absolute", hook.Path)
			}
			if hook.Timeout != nil && *hook.Timeout <= 0 {
				return invalid(field+".timeout", "%d; a timeout must be a positive number of seconds", *hook.Timeout)
			}
		}
	}
	return nil
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	return findNamespace(s, t) != nil
}

func findNamespace(s *specs.Spec, t specs.LinuxNamespaceType) *specs.LinuxNamespace {
	if s.Linux == nil {
		return nil
	}
	for i := range s.Linux.Namespaces {
		if s.Linux.Namespaces[i].Type == t {
			return &s.Linux.Namespaces[i]
		}
	}
	return nil
}

func validateLinux(s *specs.Spec, _ string) error {
	l := s.Linux
	if l == nil {
		return nil
	}
	checks := []func(*specs.Spec) error{
		validateNamespaces,
		validateIDMappings,
		validateSysctls,
		validateDevices,
		validateResources,
		validatePaths,
		validateMisc,
	}
	for _, check := range checks {
		if err := check(s); err != nil {
			return err
		}
	}
	return nil
}

func namespaceTypeList() string {
	var names []string
	for t := range namespaceTypes {
		names = append(names, string(t))
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

func validateNamespaces(s *specs.Spec) error {
	seen := map[specs.LinuxNamespaceType]int{}
	for i, ns := range s.Linux.Namespaces {
		field := fmt.Sprintf("linux.namespaces[%d]", i)
		flag, ok := namespaceTypes[ns.Type]
		if !ok {
			return invalid(field+".type", "unknown namespace type %q (known: %s)", ns.Type, namespaceTypeList())
		}
		if j, dup := seen[ns.Type]; dup {
			return invalid(field+".type", "%s namespace is listed twice (also linux.namespaces[%d])", ns.Type, j)
		}
		seen[ns.Type] = i
		if ns.Path == "" {
			continue
		}
		if err := checkNamespacePath(ns.Type, flag, ns.Path); err != nil {
			return invalid(field+".path", "%v", err)
		}
	}
	return nil
}

// checkNamespacePath verifies that path is a namespace file of the wanted
// type, which is what setns(2) needs to join it.
func checkNamespacePath(t specs.LinuxNamespaceType, flag int, path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q is relative; a namespace path must be absolute", path)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("cannot open %s namespace %s: %v", t, path, err)
	}
	defer unix.Close(fd)
	got, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s is not a namespace file and cannot be joined as a %s namespace (%v)", path, t, err)
	}
	if got != flag {
		if gt, ok := namespaceTypeByFlag(got); ok {
			return fmt.Errorf("%s is a %s namespace, not a %s namespace", path, gt, t)
		}
		return fmt.Errorf("%s is not a %s namespace", path, t)
	}
	return nil
}

func validateIDMappings(s *specs.Spec) error {
	l := s.Linux
	user := findNamespace(s, specs.UserNamespace)
	if user == nil {
		if len(l.UIDMappings) > 0 {
			return invalid("linux.uidMappings", "set, but there is no user namespace (add {\"type\": \"user\"} to linux.namespaces)")
		}
		if len(l.GIDMappings) > 0 {
			return invalid("linux.gidMappings", "set, but there is no user namespace (add {\"type\": \"user\"} to linux.namespaces)")
		}
		return nil
	}
	if user.Path == "" {
		if len(l.UIDMappings) == 0 {
			return invalid("linux.uidMappings", "missing; a new user namespace needs uid mappings")
		}
		if len(l.GIDMappings) == 0 {
			return invalid("linux.gidMappings", "missing; a new user namespace needs gid mappings")
		}
	}
	for _, set := range []struct {
		name string
		m    []specs.LinuxIDMapping
	}{{"uidMappings", l.UIDMappings}, {"gidMappings", l.GIDMappings}} {
		for i, m := range set.m {
			if m.Size == 0 {
				return invalid(fmt.Sprintf("linux.%s[%d].size", set.name, i), "0; a mapping must cover at least one id")
			}
		}
	}
	return nil
}

// ipcSysctls are the kernel.* sysctls that belong to the ipc namespace.
var ipcSysctls = map[string]bool{
	"kernel.msgmax":          true,
	"kernel.msgmnb":          true,
	"kernel.msgmni":          true,
	"kernel.sem":             true,
	"kernel.shmall":          true,
	"kernel.shmmax":          true,
	"kernel.shmmni":          true,
	"kernel.shm_rmid_forced": true,
}

// sysctlNamespace returns the namespace a sysctl belongs to, or "" if it is
// not namespaced (setting it would change the host).
func sysctlNamespace(key string) specs.LinuxNamespaceType {
	switch {
	case strings.HasPrefix(key, "net."):
		return specs.NetworkNamespace
	case ipcSysctls[key], strings.HasPrefix(key, "fs.mqueue."):
		return specs.IPCNamespace
	case key == "kernel.hostname", key == "kernel.domainname":
		return specs.UTSNamespace
	}
	return ""
}

func validateSysctls(s *specs.Spec) error {
	keys := make([]string, 0, len(s.Linux.Sysctl))
	for k := range s.Linux.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		field := fmt.Sprintf("linux.sysctl[%q]", k)
		norm := strings.ReplaceAll(k, "/", ".")
		ns := sysctlNamespace(norm)
		if ns == "" {
			return invalid(field, "%s is not namespaced; setting it in a container would change the host", k)
		}
		if !hasNamespace(s, ns) {
			return invalid(field, "%s belongs to the %s namespace, which the container does not have (add {\"type\": %q} to linux.namespaces)", k, ns, ns)
		}
	}
	return nil
}

func validateDevices(s *specs.Spec) error {
	seen := map[string]int{}
	for i, d := range s.Linux.Devices {
		field := fmt.Sprintf("linux.devices[%d]", i)
		if d.Path == "" || !strings.HasPrefix(d.Path, "/") {
			return invalid(field+".path", "%q is not an absolute path", d.Path)
		}
		switch d.Type {
		case "c", "b", "u", "p":
		default:
			return invalid(field+".type", "%q is not a device type (want c, b, u or p)", d.Type)
		}
		if d.Type != "p" && (d.Major < 0 || d.Minor < 0) {
			return invalid(field, "negative device number %d:%d", d.Major, d.Minor)
		}
		clean := filepath.Clean(d.Path)
		if j, dup := seen[clean]; dup {
			return invalid(field+".path", "%s is also created by linux.devices[%d]", d.Path, j)
		}
		seen[clean] = i
	}
	return nil
}

func validateResources(s *specs.Spec) error {
	r := s.Linux.Resources
	if r == nil {
		return nil
	}
	for i, d := range r.Devices {
		field := fmt.Sprintf("linux.resources.devices[%d]", i)
		switch d.Type {
		case "", "a", "c", "b":
		default:
			return invalid(field+".type", "%q is not a device cgroup type (want a, c or b)", d.Type)
		}
		for _, c := range d.Access {
			if !strings.ContainsRune("rwm", c) {
				return invalid(field+".access", "%q may only contain r, w and m", d.Access)
			}
		}
		if d.Major != nil && *d.Major < -1 {
			return invalid(field+".major", "%d is negative (use -1 or omit it for any major)", *d.Major)
		}
		if d.Minor != nil && *d.Minor < -1 {
			return invalid(field+".minor", "%d is negative (use -1 or omit it for any minor)", *d.Minor)
		}
	}
	if m := r.Memory; m != nil {
		for _, v := range []struct {
			name string
			val  *int64
		}{{"limit", m.Limit}, {"reservation", m.Reservation}, {"swap", m.Swap}} {
			if v.val != nil && *v.val < -1 {
				return invalid("linux.resources.memory."+v.name, "%d is negative (use -1 for unlimited)", *v.val)
			}
		}
		if m.Swap != nil && *m.Swap > 0 && m.Limit != nil && *m.Limit > 0 && *m.Swap < *m.Limit {
			return invalid("linux.resources.memory.swap",
				"%d is less than memory.limit %d; swap is the memory+swap total and must be at least the memory limit (or -1 for unlimited)",
				*m.Swap, *m.Limit)
		}
		if m.Reservation != nil && *m.Reservation > 0 && m.Limit != nil && *m.Limit > 0 && *m.Reservation > *m.Limit {
			return invalid("linux.resources.memory.reservation", "%d is greater than memory.limit %d", *m.Reservation, *m.Limit)
		}
		if m.Swappiness != nil && *m.Swappiness > 100 {
			return invalid("linux.resources.memory.swappiness", "%d is outside 0..100", *m.Swappiness)
		}
	}
	if c := r.CPU; c != nil {
		if c.Quota != nil && *c.Quota < -1 {
			return invalid("linux.resources.cpu.quota", "%d is negative (use -1 for unlimited)", *c.Quota)
		}
		if c.Quota != nil && *c.Quota > 0 && c.Period != nil && *c.Period == 0 {
			return invalid("linux.resources.cpu.period", "0 with quota %d; a cpu quota needs a non-zero period", *c.Quota)
		}
		if c.Cpus != "" {
			if err := checkCPUList(c.Cpus); err != nil {
				return invalid("linux.resources.cpu.cpus", "%q: %v", c.Cpus, err)
			}
		}
		if c.Mems != "" {
			if err := checkCPUList(c.Mems); err != nil {
				return invalid("linux.resources.cpu.mems", "%q: %v", c.Mems, err)
			}
		}
		if c.Idle != nil && *c.Idle != 0 && *c.Idle != 1 {
			return invalid("linux.resources.cpu.idle", "%d; must be 0 or 1", *c.Idle)
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil && *p.Limit < -1 {
		return invalid("linux.resources.pids.limit", "%d is negative (use -1 or 0 for unlimited)", *p.Limit)
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 && (*b.Weight < 10 || *b.Weight > 1000) {
			return invalid("linux.resources.blockIO.weight", "%d is outside 10..1000", *b.Weight)
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 && (*b.LeafWeight < 10 || *b.LeafWeight > 1000) {
			return invalid("linux.resources.blockIO.leafWeight", "%d is outside 10..1000", *b.LeafWeight)
		}
	}
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.Contains(k, "/") || !strings.Contains(k, ".") {
			return invalid(fmt.Sprintf("linux.resources.unified[%q]", k), "not a cgroup v2 interface file name like \"memory.max\"")
		}
	}
	return nil
}

// checkCPUList checks a cpuset list such as "0-3,6,8-9".
func checkCPUList(list string) error {
	for part := range strings.SplitSeq(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a number or range (want a list like \"0-3,6\")", part)
		}
		if !isRange {
			continue
		}
		b, err := strconv.ParseUint(hi, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a number or range (want a list like \"0-3,6\")", part)
		}
		if b < a {
			return fmt.Errorf("range %q is backwards", part)
		}
	}
	return nil
}

func validatePaths(s *specs.Spec) error {
	for i, p := range s.Linux.MaskedPaths {
		if !strings.HasPrefix(p, "/") {
			return invalid(fmt.Sprintf("linux.maskedPaths[%d]", i), "%q is not an absolute path", p)
		}
	}
	for i, p := range s.Linux.ReadonlyPaths {
		if !strings.HasPrefix(p, "/") {
			return invalid(fmt.Sprintf("linux.readonlyPaths[%d]", i), "%q is not an absolute path", p)
		}
	}
	return nil
}

func validateMisc(s *specs.Spec) error {
	l := s.Linux
	switch l.RootfsPropagation {
	case "":
	default:
		if !slices.Contains(propagationOptions, l.RootfsPropagation) {
			return invalid("linux.rootfsPropagation", "unknown propagation %q (known: %s)", l.RootfsPropagation, strings.Join(propagationOptions, ", "))
		}
	}
	if len(l.NetDevices) > 0 && !hasNamespace(s, specs.NetworkNamespace) {
		return invalid("linux.netDevices", "set, but there is no network namespace to move the devices into")
	}
	if len(l.TimeOffsets) > 0 {
		tns := findNamespace(s, specs.TimeNamespace)
		if tns == nil {
			return invalid("linux.timeOffsets", "set, but there is no time namespace (add {\"type\": \"time\"} to linux.namespaces)")
		}
		if tns.Path != "" {
			return invalid("linux.timeOffsets", "set, but the time namespace is joined by path; offsets can only be given to a new time namespace")
		}
		for k := range l.TimeOffsets {
			if k != "boottime" && k != "monotonic" {
				return invalid(fmt.Sprintf("linux.timeOffsets[%q]", k), "unknown clock (want boottime or monotonic)")
			}
		}
	}
	return nil
}
