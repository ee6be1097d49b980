package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/server"
)

// syncJob is what every sync and index command does: the work through the
// running server when one answers on the control socket, else on data_dir
// itself, with a progress view, then a line per repo.
type syncJob struct {
	step     func(api.Progress) progressStep
	remote   func(context.Context, *api.Client, func(api.Progress)) ([]api.SyncResult, error)
	here     func(context.Context, *server.Config, *slog.Logger, func(api.Progress)) ([]api.SyncResult, error)
	describe func(api.SyncResult) string
}

func (j syncJob) run(cmd *cobra.Command, cfg *server.Config, socket string, quiet bool) error {
	if socket == "" {
		socket = api.ControlSocketPath(cfg.RuntimeDir)
	}
	view := newProgressView(cmd.ErrOrStderr(), quiet)
	show := func(p api.Progress) { view.show(j.step(p)) }
	c, err := serverAt(socket)
	if err != nil {
		return err
	}
	var results []api.SyncResult
	var jobErr error
	remote := c != nil
	if remote {
		results, jobErr = j.remote(cmd.Context(), c, show)
		if errors.Is(jobErr, api.ErrNotRunning) {
			remote = false // it stopped meanwhile
		}
	}
	if !remote {
		log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
		results, jobErr = j.here(cmd.Context(), cfg, log, show)
	}
	view.finish("")
	for _, r := range results {
		fmt.Fprintln(cmd.OutOrStdout(), j.describe(r))
	}
	return jobErr
}

// singleSync is the sync command of a format with one tree to sync (the
// PyPI index, the Go proxy).
type singleSync struct {
	section  string // the config section that must be on
	step     func(api.Progress) progressStep
	remote   func(context.Context, *api.Client, func(api.Progress)) (api.SyncResult, error)
	here     func(context.Context, *server.Config, *slog.Logger, func(api.Progress)) (api.SyncResult, error)
	describe func(api.SyncResult) string
}

func (s singleSync) run(cmd *cobra.Command, configPath, socket string, quiet bool) error {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return err
	}
	if !cfg.Enabled(s.section) {
		return fmt.Errorf("the %s section is absent or disabled in this config", s.section)
	}
	one := func(r api.SyncResult, err error) ([]api.SyncResult, error) {
		if r.Repo == "" {
			return nil, err
		}
		return []api.SyncResult{r}, err
	}
	return syncJob{
		step: s.step,
		remote: func(ctx context.Context, c *api.Client, show func(api.Progress)) ([]api.SyncResult, error) {
			return one(s.remote(ctx, c, show))
		},
		here: func(ctx context.Context, cfg *server.Config, log *slog.Logger, show func(api.Progress)) ([]api.SyncResult, error) {
			return one(s.here(ctx, cfg, log, show))
		},
		describe: s.describe,
	}.run(cmd, cfg, socket, quiet)
}
