package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
)

// newRegistryCommand is `berth registry serve`: it runs berth-registry
// (found beside berth, then on $PATH), so that the CLI does not link the
// registry server.
func newRegistryCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry COMMAND",
		Short: "Run berth's OCI registry",
		Args:  cobra.NoArgs,
	}
	var listen, root, cert, key, htpasswd string
	var readOnly bool
	serve := &cobra.Command{
		Use:   "serve [OPTIONS]",
		Short: "Serve an OCI distribution registry (default 127.0.0.1:5000)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bin, err := registryBinary()
			if err != nil {
				return err
			}
			argv := []string{bin, "serve", "--listen", listen, "--root", root}
			if cert != "" || key != "" {
				argv = append(argv, "--tls-cert", cert, "--tls-key", key)
			}
			if htpasswd != "" {
				argv = append(argv, "--htpasswd", htpasswd)
			}
			if readOnly {
				argv = append(argv, "--read-only")
			}
			return syscall.Exec(bin, argv, os.Environ())
		},
	}
	f := serve.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:5000", "Address to listen on")
	f.StringVar(&root, "root", "/var/lib/berth/registry", "Storage directory")
	f.StringVar(&cert, "tls-cert", "", "TLS certificate file")
	f.StringVar(&key, "tls-key", "", "TLS key file")
	f.StringVar(&htpasswd, "htpasswd", "", "htpasswd file (bcrypt) for basic auth")
	f.BoolVar(&readOnly, "read-only", false, "Refuse pushes and deletes")
	cmd.AddCommand(serve)
	return cmd
}

func registryBinary() (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "berth-registry")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("berth-registry")
	if err != nil {
		return "", fmt.Errorf("berth-registry not found beside berth or on $PATH")
	}
	return p, nil
}
