package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/humanize"
	"github.com/airgapd/airgapd/server"
)

func newMirrorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "RPM repositories: sync mirrors from their upstreams (reposync), index local folders (createrepo_c)",
	}
	cmd.AddCommand(newMirrorSyncCmd(), newMirrorIndexCmd())
	return cmd
}

func newMirrorSyncCmd() *cobra.Command {
	var configPath, socket string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "sync [NAME…] [--config FILE]",
		Short: "Mirror repos from their baseurl, verified, and publish them atomically (reposync --download-metadata)",
		Long: `Fetch each named repo (every repo with a baseurl when none is named):
repomd.xml, every metadata file it lists and every package that is not here
yet, in parallel (mirror.parallel), resumed where an interrupted sync
stopped, each checked against its checksum. Nothing is published unless
all of it arrived intact; then the new tree replaces the old one in one
rename, so nodes never see half a sync.

When airgapd is running, the server does the work (through the control
socket, as root) and its status shows the progress; otherwise this command
does it on data_dir itself. A repo being synced is locked either way.

Exits 1 when any repo fails, naming what failed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if !cfg.Enabled("mirror") {
				return errors.New("the mirror section is absent or disabled in this config")
			}
			return runMirrorJob(cmd, cfg, socket, args, quiet)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (repos, data_dir, runtime_dir); default: the development defaults")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (default: runtime_dir/api.sock)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}

// runMirrorJob syncs the named repos (indexing the local ones) through the
// running server's control socket, or on data_dir itself (syncJob).
func runMirrorJob(cmd *cobra.Command, cfg *server.Config, socket string, names []string, quiet bool) error {
	return syncJob{
		step: syncStep,
		remote: func(ctx context.Context, c *api.Client, show func(api.Progress)) ([]api.SyncResult, error) {
			return c.SyncMirror(ctx, names, show)
		},
		here: func(ctx context.Context, cfg *server.Config, log *slog.Logger, show func(api.Progress)) ([]api.SyncResult, error) {
			return server.SyncMirrorHere(ctx, cfg, log, names, show)
		},
		describe: describeResult,
	}.run(cmd, cfg, socket, quiet)
}

func describeResult(r api.SyncResult) string {
	took := time.Duration(r.Duration * float64(time.Second)).Round(time.Millisecond)
	switch {
	case !r.OK:
		return fmt.Sprintf("%s: FAILED after %s: %s", r.Repo, took, r.Error)
	case r.Indexed && r.UpToDate:
		return fmt.Sprintf("%s: index up to date (revision %s, %d packages)", r.Repo, r.Revision, r.Packages)
	case r.Indexed:
		return fmt.Sprintf("%s: published revision %s, %d packages, %d headers read, %d reused in %s",
			r.Repo, r.Revision, r.Packages, r.HeadersRead, r.Reused, took)
	case r.UpToDate:
		return fmt.Sprintf("%s: up to date (revision %s, %d packages)", r.Repo, r.Revision, r.Packages)
	}
	return fmt.Sprintf("%s: published revision %s, %d packages, %d fetched (%s) in %s",
		r.Repo, r.Revision, r.Packages, r.Fetched, humanBytes(r.Downloaded), took)
}

// humanBytes is what every command prints sizes with.
func humanBytes(n int64) string { return humanize.Bytes(n) }

// syncStep is a sync's (or index's) progress for the progress view: a bar
// per repo while packages (or headers) come in; the other phases are one
// line each, and done or failed is left to the result line.
func syncStep(p api.Progress) progressStep {
	counting := p.Phase == "packages" || p.Phase == "headers"
	desc := fmt.Sprintf("%s: %s", p.Repo, p.Phase)
	switch p.Phase {
	case "headers":
		desc = fmt.Sprintf("%s: %d/%d headers", p.Repo, p.Fetched, p.ToFetch)
	case "packages", "publish":
		desc = fmt.Sprintf("%s: %d/%d packages", p.Repo, p.Fetched, p.ToFetch)
	}
	return progressStep{
		Key: p.Repo, Desc: desc, Done: p.BytesDone, Total: p.Bytes, Rate: p.Rate,
		Bar: counting, Now: !counting || p.Fetched >= p.ToFetch, Skip: p.Phase == "done" || p.Phase == "failed",
	}
}

func newMirrorIndexCmd() *cobra.Command {
	var configPath, socket string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "index [NAME…] [--config FILE]",
		Short: "Index local RPM folders (repos with path:) like createrepo_c --update, and publish the index atomically",
		Long: `Index each named repo (every repo with a path when none is named): read
the header of every .rpm in its folder that is new or changed in size or
mtime since the last index (in parallel, mirror.index_workers), reuse the
entries of the others, write repodata (primary, filelists, other and
repomd.xml; signed when the repo has sign: true) and publish it in one
rename. The folder itself is not written to.

When airgapd is running, the server does the work (through the control
socket, as root); otherwise this command does it on data_dir itself. A
running server also re-indexes changed folders by itself (index_every).

Exits 1 when any repo fails, naming what failed.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if !cfg.Enabled("mirror") {
				return errors.New("the mirror section is absent or disabled in this config")
			}
			names := args
			if len(names) == 0 {
				// Named explicitly: the control socket's sync route indexes
				// the local repos it is given.
				for _, r := range cfg.Mirror.Repos {
					if !r.Mirrored() {
						names = append(names, r.Name)
					}
				}
				if len(names) == 0 {
					return errors.New("no repo in the config has a path to index")
				}
			}
			for _, n := range names {
				for _, r := range cfg.Mirror.Repos {
					if r.Name == n && r.Mirrored() {
						return fmt.Errorf("repo %q is a mirror of %s: use `airgapd mirror sync %s`", n, r.Upstream(), n)
					}
				}
			}
			return runMirrorJob(cmd, cfg, socket, names, quiet)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (repos, data_dir, runtime_dir); default: the development defaults")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (default: runtime_dir/api.sock)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}
