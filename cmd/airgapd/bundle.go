package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/server"
)

func newBundleCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Carry repos, files and images across the air gap in one verified bundle (docs/BUNDLE.md)",
	}
	cmd.AddCommand(newBundleCreateCmd(), newBundleInspectCmd(), newBundleImportCmd())
	return cmd
}

func newBundleCreateCmd() *cobra.Command {
	var configPath, out, splitSize, since, compress string
	var repos, aptRepos, files, images, imageLists, platforms, chartSpecs []string
	var quiet, syncFirst, fromRegistry, withPyPI, withGoProxy, allCharts bool
	cmd := &cobra.Command{
		Use:   "create --out PATH [--repo NAME]… [--apt NAME]… [--pypi] [--goproxy] [--sync] [--files DIR]… [--image REF]… [--from-registry] [--image-list F] [--chart NAME[@RANGE]]… [--charts] [--platform os/arch]… [--compress zstd] [--split-size 4G] [--since OLD.manifest.json]",
		Short: "Write a bundle of published repos, folders of files and images",
		Long: `Write one bundle (a tar of content-addressed blobs and a manifest listing
every item with its sha256; docs/BUNDLE.md) on the internet side:

  --repo NAME     a repo this instance mirrors or indexes, as published now
                  (sync or index it first, or give --sync); read under the
                  repo's lock
  --sync          sync (or index) every --repo first, as 'airgapd mirror
                  sync NAME…' does: through the running server when one
                  answers on the control socket, else on data_dir
  --apt NAME      an APT repo (apt.repos), as published now
  --pypi          the PyPI index (pypi:): what was synced and what was uploaded
  --goproxy       the Go module proxy's modules (goproxy:), with the checksum
                  database answers it keeps
  --files DIR     a folder; its contents go to the root of mirror.files
  --image REF     an image (registry/repository:tag, @sha256:… pins it),
                  byte for byte: digests unchanged, a multi-arch index whole.
                  An upstream listed in registry.mirrors with a url is
                  fetched from that url (and its credentials), keeping its name
  --image-list F  one image per line, '#' comments (kubespray-offline's
                  images.list)
  --from-registry read every image from this instance's own registry (the
                  running server's; what ns= pulls cached and imports
                  stored, under the upstream-qualified name) instead of
                  its upstream
  --chart N[@R]   a Helm chart of the running server's registry (charts/N): its
                  newest release, or every version in range R; byte for byte
  --charts        every version of every chart there (both import to charts/)
  --platform P    os/arch[/variant], repeat or comma-separate: of a multi-arch
                  index carry only these platforms' manifests and layers (the
                  index itself unchanged; other platforms answer 404 after
                  import). Default: indexes whole

Each image's signatures and attachments come along: cosign's tags
(sha256-HEX.sig, .att, .sbom) and OCI referrers, stored under the same names
on import.

--compress zstd writes the tar zstd-compressed (import and inspect notice it
by itself; so does 'zstd -d').

--split-size cuts the bundle into OUT.part001, OUT.part002, … each no bigger
than the size (4G, 700M, 4.7GB); import takes the first part or the folder.
--since OLD.manifest.json (written beside every bundle as OUT.manifest.json,
or the old bundle itself) leaves out what the old bundle carried, down to
single image layers; import then requires the old bundle to have been
imported first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			for _, f := range imageLists {
				refs, err := readImageList(f)
				if err != nil {
					return err
				}
				images = append(images, refs...)
			}
			var split int64
			if splitSize != "" {
				if split, err = server.ParseBundleSize(splitSize); err != nil {
					return fmt.Errorf("--split-size: %w", err)
				}
			}
			if syncFirst && len(repos) > 0 {
				if !cfg.Enabled("mirror") {
					return errors.New("--sync: the mirror section is absent or disabled in this config: enable it and list the repos")
				}
				if err := runMirrorJob(cmd, cfg, "", repos, quiet); err != nil {
					return fmt.Errorf("--sync: %w (no bundle written)", err)
				}
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			view := newBundleView(cmd.ErrOrStderr(), quiet, "writing")
			res, err := server.CreateBundle(cmd.Context(), cfg, log, server.BundleRequest{
				Repos: repos, Trees: bundleTrees(aptRepos, withPyPI, withGoProxy), Files: files, Images: images, Out: out, SplitSize: split, Since: since,
				Platforms: platforms, Compress: compress, FromRegistry: fromRegistry, Progress: view.updateCreate,
				Charts: chartSpecs, AllCharts: allCharts,
			})
			view.finish()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "bundle %s: %d repos, %d files, %d images; %d blobs, %s\n", res.ID, res.Repos, res.Files, res.Images, res.Blobs, humanBytes(res.Size))
			for _, p := range res.Parts {
				fmt.Fprintf(w, "  %s\n", p)
			}
			fmt.Fprintf(w, "manifest for a later --since: %s\n", res.Manifest)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "config file (repos, data_dir, registry.mirrors); default: the development defaults")
	f.StringVarP(&out, "out", "o", "", "bundle file to write (parts are OUT.part001, …)")
	f.StringSliceVar(&repos, "repo", nil, "published repo to carry (repeat, or comma-separated)")
	f.StringSliceVar(&aptRepos, "apt", nil, "published APT repo to carry (repeat, or comma-separated)")
	f.BoolVar(&withPyPI, "pypi", false, "carry the PyPI index")
	f.BoolVar(&withGoProxy, "goproxy", false, "carry the Go module proxy's modules")
	f.StringSliceVar(&files, "files", nil, "folder of files to carry (repeat)")
	f.StringSliceVar(&images, "image", nil, "image reference to carry (repeat)")
	f.StringSliceVar(&imageLists, "image-list", nil, "file with one image reference per line")
	f.StringVar(&splitSize, "split-size", "", "largest part, e.g. 4G, 700M, 4.7GB (default: one file)")
	f.StringSliceVar(&platforms, "platform", nil, "os/arch[/variant] of multi-arch images to carry (repeat, or comma-separated; default: all)")
	f.StringVar(&compress, "compress", "none", "zstd: write the tar zstd-compressed; none: plain tar")
	f.StringVar(&since, "since", "", "manifest (OUT.manifest.json) or bundle of an earlier bundle: carry only what it did not")
	f.BoolVar(&syncFirst, "sync", false, "sync (or index) each --repo before bundling it")
	f.BoolVar(&fromRegistry, "from-registry", false, "read the images from this instance's running registry, not their upstreams")
	f.StringArrayVar(&chartSpecs, "chart", nil, "Helm chart of the registry's charts/ to carry: NAME or NAME@RANGE (repeat; a range may hold commas)")
	f.BoolVar(&allCharts, "charts", false, "carry every version of every chart in the registry's charts/")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}

// readImageList reads kubespray-offline's images.list: one reference a
// line, blank lines and # comments ignored.
func readImageList(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--image-list: %w", err)
	}
	defer f.Close()
	var refs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		refs = append(refs, strings.Fields(l)[0])
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--image-list %s: %w", path, err)
	}
	return refs, nil
}

func newBundleInspectCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect PATH",
		Short: "List what a bundle holds and its size per kind (reads the manifest; import verifies)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := server.InspectBundle(args[0])
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			writeBundleInfo(w, info)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifest and sizes as JSON")
	return cmd
}

func writeBundleInfo(w io.Writer, info server.BundleInfo) {
	bm := info.Manifest
	fmt.Fprintf(w, "bundle %s\ncreated %s, %s", info.ID, bm.Created.Format(time.RFC3339), bm.Format)
	if info.Compressed {
		fmt.Fprint(w, ", zstd-compressed")
	}
	if bm.Split != nil {
		fmt.Fprintf(w, ", %d parts of %s", bm.Split.Parts, humanBytes(bm.Split.PartSize))
	}
	fmt.Fprintln(w)
	if bm.Base != "" {
		fmt.Fprintf(w, "incremental: only what changed since bundle %s (created %s)\n", bm.Base, bm.BaseCreated.Format(time.RFC3339))
	}
	var carried int64
	for _, b := range bm.Blobs {
		carried += b.Size
	}
	fmt.Fprintf(w, "carries %d blobs, %s: repos %s, files %s, images %s\n", len(bm.Blobs), humanBytes(carried),
		humanBytes(info.Bytes["repos"]), humanBytes(info.Bytes["files"]), humanBytes(info.Bytes["images"]))
	for _, r := range bm.Repos {
		pkgs := 0
		for _, f := range r.Files {
			if strings.HasSuffix(f.Path, ".rpm") {
				pkgs++
			}
		}
		fmt.Fprintf(w, "repo   %s  revision %s, %d packages, %d files\n", r.Name, r.Revision, pkgs, len(r.Files))
	}
	for _, f := range bm.Files {
		fmt.Fprintf(w, "file   %s  %s  %s\n", f.Path, humanBytes(f.Size), f.Digest)
	}
	for _, im := range bm.Images {
		note := ""
		if len(im.Platforms) > 0 {
			note += "  platforms " + strings.Join(im.Platforms, ",")
		}
		if im.Subject != "" {
			note += "  attached to " + im.Subject
		}
		if im.InBase {
			note += "  (in the base bundle)"
		}
		fmt.Fprintf(w, "image  %s  %s  %s%s\n", im.Name, im.Digest, im.MediaType, note)
	}
}

func newBundleImportCmd() *cobra.Command {
	var configPath, socket string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "import PATH [--config FILE]",
		Short: "Verify a bundle, then publish its repos, files and images",
		Long: `Read the bundle (a file, its first part, or the folder holding it) and
check every blob against its sha256 before anything is published. A missing
or damaged part, or a damaged item, is named and nothing is published. Then:
repos are published atomically under their names (served even when the
config does not list them), files go into mirror.files, images into the
registry under their upstream-qualified names (so ns= pulls find them).

An incremental bundle (made --since) needs the bundle it was made on to have
been imported first. An interrupted import (Ctrl-C, kill -9, a server
stopped mid-way), run again, reuses the blobs it verified already and
finishes; nothing is published twice or half.

When airgapd is running, the server does the work through its control socket
(as root): PATH is a path on the admin host, which the server reads itself
(it is made absolute here), so it must be readable by the server. The
running mirror and registry serve what was imported at once, and the
server's status (airgapd status, the UI, /api/v1/status) shows the import's
progress while it runs. Otherwise this command works on data_dir itself.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(configPath)
			if err != nil {
				return err
			}
			path, err := filepath.Abs(args[0])
			if err != nil {
				return err
			}
			info, err := server.InspectBundle(path)
			if err != nil {
				return err
			}
			if (len(info.Manifest.Repos) > 0 || len(info.Manifest.Files) > 0) && !cfg.Enabled("mirror") {
				return errors.New("the mirror section is absent or disabled in this config: enable it to serve the bundle's repos and files")
			}
			if socket == "" {
				socket = api.ControlSocketPath(cfg.RuntimeDir)
			}
			c, err := serverAt(socket)
			if err != nil {
				return err
			}
			view := newBundleView(cmd.ErrOrStderr(), quiet, "verifying")
			var res api.BundleImportResult
			if c != nil {
				res, err = c.ImportBundle(cmd.Context(), path, view.updateImport)
			} else {
				log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
				res, err = server.ImportBundleHere(cmd.Context(), cfg, log, path, view.updateImport)
			}
			view.finish()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "bundle %s imported: %d blobs verified, %d reused\n", res.ID, res.Verified, res.Reused)
			for _, r := range res.Repos {
				fmt.Fprintf(w, "repo   %s published\n", r)
			}
			if res.Files > 0 {
				fmt.Fprintf(w, "files  %d in %s\n", res.Files, cfg.Mirror.Files)
			}
			for _, im := range res.Images {
				fmt.Fprintf(w, "image  %s\n", im)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "config file (mirror, registry, data_dir, runtime_dir); default: the development defaults")
	cmd.Flags().StringVar(&socket, "socket", "", "control socket path (default: runtime_dir/api.sock)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress output")
	return cmd
}

// bundleView turns a bundle being written or verified into the progress
// view's steps (bytes, blobs, what is being published) and ends with a
// line of totals.
type bundleView struct {
	view      *progressView
	verb      string // writing | verifying
	items     int
	itemsAll  int    // 0: not known (create reports blobs as they are written)
	publish   string // what an import is publishing now
	announced string // the publish step last printed
}

func newBundleView(w io.Writer, quiet bool, verb string) *bundleView {
	return &bundleView{view: newProgressView(w, quiet), verb: verb}
}

// updateCreate is bundle create's progress.
func (v *bundleView) updateCreate(p server.BundleCreateProgress) {
	v.items, v.itemsAll = p.BlobsDone, p.Blobs
	v.show(p.BytesDone, p.Bytes)
}

// updateImport is bundle import's progress, from this process or the
// server's.
func (v *bundleView) updateImport(p api.ImportProgress) {
	v.items, v.itemsAll = p.BlobsDone, p.Blobs
	if p.Phase == "publish" {
		v.publish = p.Item
	}
	v.show(p.BytesDone, p.Bytes)
}

func (v *bundleView) show(done, total int64) {
	desc := fmt.Sprintf("%s %d blobs", v.verb, v.items)
	switch {
	case v.publish != "":
		desc = "publishing " + v.publish
	case v.itemsAll > 0:
		desc = fmt.Sprintf("%s %d/%d blobs", v.verb, v.items, v.itemsAll)
	}
	announce := v.publish != v.announced
	v.announced = v.publish
	v.view.show(progressStep{Desc: desc, Done: done, Total: total, Bar: true, Now: announce})
}

func (v *bundleView) finish() {
	v.view.finish(pastTense(v.verb) + " " + v.view.totals(v.items))
}

func pastTense(verb string) string {
	switch verb {
	case "writing":
		return "wrote"
	case "verifying":
		return "verified"
	}
	return verb
}

// bundleTrees are bundle create's formats beside RPM: the APT repos named,
// every tree of the PyPI index and of the Go proxy when asked for.
func bundleTrees(aptRepos []string, withPyPI, withGoProxy bool) map[string][]string {
	trees := map[string][]string{}
	if len(aptRepos) > 0 {
		trees["apt"] = aptRepos
	}
	if withPyPI {
		trees["pypi"] = nil
	}
	if withGoProxy {
		trees["goproxy"] = nil
	}
	return trees
}
