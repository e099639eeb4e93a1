package cli

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func (c *Cli) newLoginCommand() *cobra.Command {
	var (
		user, password string
		passwordStdin  bool
	)
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Args:  requiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := indexServer
			if len(args) == 1 {
				server = authKey(args[0])
			}
			if password != "" {
				fmt.Fprintln(c.err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passwordStdin {
					return errors.New("--password and --password-stdin are mutually exclusive")
				}
			}
			if passwordStdin {
				if user == "" {
					return errors.New("Must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(c.in)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			cf, err := loadConfigFile(c.configDir)
			if err != nil {
				return err
			}
			if user == "" || password == "" {
				if _, isTerm := isTerminalReader(c.in); !isTerm && password == "" && user == "" {
					return errors.New("Error: Cannot perform an interactive login from a non TTY device")
				}
				rd := bufio.NewReader(c.in)
				if user == "" {
					prev := cf.authConfig(server).Username
					if prev != "" {
						fmt.Fprintf(c.out, "Username (%s): ", prev)
					} else {
						fmt.Fprint(c.out, "Username: ")
					}
					line, _ := rd.ReadString('\n')
					user = strings.TrimSpace(line)
					if user == "" {
						user = prev
					}
					if user == "" {
						return errors.New("Error: Non-null Username Required")
					}
				}
				if password == "" {
					fmt.Fprint(c.out, "Password: ")
					if fd, isTerm := isTerminalReader(c.in); isTerm {
						b, err := term.ReadPassword(int(fd))
						fmt.Fprintln(c.out)
						if err != nil {
							return err
						}
						password = string(b)
					} else {
						line, _ := rd.ReadString('\n')
						password = strings.TrimRight(line, "\r\n")
					}
					if password == "" {
						return errors.New("Error: Password Required")
					}
				}
			}
			api, err := c.Client()
			if err != nil {
				return err
			}
			res, err := api.RegistryLogin(cmd.Context(), client.RegistryLoginOptions{
				Username: user, Password: password, ServerAddress: server,
			})
			if err != nil {
				return err
			}
			entry := authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
			if res.Auth.IdentityToken != "" {
				entry = authEntry{
					Auth:          base64.StdEncoding.EncodeToString([]byte(user + ":")),
					IdentityToken: res.Auth.IdentityToken,
				}
			}
			cf.Auths[server] = entry
			if err := cf.save(c.configDir); err != nil {
				return fmt.Errorf("Error saving credentials: %w", err)
			}
			fmt.Fprintf(c.err, "\nWARNING! Your credentials are stored unencrypted in '%s'.\n"+
				"Configure a credential helper to remove this warning. See\n"+
				"https://docs.docker.com/go/credential-store/\n\n", filepath.Join(c.configDir, "config.json"))
			status := res.Auth.Status
			if status == "" {
				status = "Login Succeeded"
			}
			fmt.Fprintln(c.out, status)
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVarP(&user, "username", "u", "", "Username")
	fs.StringVarP(&password, "password", "p", "", "Password or Personal Access Token (PAT)")
	fs.BoolVar(&passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

func (c *Cli) newLogoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  requiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := indexServer
			if len(args) == 1 {
				server = authKey(args[0])
			}
			cf, err := loadConfigFile(c.configDir)
			if err != nil {
				return err
			}
			var keys []string
			for k := range cf.Auths {
				if authKey(k) == server {
					keys = append(keys, k)
				}
			}
			// docker prints this whether or not credentials were stored.
			fmt.Fprintf(c.out, "Removing login credentials for %s\n", server)
			if len(keys) == 0 {
				return nil
			}
			for _, k := range keys {
				delete(cf.Auths, k)
			}
			if err := cf.save(c.configDir); err != nil {
				fmt.Fprintf(c.err, "WARNING: could not erase credentials: %s: %v\n", server, err)
			}
			return nil
		},
	}
}
