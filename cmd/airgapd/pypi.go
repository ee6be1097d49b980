package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/server"
)

func newPyPICmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "pypi",
		Short: "The PyPI index: sync the projects pinned requirements files and package specs name from upstream simple indexes",
	}
	cmd.AddCommand(newPyPISyncCmd())
	return cmd
}

func newPyPISyncCmd() *cobra.Command {
	var configPath, socket string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "sync [--config FILE]",
		Short: "Fetch every file pypi.requirements and pypi.packages name, verified, and publish the index atomically",
		Long: `Read pypi.requirements (pinned files, as pip-compile --generate-hashes or
pip freeze write them) and pypi.packages, fetch each project's page from the
upstreams (PEP 691 JSON when offered, else PEP 503 HTML), take the files the
versions, hashes, platforms, python_versions and sdists select, and fetch
those not here yet, each checked against the upstream's sha256 and the
requirements' hashes, with PEP 658 metadata files where offered. Nothing is
published unless all of it arrived intact; then the new index replaces the
old one in one rename. No dependency is resolved: list them all (see
mirror/pypi/README.md).

When airgapd is running, the server does the work (through the control
socket, as root) and its status shows the progress; otherwise this command
does it on data_dir itself.

Exits 1 when the sync fails, naming what failed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return singleSync{section: "pypi", step: pypiStep, describe: func(r api.SyncResult) string { return "pypi " + describeResult(r) },
				remote: func(ctx context.Context, c *api.Client, show func(api.Progress)) (api.SyncResult, error) {
					return c.SyncPyPI(ctx, show)
				},
				here: server.SyncPyPIHere,
			}.run(cmd, configPath, socket, quiet)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (pypi, data_dir, runtime_dir); default: the development defaults")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (default: runtime_dir/api.sock)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}

// pypiStep is a sync's progress for the progress view, in files.
func pypiStep(p api.Progress) progressStep {
	s := syncStep(p)
	if p.Phase == "packages" || p.Phase == "publish" {
		s.Desc = fmt.Sprintf("pypi: %d/%d files", p.Fetched, p.ToFetch)
	}
	return s
}
