package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/airgapd/airgapd/server"
	"github.com/airgapd/airgapd/web"
)

func newPasswdCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "passwd --config FILE",
		Short: "Set the admin UI password (read from stdin), stored as a bcrypt hash",
		Long: `Set the password of the admin UI's one user, admin. The password is read
from stdin (asked twice, without echo, on a terminal); only its bcrypt hash is
stored, in web.admin.password_hash. Only that value changes in FILE: every
other line and comment stays as it was. The file is replaced atomically and
the previous version kept as FILE.prev. A running airgapd picks the new
password up on reload (systemctl reload airgapd).

  echo 'a long passphrase' | airgapd passwd --config /etc/airgapd/airgapd.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return errors.New("passwd needs --config FILE")
			}
			data, err := os.ReadFile(configPath)
			if err != nil {
				return err
			}
			pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "New admin password")
			if err != nil {
				return err
			}
			hash, err := web.HashPassword(pw)
			if err != nil {
				return err
			}
			next, err := web.SetPasswordHash(data, hash)
			if err != nil {
				return fmt.Errorf("%s: %w", configPath, err)
			}
			if _, err := server.Parse(configPath, next); err != nil {
				return fmt.Errorf("the config does not validate, so nothing was written; fix it first (airgapd check --config %s):\n%w", configPath, err)
			}
			if err := server.WriteConfigFile(configPath, next); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "admin password set in %s (web.admin.password_hash; previous file kept as %s.prev)\nA running airgapd applies it on reload: systemctl reload airgapd\n", configPath, configPath)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file to write the hash into")
	return cmd
}

func newHashCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "hash",
		Short: "Print the bcrypt hash of a password read from stdin, for registry.users and the like",
		Long: `Print the bcrypt hash (cost 10) of a password, for a password_hash in the
config: registry.users, and the users of the package indexes. The password is
read from stdin (asked twice, without echo, on a terminal); only the hash is
printed. The admin UI's own password is set with airgapd passwd.

  echo 's3cret' | airgapd hash
  # registry: { users: [{ name: ci, password_hash: "$2a$10$…" }] }`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := readPassword(cmd.InOrStdin(), cmd.ErrOrStderr(), "Password")
			if err != nil {
				return err
			}
			hash, err := web.HashPassword(pw)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), hash)
			return nil
		},
	}
}

// readPassword reads the password: twice without echo from a terminal,
// else the first line of stdin.
func readPassword(in io.Reader, prompt io.Writer, what string) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, what+": ")
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		fmt.Fprint(prompt, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the two passwords differ; nothing was changed")
		}
		return string(a), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}
