package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/server"
)

func newHACmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ha",
		Short: "Two admin hosts, primary and standby, behind keepalived",
		Long: `A pair of admin hosts shares one address, ha.vip, which keepalived moves to
whichever host is ready. The standby is a read-only replica that follows the
primary (config, zones, CA, tokens, repos, images).

  ha keepalived   print keepalived.conf for this host
  ha check        exit 0 only when this host's airgapd is ready (keepalived's track_script)
  ha notify STATE keepalived's notify: master, backup or fault (the gateway's NAT follows the VIP)
  ha promote      make a standby the primary, for a long outage of the primary`,
	}
	cmd.AddCommand(newHAKeepalivedCmd(), newHACheckCmd(), newHANotifyCmd(), newHAPromoteCmd())
	return cmd
}

func newHAKeepalivedCmd() *cobra.Command {
	var configPath, binary string
	cmd := &cobra.Command{
		Use:   "keepalived --config FILE",
		Short: "Print keepalived.conf for this host of the pair",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return fmt.Errorf("ha keepalived needs --config FILE")
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if binary == "" {
				if binary, err = os.Executable(); err != nil {
					return err
				}
			}
			abs, err := filepath.Abs(configPath)
			if err != nil {
				return err
			}
			out, err := server.KeepalivedConf(cfg, binary, abs)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.OutOrStdout(), out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (required)")
	cmd.Flags().StringVar(&binary, "binary", "", "airgapd's path in the scripts (default: this binary)")
	return cmd
}

// haSocket is the control socket of --socket, else of --config.
func haSocket(configPath, socket string) (string, error) {
	if socket != "" {
		return socket, nil
	}
	return defaultSocket(configPath)
}

func newHACheckCmd() *cobra.Command {
	var configPath, socket string
	cmd := &cobra.Command{
		Use:   "check [--config FILE]",
		Short: "Exit 0 only when this host's airgapd is ready to serve (/readyz)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sock, err := haSocket(configPath, socket)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Second)
			defer cancel()
			return api.NewControlClient(sock).Ready(ctx)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file whose runtime_dir holds the control socket")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (overrides --config)")
	return cmd
}

func newHANotifyCmd() *cobra.Command {
	var configPath, socket string
	cmd := &cobra.Command{
		Use:       "notify master|backup|fault [--config FILE]",
		Short:     "Tell the running airgapd keepalived's new state (keepalived's notify lines)",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"master", "backup", "fault"},
		RunE: func(cmd *cobra.Command, args []string) error {
			sock, err := haSocket(configPath, socket)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			msg, err := api.NewControlClient(sock).NotifyHA(ctx, args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file whose runtime_dir holds the control socket")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (overrides --config)")
	return cmd
}

func newHAPromoteCmd() *cobra.Command {
	var configPath, socket string
	cmd := &cobra.Command{
		Use:   "promote [--config FILE]",
		Short: "Make this standby the primary (writable); saved in the config, so a restart keeps it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			sock, err := haSocket(configPath, socket)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 60*time.Second)
			defer cancel()
			msg, err := api.NewControlClient(sock).PromoteHA(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file whose runtime_dir holds the control socket")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (overrides --config)")
	return cmd
}
