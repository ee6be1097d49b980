package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/server"
)

func newStatusCmd() *cobra.Command {
	var (
		configPath, socket, apiURL, token, caFile string
		asJSON                                    bool
	)
	cmd := &cobra.Command{
		Use:   "status [--config FILE | --socket PATH | --api URL --token T]",
		Short: "Summarise the running instance, like chronyc tracking or rndc status",
		Long: `Ask the running airgapd how each service is doing: one line per service
with its state and key figures.

By default it uses the local control socket, RUNTIME_DIR/api.sock, which is
for root only (no login needed). RUNTIME_DIR comes from --config; without it,
/run/airgapd, or ./var/run when only the development instance is running.
--api URL --token T reaches a remote instance instead; --cacert FILE trusts
its appliance CA (ca.crt, served at /ca.crt on the mirror listener) where
this machine's trust store does not:

  airgapd status --api https://admin.lab.internal:8443 --token T --cacert ca.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var c *api.Client
			switch {
			case apiURL != "":
				c = api.NewRemoteClient(apiURL, token)
				if caFile != "" {
					if err := c.TrustCAFile(caFile); err != nil {
						return fmt.Errorf("--cacert: %w", err)
					}
				}
			case caFile != "":
				return errors.New("--cacert is for --api URL; the control socket needs no certificate")
			default:
				if socket == "" {
					var err error
					if socket, err = defaultSocket(configPath); err != nil {
						return err
					}
				}
				c = api.NewControlClient(socket)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			r, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			r.WriteText(cmd.OutOrStdout(), time.Now())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "config file whose runtime_dir holds the control socket")
	f.StringVar(&socket, "socket", "", "control socket path (overrides --config)")
	f.StringVar(&apiURL, "api", "", "URL of a remote instance's web listener, e.g. https://admin.lab.internal:8443")
	f.StringVar(&token, "token", "", "API token for --api")
	f.StringVar(&caFile, "cacert", "", "PEM CA file to trust for --api (the appliance CA's ca.crt)")
	f.BoolVar(&asJSON, "json", false, "print the raw JSON report")
	return cmd
}

// defaultSocket finds the control socket: from --config's runtime_dir, else
// the packaged default, else the development default.
func defaultSocket(configPath string) (string, error) {
	if configPath != "" {
		cfg, err := loadConfig(configPath)
		if err != nil {
			return "", err
		}
		return api.ControlSocketPath(cfg.RuntimeDir), nil
	}
	system := api.ControlSocketPath("/run/airgapd")
	if _, err := os.Stat(system); err == nil {
		return system, nil
	}
	dev, err := server.LoadDev()
	if err != nil {
		return "", err
	}
	if p := api.ControlSocketPath(dev.RuntimeDir); fileExists(p) {
		return p, nil
	}
	return system, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
