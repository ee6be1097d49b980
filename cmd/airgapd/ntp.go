package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/server"
	"github.com/airgapd/airgapd/web"
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
	var (
		configPath string
		force      bool
	)
	cmd := &cobra.Command{
		Use:   "settime TIME --config FILE [--force]",
		Short: "Set the served time from the operator's watch, like chronyc settime",
		Long: `For an admin host with no upstream at all: from now on airgapd serves TIME
(plus the time since), at local_stratum, whatever this host's clock says.
With ntp.discipline: true the host clock is stepped too; otherwise the host
clock is left alone.

TIME is 2026-11-21T16:30:05+09:00, "2026-11-21 16:30:05" or 16:30:05
(today), the last two in local time.

A running server is asked over the control socket, and refuses while an
upstream source is selected: the source's next sample would override the
operator's time, and until then every node would follow it. --force sets it
anyway. With no server running the request goes to data_dir/ntp/settime,
stamped with this host's clock at the moment TIME was given, so it means the
same whenever the next airgapd serve applies it at start. Either way the
change is in the audit log.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			to, err := server.ParseNTPTime(args[0], now, time.Local)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			c, err := serverAt(api.ControlSocketPath(cfg.RuntimeDir))
			if err != nil {
				return err
			}
			if c != nil {
				step, err := c.SetNTPTime(cmd.Context(), to, force)
				if err != nil {
					return err
				}
				fmt.Fprintf(out, "served time set to %s by the running server (stepped %s)\n", to.Format(time.RFC3339Nano), step.Round(time.Millisecond))
				return nil
			}
			queued, err := server.QueueNTPSetTime(cfg, to, now, force)
			if err != nil {
				return err
			}
			auditOffline(cfg, "ntp time set", to.Format(time.RFC3339)+" (queued in "+queued+")")
			fmt.Fprintf(out, "served time set to %s (%s from this host's clock)\nairgapd is not running: queued in %s, applied when it starts\n",
				to.Format(time.RFC3339Nano), to.Sub(now).Round(time.Millisecond), queued)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (for data_dir and runtime_dir); default: the development defaults")
	cmd.Flags().BoolVar(&force, "force", false, "set the time even while an upstream source is selected")
	return cmd
}

// auditOffline records a change a command made with no server running, in
// the audit log the UI shows; a failure to record is said, not fatal.
func auditOffline(cfg *server.Config, action, detail string) {
	who := "root (offline CLI)"
	if u, err := user.Current(); err == nil {
		who = u.Username + " (offline CLI)"
	}
	e := web.AuditEntry{Time: time.Now(), Who: who, From: "local", Action: action, Detail: detail, Result: "ok"}
	if err := web.AppendAudit(cfg.DataDir, e); err != nil {
		fmt.Fprintf(os.Stderr, "airgapd: not in the audit log: %v\n", err)
	}
}

// ntpStatus fetches the running server's NTP status over the control socket.
func ntpStatus(ctx context.Context, configPath, socket string) (api.NTPStatus, error) {
	if socket == "" {
		var err error
		if socket, err = defaultSocket(configPath); err != nil {
			return api.NTPStatus{}, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := api.NewControlClient(socket).Status(ctx)
	if err != nil {
		return api.NTPStatus{}, err
	}
	s := r.Service(api.ServiceNTP)
	switch {
	case s.State == "disabled" && s.Summary == "":
		return api.NTPStatus{}, errors.New("the server reports no ntp service")
	case s.NTP == nil:
		return api.NTPStatus{}, fmt.Errorf("ntp is %s: %s", s.State, s.Summary)
	}
	return *s.NTP, nil
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
