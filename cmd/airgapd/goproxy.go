package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/server"
)

func newGoProxyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "goproxy",
		Short: "Go modules: sync the module proxy the nodes' go command uses (GOPROXY, GOSUMDB)",
	}
	cmd.AddCommand(newGoProxySyncCmd())
	return cmd
}

func newGoProxySyncCmd() *cobra.Command {
	var configPath, socket string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "sync [--config FILE]",
		Short: "Fetch goproxy.modules and every module of goproxy.go_mod's go.sum files, verified, and publish them atomically",
		Long: `Collect the module versions to mirror (goproxy.modules, and for each
goproxy.go_mod file its requirements and every line of the go.sum beside
it), look each up in the checksum database (goproxy.sumdb) and compare its
hashes with go.sum's, fetch each version's .info, .mod and .zip from
goproxy.upstream and check the go.mod's and the zip's hashes. Only when
every one matches is the new tree published, in one rename, with the
checksum database's answers beside it (so GOSUMDB checks work offline).
A mismatch names the module and publishes nothing.

When airgapd is running, the server does the work (through the control
socket, as root) and its status shows the progress; otherwise this command
does it on data_dir itself.

Exits 1 when the sync fails.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return singleSync{section: "goproxy", step: goproxyStep, describe: describeGoProxy,
				remote: func(ctx context.Context, c *api.Client, show func(api.Progress)) (api.SyncResult, error) {
					return c.SyncGoProxy(ctx, show)
				},
				here: server.SyncGoProxyHere,
			}.run(cmd, configPath, socket, quiet)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (goproxy, data_dir, runtime_dir); default: the development defaults")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (default: runtime_dir/api.sock)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}

// goproxyStep is a sync's progress for the progress view: a bar while
// module versions come in.
func goproxyStep(p api.Progress) progressStep {
	step := syncStep(p)
	if p.Phase == "packages" || p.Phase == "publish" {
		step.Desc = fmt.Sprintf("goproxy: %d/%d module versions", p.Fetched, p.ToFetch)
	} else {
		step.Desc = "goproxy: " + p.Phase
	}
	return step
}

func describeGoProxy(r api.SyncResult) string {
	if !r.OK {
		r.Repo = "goproxy"
		return describeResult(r)
	}
	return fmt.Sprintf("goproxy: published revision %s, %d module versions, %d files fetched (%s)",
		r.Revision, r.Packages, r.Fetched, humanBytes(r.Downloaded))
}
