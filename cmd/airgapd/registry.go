package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/server"
)

func newRegistryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "OCI registry: import image archives, collect garbage",
	}
	cmd.AddCommand(newRegistryGCCmd(), newRegistryImportCmd())
	return cmd
}

// registryTarget is where a registry command does its work: the running
// server (through its control socket), or data_dir itself when none runs.
type registryTarget struct {
	client  *api.Client
	offline *server.OfflineRegistry
}

func openRegistryTarget(cmd *cobra.Command, configPath, socket string) (registryTarget, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return registryTarget{}, err
	}
	if !cfg.Enabled("registry") {
		return registryTarget{}, errors.New("the registry section is absent or disabled in this config")
	}
	if socket == "" {
		socket = api.ControlSocketPath(cfg.RuntimeDir)
	}
	if c, err := serverAt(socket); c != nil || err != nil {
		return registryTarget{client: c}, err
	}
	log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	o, err := server.OpenRegistry(cfg, log)
	if err != nil {
		return registryTarget{}, err
	}
	return registryTarget{offline: o}, nil
}

func (t registryTarget) Close() {
	if t.offline != nil {
		t.offline.Close()
	}
}

func newRegistryGCCmd() *cobra.Command {
	var configPath, socket string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc [--dry-run] [--config FILE]",
		Short: "Remove blobs no manifest references any more (registry garbage-collect)",
		Long: `Run distribution's mark and sweep: every blob that no manifest in any
repository references is removed, with the repositories' links to it. Delete
images first (DELETE /v2/NAME/manifests/DIGEST, e.g. crane delete or skopeo
delete), then collect.

When airgapd is running, the server does it through the control socket (as
root): writes are refused with 503 while it runs, reads go on, and blobs of
pushes still in progress are kept. Without a server it works on data_dir
itself, under a lock that keeps a server from starting meanwhile.

--dry-run lists what would go and removes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t, err := openRegistryTarget(cmd, configPath, socket)
			if err != nil {
				return err
			}
			defer t.Close()
			var res api.GCResult
			if t.client != nil {
				res, err = t.client.RegistryGC(cmd.Context(), dryRun)
			} else {
				res, err = t.offline.GC(cmd.Context(), dryRun)
			}
			if err != nil {
				return err
			}
			writeGCResult(cmd.OutOrStdout(), res)
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (registry, data_dir, runtime_dir); default: the development defaults")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (default: runtime_dir/api.sock)")
	cmd.Flags().BoolVarP(&dryRun, "dry-run", "n", false, "list what would be removed; remove nothing")
	return cmd
}

func writeGCResult(w io.Writer, res api.GCResult) {
	verb := "removed"
	if res.DryRun {
		verb = "would remove"
	}
	fmt.Fprintf(w, "%s %d blobs (%s), %d repository links, in %.1fs\n", verb, len(res.Blobs), humanBytes(res.Bytes), res.LayerLinks, res.Duration)
	for _, b := range res.Blobs {
		fmt.Fprintf(w, "  %s %d\n", b.Digest, b.Size)
	}
	if len(res.Kept) > 0 {
		fmt.Fprintf(w, "kept %d unreferenced blobs of pushes in progress\n", len(res.Kept))
	}
}

func newRegistryImportCmd() *cobra.Command {
	var configPath, socket, repo string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "import FILE [--repo NAME[:TAG]] [--config FILE]",
		Short: "Store the images of an OCI layout or docker save tarball, digests unchanged",
		Long: `Read FILE, an OCI image layout (a tar of one, as from skopeo copy
oci-archive: or docker buildx --output type=oci, or its folder) or a docker
save tarball, and store every image in it under its name, manifests and
blobs byte for byte, so digests do not change.

Names come from the file: io.containerd.image.name or
org.opencontainers.image.ref.name in an OCI layout, RepoTags in docker save.
A full name keeps its repository path without the registry host
(docker.io/library/nginx:1.25 is stored as library/nginx:1.25). When the file
names an image only by a tag (skopeo's oci:DIR:TAG), or not at all, give the
repository with --repo; --repo also overrides the names in the file.

Blobs already stored are skipped, so an interrupted import, run again,
resumes where it stopped. When airgapd is running, the server does the work
(through the control socket, as root; FILE must be readable by it);
otherwise this command works on data_dir itself.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			if _, err := os.Stat(path); err != nil {
				return err
			}
			t, err := openRegistryTarget(cmd, configPath, socket)
			if err != nil {
				return err
			}
			defer t.Close()
			view := newProgressView(cmd.ErrOrStderr(), quiet)
			update := func(complete, total int64) {
				view.show(progressStep{Desc: "importing", Done: complete, Total: total, Bar: true, Now: total > 0 && complete == total})
			}
			var res api.RegistryImportResult
			if t.client != nil {
				res, err = t.client.RegistryImport(cmd.Context(), path, repo, update)
			} else {
				res, err = t.offline.Import(cmd.Context(), path, repo, update)
			}
			view.finish("")
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "imported %d images from %s (%s)\n", len(res.Images), args[0], res.Format)
			for _, im := range res.Images {
				fmt.Fprintf(out, "  %s@%s\n", im.Name, im.Digest)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (registry, data_dir, runtime_dir); default: the development defaults")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (default: runtime_dir/api.sock)")
	cmd.Flags().StringVar(&repo, "repo", "", "repository (and optional :tag) for images the file names only by tag, or to override their names")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}
