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

// singleSync is the sync command of a format with one tree to sync (the
// PyPI index, the Go proxy): through the running server when one answers
// on the control socket, else on data_dir, with a progress view.
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
	if socket == "" {
		socket = api.ControlSocketPath(cfg.RuntimeDir)
	}
	view := newProgressView(cmd.ErrOrStderr(), quiet)
	show := func(p api.Progress) { view.show(s.step(p)) }
	c, err := serverAt(socket)
	if err != nil {
		return err
	}
	var res api.SyncResult
	var jobErr error
	remote := c != nil
	if remote {
		res, jobErr = s.remote(cmd.Context(), c, show)
		if errors.Is(jobErr, api.ErrNotRunning) {
			remote = false
		}
	}
	if !remote {
		log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
		res, jobErr = s.here(cmd.Context(), cfg, log, show)
	}
	view.finish("")
	if res.Repo != "" {
		fmt.Fprintln(cmd.OutOrStdout(), s.describe(res))
	}
	return jobErr
}
