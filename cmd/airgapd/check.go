package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/server"
)

func newCheckCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a config file and report every problem with file:line:col",
		Long: `Validate a config file the way named-checkconf does: every problem is
printed as FILE:LINE:COL: KEY: MESSAGE (hint: …), and the exit status is 1 if
there is any. It checks unknown (misspelt) keys, values of the wrong kind,
addresses, networks, two services on one port, and that files the config
reads (zone files, root hints, TLS certificates) exist. Folders airgapd
creates and fills itself (data_dir, local repo paths) need not exist yet.

Then it warns on stderr, without failing, about what is fine to write but
worth knowing on this host: a listen address the host does not have now (a
keepalived VIP; airgapd binds it anyway and answers once it arrives) and a
gateway out_interface that does not exist.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return errors.New("check needs --config FILE")
			}
			out := cmd.OutOrStdout()
			cfg, err := server.LoadFile(configPath)
			var ce *server.CheckError
			switch {
			case errors.As(err, &ce):
				for _, d := range ce.Diagnostics {
					fmt.Fprintln(out, d)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d problem(s)\n", configPath, len(ce.Diagnostics))
				return exitError(1)
			case err != nil:
				return err
			}
			warnings, err := server.HostWarnings(configPath, cfg)
			if err != nil {
				return err
			}
			// Warnings go to stderr: stdout keeps the verdict alone, as
			// scripts that read it expect.
			for _, w := range warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), w)
			}
			if len(warnings) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d warning(s) about this host\n", configPath, len(warnings))
			}
			fmt.Fprintf(out, "%s: ok\n", configPath)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file to check (required)")
	return cmd
}
