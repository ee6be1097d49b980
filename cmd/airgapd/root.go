package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "airgapd",
		Short: "DNS, NTP, NAT, RPM mirror and OCI registry for an air-gapped Kubernetes network, in one binary",
		Long: `airgapd runs on the admin host of an air-gapped (closed-network) Kubernetes
cluster and replaces what is otherwise installed and configured there by hand:
BIND (dns), chrony (ntp), the ip_forward + MASQUERADE script (gateway),
reposync + createrepo + nginx (mirror) and a Docker registry (registry), with
one admin UI and one config file, /etc/airgapd/airgapd.yaml.

Start with:
  airgapd serve                      the development defaults: loopback only,
                                     unprivileged ports, touches nothing
  airgapd check --config FILE        validate a config, like named-checkconf
  airgapd serve --config FILE        run it (systemd: airgapd.service)
  airgapd status                     what the running instance is doing`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.SetVersionTemplate(versionLine() + "\n")
	root.CompletionOptions.HiddenDefaultCmd = true
	root.AddCommand(newServeCmd(), newCheckCmd(), newStatusCmd(), newVersionCmd(), newGatewayCmd(), newNTPCmd(), newDNSCmd(), newMirrorCmd(), newAptCmd(), newPyPICmd(), newGoProxyCmd(), newChartsCmd(), newRegistryCmd(), newBundleCmd(), newPasswdCmd(), newHashCmd(), newImportCmd(), newHACmd())
	return root
}
