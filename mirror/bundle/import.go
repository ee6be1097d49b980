package bundle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airgapd/airgapd/api"
	"github.com/airgapd/airgapd/internal/atomicfile"
	"github.com/airgapd/airgapd/mirror"
	"github.com/airgapd/airgapd/mirror/rpm"
)

// ImageStore is where a bundle's images go: the registry, which server
// passes in (this package does not import registry).
type ImageStore interface {
	// ImportLayout stores every image the OCI image layout at dir lists in
	// its index.json, byte for byte, under the upstream-qualified name its
	// io.containerd.image.name annotation gives (registry.k8s.io/pause:3.10).
	ImportLayout(ctx context.Context, dir string) error
}

// ImportOptions tune Import.
type ImportOptions struct {
	// Images receives the bundle's images; nil refuses a bundle with images.
	Images ImageStore
	// Progress, when set, is called as the bundle is read and verified
	// (a few times a second) and as each part is published.
	Progress func(mirror.ImportProgress)
}

// ImportResult is what an import published: the api package's type.
type ImportResult = api.BundleImportResult

// tracker follows an import's progress.
type tracker = mirror.Tracker[mirror.ImportProgress, *mirror.ImportProgress]

// Import verifies every blob of the bundle at path against its
// checksum, and only when all are intact (and an incremental bundle's base
// was imported here) publishes: each repo atomically under its name (served
// even when the config does not list it), files into mirror.files (each by
// rename), images through opts.Images. Verified blobs are kept in staging
// until the import completes, so an interrupted import run again does not
// write them twice; publishing again what was published is harmless.
//
// While it runs, the mirror's status shows its progress (bundle_import),
// and the last import's outcome stays there.
func (c *Carrier) Import(ctx context.Context, path string, opts ImportOptions) (res ImportResult, err error) {
	bm, raw, parts, err := findBundle(path)
	if err != nil {
		return res, err
	}
	res.ID = bundleID(raw)
	cfg := c.repos.Config()
	hexID := strings.TrimPrefix(res.ID, "sha256:")
	images, err := c.checkImport(bm, cfg, opts)
	if err != nil {
		return res, err
	}
	// Before anything is written (the lock file included).
	if err := c.checkSpace(bm, cfg, images, hexID); err != nil {
		return res, err
	}
	// Every write of the import below data_dir/bundle (the lock, the
	// staging, imported/) goes through a root at it.
	bundleDir, err := openRooted(c.dir())
	if err != nil {
		return res, err
	}
	defer bundleDir.Close()
	unlock, err := bundleDir.lock("lock")
	if errors.Is(err, mirror.ErrBusy) {
		return res, fmt.Errorf("another bundle import holds %s: wait for it to finish", bundleDir.abs("lock"))
	}
	if err != nil {
		return res, err
	}
	defer unlock()

	tr := mirror.NewTracker(mirror.ImportProgress{
		Bundle: res.ID, Path: path, Phase: "verify", Blobs: len(bm.Blobs), Bytes: bundleSize(parts), Started: time.Now()}, opts.Progress, c.repos.SetImportProgress)
	tr.Update(true, func(*mirror.ImportProgress) {})
	defer func() {
		tr.Update(true, func(p *mirror.ImportProgress) {
			p.Item = ""
			if err != nil {
				p.Phase, p.Error = "failed", err.Error()
				return
			}
			p.Phase, p.BytesDone = "done", p.Bytes
		})
	}()

	// 1. Read and verify every blob into staging.
	stagingRel := "staging/" + hexID
	stagedRel := func(d string) string { return stagingRel + "/" + blobEntry(d) }
	if err := bundleDir.root.MkdirAll(filepath.FromSlash(stagingRel+"/blobs/sha256"), 0o750); err != nil {
		return res, bundleDir.explain(stagingRel+"/blobs/sha256", err)
	}
	res.Verified, res.Reused, err = verifyBundle(ctx, bm, parts, bundleDir, stagedRel, tr)
	if err != nil {
		return res, err
	}
	// 2. Everything the items need and the bundle does not carry must be
	// here already (the base's content).
	carried := map[string]bool{}
	for _, b := range bm.Blobs {
		carried[b.Digest] = true
	}
	here, err := c.checkHave(ctx, bm, cfg, opts.Images, images, carried)
	if err != nil {
		return res, err
	}
	res.Reused += here
	// 3. Publish.
	imp := importing{bm: bm, id: res.ID, files: cfg.Files, bundleDir: bundleDir, stagingRel: stagingRel, stagedRel: stagedRel, carried: carried, tr: tr}
	if err := c.publish(ctx, imp, images, opts.Images, &res); err != nil {
		return res, err
	}
	// 4. Remember it (for incremental bundles on top), drop the staging.
	// Made through the root, so it is a folder inside data_dir/bundle,
	// not a symlink out of it, when atomicfile writes in it.
	if err := bundleDir.root.MkdirAll("imported", 0o750); err != nil {
		return res, bundleDir.explain("imported", err)
	}
	if fi, err := bundleDir.root.Lstat("imported"); err != nil || !fi.IsDir() {
		return res, fmt.Errorf("%s is not a folder: remove it and run again", bundleDir.abs("imported"))
	}
	if err := atomicfile.WriteFile(filepath.Join(c.dir(), "imported", hexID+".json"), raw, 0o644); err != nil {
		return res, err
	}
	bundleDir.root.RemoveAll(filepath.FromSlash(stagingRel))
	c.log.Info("bundle imported", "id", res.ID, "repos", len(res.Repos), "files", res.Files, "images", len(res.Images))
	return res, nil
}

// checkImport says what this host must offer before anything is read, and
// returns the images to store (those the base did not carry).
func (c *Carrier) checkImport(bm *Manifest, cfg rpm.Config, opts ImportOptions) ([]Image, error) {
	if bm.Base != "" {
		if _, err := os.Stat(filepath.Join(c.dir(), "imported", strings.TrimPrefix(bm.Base, "sha256:")+".json")); err != nil {
			return nil, fmt.Errorf("this bundle holds only what changed since bundle %s (created %s), which was not imported here: import that bundle first; nothing was published",
				bm.Base, bm.BaseCreated.Format(time.RFC3339))
		}
	}
	if len(bm.Files) > 0 && cfg.Files == "" {
		return nil, errors.New("the bundle holds files but this config has no files folder: set mirror.files; nothing was published")
	}
	if err := c.checkFormats(bm); err != nil {
		return nil, err
	}
	for _, r := range bm.Repos {
		if cr, ok := cfg.Lookup(r.Name); ok && r.Format == "" && !cr.Mirrored() {
			return nil, fmt.Errorf("the bundle's repo %s is a local folder (path:) in this config: rename or remove that repo; nothing was published", r.Name)
		}
	}
	var images []Image
	for _, im := range bm.Images {
		if !im.InBase {
			images = append(images, im)
		}
	}
	if len(images) > 0 && opts.Images == nil {
		return nil, errors.New("the bundle holds images but the registry is absent or disabled in this config; nothing was published")
	}
	return images, nil
}

// checkHave checks that every item's content the bundle does not carry is
// here already, and returns how many such items it found.
func (c *Carrier) checkHave(ctx context.Context, bm *Manifest, cfg rpm.Config, store ImageStore, images []Image, carried map[string]bool) (int, error) {
	var missing []string
	have := 0
	for _, r := range bm.Repos {
		st := c.storeOf(r)
		for _, f := range r.Files {
			if !carried[f.Digest] {
				if !st.Has(mirror.SHA256(f.Digest)) {
					missing = append(missing, "repo "+itemName(r)+": "+f.Path)
				} else {
					have++
				}
			}
		}
	}
	// Read through a root at the files folder: a file reached by a
	// symlink leading out of it is not the files folder's.
	var files *rootedDir
	if r, err := os.OpenRoot(cfg.Files); err == nil && cfg.Files != "" {
		files = &rootedDir{root: r, dir: cfg.Files}
		defer files.Close()
	}
	for _, f := range bm.Files {
		if !carried[f.Digest] {
			if files == nil {
				missing = append(missing, "file "+f.Path)
			} else if d, err := files.hashIn(f.Path); err != nil || d != f.Digest {
				missing = append(missing, "file "+f.Path)
			} else {
				have++
			}
		}
	}
	imageMissing, err := missingImageBlobs(ctx, store, images, carried)
	if err != nil {
		return have, err
	}
	missing = append(missing, imageMissing...)
	if len(missing) > 0 {
		return have, fmt.Errorf("the bundle does not carry %d item(s) and this host does not have them (%s): import the bundle it was made --since first; nothing was published",
			len(missing), strings.Join(mirror.FirstN(missing, 5), ", "))
	}
	return have, nil
}
