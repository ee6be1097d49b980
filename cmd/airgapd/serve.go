package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/internal/gcfloor"
	"github.com/airgapd/airgapd/server"
)

// gcHeapFloor is the heap size below which the collector waits: 64 MiB of
// memory at most, for a collection every 64 MB allocated rather than every
// 15–20 under DNS load on a fresh cache. GOGC in the environment overrides.
const gcHeapFloor = 64 << 20

func newServeCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve [--config FILE]",
		Short: "Run every service the config enables",
		Long: `Run every service whose section is in the config and not "enabled: false".

With no --config, serve runs the built-in development defaults (the same as
examples/dev.yaml): loopback addresses, unprivileged ports (web
127.0.0.1:8080, DNS 127.0.0.1:5353, NTP 127.0.0.1:11123, mirror
127.0.0.1:8081, registry 127.0.0.1:5000), no upstream servers, the gateway in
plan mode, data under ./var. It changes nothing on this host.

Signals: SIGHUP rereads the config and applies it (an invalid one is logged
and the running config kept); SIGTERM or SIGINT stops within 5 seconds.
While the Go heap is small, it is collected only once it reaches 64 MiB
(GOGC in the environment turns this off and applies as usual).
Under systemd (Type=notify) it reports READY, RELOADING, STOPPING and
pings the watchdog.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			// A small heap is not collected every few MB (internal/gcfloor).
			gcfloor.Start(gcHeapFloor)
			srv, err := server.New(cfg, server.Options{ConfigPath: configPath, Version: version})
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			if err := srv.Run(ctx, hup); err != nil {
				srv.Logger().Error("airgapd stopped with an error", "err", err)
				return exitError(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (default: the built-in development defaults)")
	return cmd
}

// loadConfig reads path, or the built-in defaults when path is empty.
// A config with problems prints them all, one per line, like `check`.
func loadConfig(path string) (*server.Config, error) {
	var cfg *server.Config
	var err error
	if path == "" {
		cfg, err = server.LoadDev()
	} else {
		cfg, err = server.LoadFile(path)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return nil, exitError(1)
	}
	return cfg, nil
}
