package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/server"
)

func newChartsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "charts",
		Short: "Helm charts: copy charts from upstream chart repositories into the registry, list the images a chart uses",
	}
	cmd.AddCommand(newChartsSyncCmd(), newChartsImagesCmd())
	return cmd
}

func newChartsSyncCmd() *cobra.Command {
	var configPath, socket string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "sync [NAME…] [--config FILE]",
		Short: "Copy the listed charts of each upstream chart repository (charts.repos) into the registry, verified",
		Long: `For each named upstream repository (every one in charts.repos when none
is named): fetch its index.yaml, choose the listed charts (NAME: the newest
version that is no pre-release; NAME@RANGE: every version in the semver
range), fetch each .tgz not in the registry yet and check it against the
sha256 digest index.yaml gives. Only when every chosen .tgz of every
repository arrived intact is anything pushed: each into the registry as
charts/NAME:VERSION, as helm push stores it, so /charts/index.yaml lists it
and helm pull oci:// reaches it.

When airgapd is running, the server does the work (through the control
socket, as root); otherwise this command opens data_dir's registry itself.

Exits 1 when any repository fails, naming what failed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if !cfg.Enabled("charts") {
				return errors.New("the charts section is absent or disabled in this config")
			}
			return syncJob{
				step: chartsStep,
				remote: func(ctx context.Context, c *api.Client, show func(api.Progress)) ([]api.SyncResult, error) {
					return c.SyncCharts(ctx, args, show)
				},
				here: func(ctx context.Context, cfg *server.Config, log *slog.Logger, show func(api.Progress)) ([]api.SyncResult, error) {
					return server.SyncChartsHere(ctx, cfg, log, args, show)
				},
				describe: describeChartsResult,
			}.run(cmd, cfg, socket, quiet)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (charts, registry, data_dir, runtime_dir); default: the development defaults")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (default: runtime_dir/api.sock)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}

func describeChartsResult(r api.SyncResult) string {
	switch {
	case !r.OK:
		return fmt.Sprintf("%s: FAILED: %s", r.Repo, r.Error)
	case r.UpToDate:
		return fmt.Sprintf("%s: up to date (%d chart versions)", r.Repo, r.Packages)
	}
	return fmt.Sprintf("%s: %d chart versions, %d copied into the registry (%s fetched)", r.Repo, r.Packages, r.Fetched, humanBytes(r.Downloaded))
}

// chartsStep is a chart sync's progress for the progress view.
func chartsStep(p api.Progress) progressStep {
	desc := fmt.Sprintf("%s: %s", p.Repo, p.Phase)
	if p.Phase == "packages" {
		desc = fmt.Sprintf("%s: %d/%d charts", p.Repo, p.Fetched, p.ToFetch)
	}
	counting := p.Phase == "packages"
	return progressStep{
		Key: p.Repo, Desc: desc, Done: p.BytesDone, Total: p.Bytes, Rate: p.Rate,
		Bar: counting, Now: !counting || p.Fetched >= p.ToFetch, Skip: p.Phase == "done" || p.Phase == "failed",
	}
}

func newChartsImagesCmd() *cobra.Command {
	var configPath, socket, file string
	cmd := &cobra.Command{
		Use:   "images NAME-VERSION | --file CHART.tgz",
		Short: "List the container images a chart's default values and templates name (a heuristic)",
		Long: `Print the images chart NAME-VERSION (as /charts/index.yaml lists it; asked of
the running server) or the chart file given with --file references, one a
line, so they can be carried with bundle create --image.

It is a heuristic, not a render: image: strings and {registry, repository,
tag} maps in values.yaml (the tag defaulting to the chart's appVersion),
and image: lines with a literal value in templates, subcharts included. An
image a template assembles otherwise is missed: check with helm template.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var imgs []string
			switch {
			case file != "":
				tgz, err := os.ReadFile(file)
				if err != nil {
					return err
				}
				if imgs, err = server.ChartImagesInFile(tgz); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			case len(args) == 1:
				cfg, err := loadConfig(configPath)
				if err != nil {
					return err
				}
				if socket == "" {
					socket = api.ControlSocketPath(cfg.RuntimeDir)
				}
				c, err := serverAt(socket)
				if err != nil {
					return err
				}
				if c == nil {
					return errors.New("airgapd is not running here: start it, or give the chart file with --file")
				}
				res, err := c.ChartImagesOf(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				imgs = res.Images
			default:
				return errors.New("name a chart (NAME-VERSION) or give --file CHART.tgz")
			}
			if len(imgs) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), strings.Join(imgs, "\n"))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (runtime_dir); default: the development defaults")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (default: runtime_dir/api.sock)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "a chart .tgz on disk instead of one the server holds")
	return cmd
}
