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

func newAptCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apt",
		Short: "APT repositories: sync mirrors verified against their keyring, index and sign local .deb folders",
	}
	cmd.AddCommand(newAptJobCmd("sync"), newAptJobCmd("index"))
	return cmd
}

// newAptJobCmd is `apt sync` or `apt index`: one route on the control
// socket (a local repo named is indexed), one offline path.
func newAptJobCmd(verb string) *cobra.Command {
	var configPath, socket string
	var quiet bool
	short := "Mirror APT repos from their url: InRelease verified against the keyring, every index and .deb checked, published atomically"
	long := `Fetch each named repo (every repo with a url when none is named): each
suite's InRelease (or Release and Release.gpg), verified against the repo's
keyring before anything it names is used; every Packages, Sources, Contents
and i18n index it lists for the repo's components and architectures,
checked by size and SHA256; every .deb not here yet, in parallel
(apt.parallel), resumed where an interrupted sync stopped, checked against
its entry. Nothing is published unless all of it arrived intact; then the
new tree replaces the old one in one rename.

When airgapd is running, the server does the work (through the control
socket); otherwise this command does it on data_dir itself.

Exits 1 when any repo fails, naming the file that failed.`
	if verb == "index" {
		short = "Index local .deb folders (repos with path:) like apt-ftparchive, signed with the site key, and publish atomically"
		long = `Index each named repo (every repo with a path when none is named): read
the control fields of every .deb that is new or changed in size or mtime
since the last index, reuse the others, write Packages and a Release with
their SHA256, sign it with the site key (InRelease and Release.gpg; the key
is served at /apt/NAME.asc) and publish it in one rename.

Exits 1 when any repo fails.`
	}
	cmd := &cobra.Command{
		Use:   verb + " [NAME…] [--config FILE]",
		Short: short,
		Long:  long,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			if !cfg.Enabled("apt") {
				return errors.New("the apt section is absent or disabled in this config")
			}
			names, err := aptNames(cfg, verb, args)
			if err != nil {
				return err
			}
			return runAptJob(cmd, cfg, socket, names, quiet)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (repos, data_dir, runtime_dir); default: the development defaults")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (default: runtime_dir/api.sock)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}

// aptNames checks the names against the verb: index takes local repos
// (all of them when none is named), sync the mirrored ones.
func aptNames(cfg *server.Config, verb string, names []string) ([]string, error) {
	if verb == "index" && len(names) == 0 {
		for _, r := range cfg.Apt.Repos {
			if !r.Mirrored() {
				names = append(names, r.Name)
			}
		}
		if len(names) == 0 {
			return nil, errors.New("no apt repo in the config has a path to index")
		}
	}
	for _, n := range names {
		for _, r := range cfg.Apt.Repos {
			if r.Name == n && verb == "index" && r.Mirrored() {
				return nil, fmt.Errorf("apt repo %q is a mirror of %s: use `airgapd apt sync %s`", n, r.URL, n)
			}
			if r.Name == n && verb == "sync" && !r.Mirrored() {
				return nil, fmt.Errorf("apt repo %q is a local folder: use `airgapd apt index %s`", n, n)
			}
		}
	}
	return names, nil
}

// runAptJob runs the job through the running server's control socket, or
// on data_dir itself when no server runs (syncJob).
func runAptJob(cmd *cobra.Command, cfg *server.Config, socket string, names []string, quiet bool) error {
	return syncJob{
		step: syncStep,
		remote: func(ctx context.Context, c *api.Client, show func(api.Progress)) ([]api.SyncResult, error) {
			return c.SyncApt(ctx, names, show)
		},
		here: func(ctx context.Context, cfg *server.Config, log *slog.Logger, show func(api.Progress)) ([]api.SyncResult, error) {
			return server.SyncAptHere(ctx, cfg, log, names, show)
		},
		describe: describeResult,
	}.run(cmd, cfg, socket, quiet)
}
