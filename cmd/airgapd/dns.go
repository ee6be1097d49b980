package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/humanize"
)

func newDNSCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "Work with the running DNS service",
	}
	cmd.AddCommand(newDNSFlushCmd())
	return cmd
}

func newDNSFlushCmd() *cobra.Command {
	var configPath, socket string
	cmd := &cobra.Command{
		Use:   "flush [NAME]",
		Short: "Drop NAME (every type) from the DNS cache, or everything; like rndc flushname / rndc flush",
		Long: `Drop cached answers in the running instance, through the control socket (root
only). With NAME, every type cached for exactly that name goes, as
` + "`rndc flushname`" + `; without, the whole cache, as ` + "`rndc flush`" + `.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if socket == "" {
				var err error
				if socket, err = defaultSocket(configPath); err != nil {
					return err
				}
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			n, err := api.NewControlClient(socket).FlushDNSCache(ctx, name)
			if err != nil {
				return err
			}
			what := "the whole cache"
			if name != "" {
				what = name
			}
			fmt.Fprintf(cmd.OutOrStdout(), "flushed %s: %s\n", what, humanize.Count(n, "entry"))
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file whose runtime_dir holds the control socket")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (overrides --config)")
	return cmd
}
