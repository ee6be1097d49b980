package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/server"
)

func newGatewayCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gateway plan|apply|down --config FILE",
		Short: "Show, apply or remove the gateway's ip_forward, NAT rules and routes",
		Long: `The gateway's rules live in airgapd's own iptables chains (AIRGAPD-PREROUTING,
AIRGAPD-POSTROUTING, AIRGAPD-FORWARD), each reached by one jump from the
built-in chain; nothing else is touched. These commands act on the host
whatever gateway.mode says (mode decides only what "serve" does):

  plan    print what apply would change, in iptables-save syntax plus sysctl
          and ip route lines; changes nothing
  apply   make the kernel match the config; prints what it changed
  down    remove airgapd's jumps, chains, routes and sysctl drop-in; leaves
          every other rule and sysctl (ip_forward included) as it is

A running "airgapd serve" in apply mode puts the rules back at its next
reconcile; stop it, or set mode: plan or remove the section and reload.`,
	}
	cmd.AddCommand(gatewaySub("plan", "Print what apply would change; change nothing"),
		gatewaySub("apply", "Make the kernel match the gateway section"),
		gatewaySub("down", "Remove airgapd's chains, jumps, routes and drop-in"))
	return cmd
}

func gatewaySub(verb, short string) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   verb + " --config FILE",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configPath == "" {
				return fmt.Errorf("gateway %s needs --config FILE", verb)
			}
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			return runGateway(cfg, verb, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (required)")
	return cmd
}

func runGateway(cfg *server.Config, verb string, out, errOut io.Writer) error {
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := server.RunGateway(cfg, verb, log)
	if p == nil {
		return err
	}
	if verb == "plan" || p.Changes == 0 {
		fmt.Fprint(out, p.Text)
	} else {
		what := map[string]string{"apply": "applied", "down": "removed"}[verb]
		fmt.Fprintf(out, "# %s %d change(s):\n%s", what, p.Changes, p.Text)
	}
	for _, n := range p.Notes {
		fmt.Fprintln(out, "# note: "+n)
	}
	if err != nil {
		if os.Geteuid() != 0 && !errors.Is(err, errors.ErrUnsupported) {
			fmt.Fprintln(errOut, "airgapd: the gateway commands read and change iptables and need root")
		}
		return err
	}
	return nil
}
