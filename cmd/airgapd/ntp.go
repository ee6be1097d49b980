package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/ntpd"
	"github.com/airgapd/airgapd/server"
)

func newNTPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ntp",
		Short: "The time service: settime, sources, clients (like chronyc)",
	}
	cmd.AddCommand(newNTPSetTimeCmd(), newNTPSourcesCmd(), newNTPClientsCmd())
	return cmd
}

func newNTPSetTimeCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "settime TIME --config FILE",
		Short: "Set the served time from the operator's watch, like chronyc settime",
		Long: `For an admin host with no upstream at all: from now on airgapd serves TIME
(plus the time since), at local_stratum, whatever this host's clock says.
With ntp.discipline: true the host clock is stepped too; otherwise the host
clock is left alone.

TIME is 2026-11-21T16:30:05+09:00, "2026-11-21 16:30:05" or 16:30:05
(today), the last two in local time.

The request goes to data_dir/ntp/settime, stamped with this host's clock at
the moment TIME was given, so it means the same whenever it is applied: a
running server applies it within a second (this command waits and says so);
otherwise the next airgapd serve applies it at start. An upstream source, when
one is reachable, overrides it at its next sample.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			to, err := ntpd.ParseTime(args[0], now, time.Local)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if cfg.NTP == nil || !cfg.Enabled("ntp") {
				return errors.New("the ntp section is absent or disabled in this config")
			}
			if err := ntpd.WriteSetTime(cfg.DataDir, to, now); err != nil {
				return fmt.Errorf("settime: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "served time set to %s (%s from this host's clock)\n", to.Format(time.RFC3339Nano), to.Sub(now).Round(time.Millisecond))
			if !fileExists(server.ControlSocketPath(cfg.RuntimeDir)) {
				fmt.Fprintf(out, "airgapd is not running: queued in %s, applied when it starts\n", filepath.Join(ntpd.Dir(cfg.DataDir), "settime"))
				return nil
			}
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if !ntpd.SetTimePending(cfg.DataDir) {
					fmt.Fprintln(out, "applied by the running server")
					return nil
				}
			}
			fmt.Fprintf(out, "queued in %s; the running server has not picked it up yet (is the ntp service running?)\n", filepath.Join(ntpd.Dir(cfg.DataDir), "settime"))
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (for data_dir and runtime_dir); default: the development defaults")
	return cmd
}

// ntpStatus fetches the running server's NTP status over the control socket.
func ntpStatus(ctx context.Context, configPath, socket string) (ntpd.Status, error) {
	if socket == "" {
		var err error
		if socket, err = defaultSocket(configPath); err != nil {
			return ntpd.Status{}, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := server.NewControlClient(socket).Status(ctx)
	if err != nil {
		return ntpd.Status{}, err
	}
	for _, s := range r.Services {
		if s.Name != "ntp" {
			continue
		}
		if s.Detail == nil {
			return ntpd.Status{}, fmt.Errorf("ntp is %s: %s", s.State, s.Summary)
		}
		b, err := json.Marshal(s.Detail)
		if err != nil {
			return ntpd.Status{}, err
		}
		var st ntpd.Status
		return st, json.Unmarshal(b, &st)
	}
	return ntpd.Status{}, errors.New("the server reports no ntp service")
}

func newNTPSourcesCmd() *cobra.Command {
	var configPath, socket string
	cmd := &cobra.Command{
		Use:   "sources [--config FILE | --socket PATH]",
		Short: "Show the upstream sources, like chronyc sources",
		Long: `Print the running server's upstream sources as chronyc sources does:
^* selected, ^+ combined, ^- not combined, ^? unreachable or not usable yet,
^x falseticker. Reach is the octal register of the last eight polls.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := ntpStatus(cmd.Context(), configPath, socket)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n\n%s", st.Summary, st.SourcesView)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file whose runtime_dir holds the control socket")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (overrides --config)")
	return cmd
}

func newNTPClientsCmd() *cobra.Command {
	var configPath, socket string
	cmd := &cobra.Command{
		Use:   "clients [--config FILE | --socket PATH]",
		Short: "Show who asks for time, like chronyc clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := ntpStatus(cmd.Context(), configPath, socket)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "Hostname\tNTP\tAnswered\tDrop\tKoD\tInt\tLast")
			now := time.Now()
			for _, c := range st.Clients {
				name := c.Address
				if c.Name != "" {
					name = c.Name + " (" + c.Address + ")"
				}
				fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.1fs\t%s ago\n", name, c.Packets, c.Answered, c.Drops, c.KoDs, c.Interval, now.Sub(c.LastSeen).Round(time.Second))
			}
			tw.Flush()
			if st.ClientsTotal > len(st.Clients) {
				fmt.Fprintf(cmd.OutOrStdout(), "(%d more)\n", st.ClientsTotal-len(st.Clients))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file whose runtime_dir holds the control socket")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (overrides --config)")
	return cmd
}
