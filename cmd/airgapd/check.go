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
creates and fills itself (data_dir, local repo paths) need not exist yet.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return errors.New("check needs --config FILE")
			}
			out := cmd.OutOrStdout()
			_, err := server.LoadFile(configPath)
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
			fmt.Fprintf(out, "%s: ok\n", configPath)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file to check (required)")
	return cmd
}
