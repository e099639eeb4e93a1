package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/berth-dev/berth/internal/ocispec"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/cgroup"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	"github.com/berth-dev/berth/internal/runtime/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func addCreateFlags(cmd *cobra.Command, o *runtime.CreateOpts) {
	f := cmd.Flags()
	f.StringVarP(&o.Bundle, "bundle", "b", "", "path to the root of the bundle directory (default: current directory)")
	f.StringVar(&o.ConsoleSocket, "console-socket", "", "path to an AF_UNIX socket which will receive the pty master")
	f.StringVar(&o.PidFile, "pid-file", "", "file to write the container's init pid to")
	f.BoolVar(&o.NoPivot, "no-pivot", false, "do not use pivot_root (MS_MOVE + chroot instead)")
	f.IntVar(&o.PreserveFDs, "preserve-fds", 0, "pass N additional file descriptors to the container (stdio + 3 + N)")
	f.Bool("no-new-keyring", false, "do not create a new session keyring (berth never creates one)")
}

func bundleDir(b string) string {
	if b == "" {
		b, _ = os.Getwd()
	}
	return b
}

// checkTTY refuses a detached terminal without a console socket, as runc.
func checkTTY(o runtime.CreateOpts, detach bool) error {
	if !detach {
		return nil
	}
	spec, err := ocispec.Load(bundleDir(o.Bundle))
	if err != nil || spec.Process == nil {
		return nil // create reports it
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" {
		return fmt.Errorf("cannot allocate tty if runtime will detach without setting console socket")
	}
	if !spec.Process.Terminal && o.ConsoleSocket != "" {
		return fmt.Errorf("cannot use console socket if runtime will not detach or allocate tty")
	}
	return nil
}

func createCmd(g *globals) *cobra.Command {
	var o runtime.CreateOpts
	cmd := &cobra.Command{
		Use:   "create [flags] <container-id>",
		Short: "create a container",
		Args:  idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Bundle = bundleDir(o.Bundle)
			if err := checkTTY(o, true); err != nil {
				return err
			}
			r, err := g.runtime()
			if err != nil {
				return err
			}
			return r.Create(cmd.Context(), args[0], o)
		},
	}
	addCreateFlags(cmd, &o)
	return cmd
}

func startCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "start <container-id>", Short: "start a created container", Args: idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			return r.Start(cmd.Context(), args[0])
		},
	}
}

func runCmd(g *globals, exit *int) *cobra.Command {
	var o runtime.RunOpts
	cmd := &cobra.Command{
		Use:   "run [flags] <container-id>",
		Short: "create and run a container",
		Args:  idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Bundle = bundleDir(o.Bundle)
			if err := checkTTY(o.CreateOpts, o.Detach); err != nil {
				return err
			}
			r, err := g.runtime()
			if err != nil {
				return err
			}
			status, err := r.Run(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			*exit = status
			return nil
		},
	}
	addCreateFlags(cmd, &o.CreateOpts)
	cmd.Flags().BoolVarP(&o.Detach, "detach", "d", false, "detach from the container's process")
	cmd.Flags().Bool("keep", false, "do not delete the container after it exits (not supported)")
	return cmd
}

func stateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "state <container-id>", Short: "output the state of a container", Args: idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			st, err := r.State(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(st)
		},
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseSignal accepts "KILL", "SIGKILL" or "9".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal %q", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func killCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use: "kill [flags] <container-id> [signal]", Short: "send a signal to a container's process", Args: idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := syscall.SIGTERM
			if len(args) > 1 {
				var err error
				if sig, err = parseSignal(args[1]); err != nil {
					return err
				}
			}
			r, err := g.runtime()
			if err != nil {
				return err
			}
			return r.Kill(cmd.Context(), args[0], sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the signal to all processes in the container")
	return cmd
}

func deleteCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "delete [flags] <container-id>...", Short: "delete a container", Args: idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			var errs []string
			for _, id := range args {
				if err := r.Delete(cmd.Context(), id, force); err != nil {
					errs = append(errs, err.Error())
				}
			}
			if len(errs) > 0 {
				return fmt.Errorf("%s", strings.Join(errs, "; "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill and delete a running container")
	return cmd
}

func execCmd(g *globals, exit *int) *cobra.Command {
	var (
		o          runtime.ExecOpts
		processF   string
		tty        bool
		cwd, user  string
		env, caps  []string
		addGids    []string
		noNewPrivs bool
		apparmor   string
		label      string
	)
	cmd := &cobra.Command{
		Use: "exec [flags] <container-id> [command [args...]]", Short: "run a process in a running container", Args: idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			id := args[0]
			var p *specs.Process
			if processF != "" {
				b, err := os.ReadFile(processF)
				if err != nil {
					return fmt.Errorf("process file: %w", err)
				}
				p = &specs.Process{}
				if err := json.Unmarshal(b, p); err != nil {
					return fmt.Errorf("process file %s: %w", processF, err)
				}
			} else {
				if len(args) < 2 {
					return fmt.Errorf("exec: no command given (args or --process)")
				}
				cfg, err := r.Config(cmd.Context(), id)
				if err != nil {
					return err
				}
				cp := *cfg.Process
				p = &cp
				p.Args = args[1:]
				p.Terminal = tty
				p.ConsoleSize = nil
				p.Env = append(append([]string{}, cp.Env...), env...)
				if cwd != "" {
					p.Cwd = cwd
				}
				if user != "" {
					uid, gid, err := parseUser(user)
					if err != nil {
						return err
					}
					p.User.UID, p.User.GID = uid, gid
				}
				for _, s := range addGids {
					n, err := strconv.ParseUint(s, 10, 32)
					if err != nil {
						return fmt.Errorf("invalid additional gid %q", s)
					}
					p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
				}
				if len(caps) > 0 && p.Capabilities != nil {
					c := *p.Capabilities
					c.Bounding = append(append([]string{}, c.Bounding...), caps...)
					c.Effective = append(append([]string{}, c.Effective...), caps...)
					c.Permitted = append(append([]string{}, c.Permitted...), caps...)
					p.Capabilities = &c
				}
				if noNewPrivs {
					p.NoNewPrivileges = true
				}
				if apparmor != "" {
					p.ApparmorProfile = apparmor
				}
				if label != "" {
					p.SelinuxLabel = label
				}
			}
			if p.Terminal && o.Detach && o.ConsoleSocket == "" {
				return fmt.Errorf("cannot allocate tty if runtime will detach without setting console socket")
			}
			status, err := r.Exec(cmd.Context(), id, p, o)
			if err != nil {
				return err
			}
			*exit = status
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVar(&o.ConsoleSocket, "console-socket", "", "path to an AF_UNIX socket which will receive the pty master")
	f.StringVar(&o.PidFile, "pid-file", "", "file to write the process id to")
	f.BoolVarP(&o.Detach, "detach", "d", false, "detach from the process")
	f.IntVar(&o.PreserveFDs, "preserve-fds", 0, "pass N additional file descriptors")
	f.BoolVar(&o.IgnorePaused, "ignore-paused", false, "allow exec in a paused container")
	f.StringVarP(&processF, "process", "p", "", "path to a process.json")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.StringVar(&cwd, "cwd", "", "current working directory in the container")
	f.StringArrayVarP(&env, "env", "e", nil, "set environment variables")
	f.StringVarP(&user, "user", "u", "", "UID[:GID] to run as")
	f.StringSliceVarP(&addGids, "additional-gids", "g", nil, "additional gids")
	f.StringArrayVarP(&caps, "cap", "c", nil, "add a capability to the bounding, effective and permitted sets")
	f.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	f.StringVar(&apparmor, "apparmor", "", "AppArmor profile for the process")
	f.StringVar(&label, "process-label", "", "SELinux label for the process")
	return cmd
}

func parseUser(s string) (uint32, uint32, error) {
	u, gs, _ := strings.Cut(s, ":")
	uid, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("invalid user %q: must be UID[:GID]", s)
	}
	gid := uint64(0)
	if gs != "" {
		if gid, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("invalid user %q: must be UID[:GID]", s)
		}
	}
	return uint32(uid), uint32(gid), nil
}

func psCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use: "ps [flags] <container-id> [ps options]", Short: "list the processes of a container", Args: idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			pids, err := r.Pids(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			switch format {
			case "json":
				if pids == nil {
					pids = []int{}
				}
				return json.NewEncoder(os.Stdout).Encode(pids)
			case "table":
				return psTable(pids, args[1:])
			default:
				return fmt.Errorf("invalid format %q", format)
			}
		},
	}
	cmd.Flags().SetInterspersed(false)
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	return cmd
}

func listCmd(g *globals) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "list containers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			list, err := r.List(cmd.Context())
			if err != nil {
				return err
			}
			if quiet {
				for _, s := range list {
					fmt.Println(s.ID)
				}
				return nil
			}
			switch format {
			case "json":
				if list == nil {
					list = []*runtime.State{}
				}
				return json.NewEncoder(os.Stdout).Encode(list)
			case "table":
				w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
				for _, s := range list {
					fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				return w.Flush()
			default:
				return fmt.Errorf("invalid format %q", format)
			}
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "display only container IDs")
	return cmd
}

func pauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "pause <container-id>", Short: "suspend all processes of a container", Args: idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			return r.Pause(cmd.Context(), args[0])
		},
	}
}

func resumeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "resume <container-id>", Short: "resume a paused container", Args: idArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.runtime()
			if err != nil {
				return err
			}
			return r.Resume(cmd.Context(), args[0])
		},
	}
}

func specCmd() *cobra.Command {
	var bundle string
	var rootless bool
	cmd := &cobra.Command{
		Use: "spec", Short: "create a new specification file (config.json)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			s := ocispec.Default()
			if rootless {
				ocispec.Rootless(s)
			}
			path := filepath.Join(bundleDir(bundle), "config.json")
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("file %s exists. Remove it first", path)
			}
			b, err := json.MarshalIndent(s, "", "\t")
			if err != nil {
				return err
			}
			return os.WriteFile(path, append(b, '\n'), 0o666)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", "", "path to the root of the bundle directory")
	cmd.Flags().BoolVar(&rootless, "rootless", false, "generate a configuration for a rootless container")
	return cmd
}

func featuresCmd() *cobra.Command {
	return &cobra.Command{
		Use: "features", Short: "show the enabled features", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return printJSON(runtimeFeatures())
		},
	}
}

func runtimeFeatures() *features.Features {
	t := true
	var nss []string
	for _, n := range []specs.LinuxNamespaceType{specs.CgroupNamespace, specs.IPCNamespace, specs.MountNamespace,
		specs.NetworkNamespace, specs.PIDNamespace, specs.TimeNamespace, specs.UserNamespace, specs.UTSNamespace} {
		nss = append(nss, string(n))
	}
	f := &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  initproc.KnownMountOptions(),
		Linux: &features.Linux{
			Namespaces:      nss,
			Capabilities:    ocispec.CapabilityNames(),
			Cgroup:          &features.Cgroup{V1: &t, V2: &t, Systemd: new(bool), SystemdUser: new(bool), Rdma: new(bool)},
			Seccomp:         seccomp.Features(),
			Apparmor:        &features.Apparmor{Enabled: &t},
			Selinux:         &features.Selinux{Enabled: &t},
			IntelRdt:        &features.IntelRdt{Enabled: new(bool)},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: new(bool)}},
		},
		Annotations: map[string]string{
			"org.berth.runtime.cgroup.mode": cgroup.Mode(),
			"org.berth.runtime.version":     version,
		},
	}
	return f
}
