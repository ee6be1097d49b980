package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/airgapd/airgapd/mirror"
)

func mustJSON(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return b
}

// hashReader returns the sha256 digest of what r holds.
func hashReader(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// writeLayout makes an OCI image layout of the images out of the staged
// blobs (hard links), naming each in index.json, in the staging (through
// its root), and returns its absolute path.
func writeLayout(imp importing, images []Image) (string, error) {
	dir := imp.stagingRel + "/layout"
	root := imp.bundleDir.root
	if err := root.RemoveAll(filepath.FromSlash(dir)); err != nil {
		return "", imp.bundleDir.explain(dir, err)
	}
	if err := root.MkdirAll(filepath.FromSlash(dir+"/blobs/sha256"), 0o750); err != nil {
		return "", imp.bundleDir.explain(dir, err)
	}
	if err := root.WriteFile(filepath.FromSlash(dir+"/oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return "", imp.bundleDir.explain(dir, err)
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
	}
	index := struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
		Manifests     []desc `json:"manifests"`
	}{SchemaVersion: 2, MediaType: "application/vnd.oci.image.index.v1+json"}
	linked := map[string]bool{}
	for _, im := range images {
		for _, b := range im.Blobs {
			if linked[b] {
				continue
			}
			linked[b] = true
			if _, err := root.Stat(filepath.FromSlash(imp.stagedRel(b))); err != nil {
				continue // not carried: the registry holds it (checked before publishing)
			}
			if err := imp.bundleDir.linkWithin(imp.stagedRel(b), dir+"/"+blobEntry(b)); err != nil {
				return "", fmt.Errorf("image %s: %w", im.Name, err)
			}
		}
		_, tag, _ := strings.Cut(im.Name[strings.LastIndex(im.Name, "/")+1:], ":")
		index.Manifests = append(index.Manifests, desc{MediaType: im.MediaType, Digest: im.Digest, Size: im.Size,
			Annotations: map[string]string{"io.containerd.image.name": im.Name, "org.opencontainers.image.ref.name": tag}})
	}
	if err := root.WriteFile(filepath.FromSlash(dir+"/index.json"), mustJSON(index), 0o644); err != nil {
		return "", imp.bundleDir.explain(dir, err)
	}
	return imp.bundleDir.abs(dir), nil
}

// importing is a verified bundle about to be published.
type importing struct {
	bm    *Manifest
	id    string
	files string // mirror.files
	// bundleDir is data_dir/bundle; the staging is stagingRel in it, and
	// stagedRel names a verified blob there.
	bundleDir  *rootedDir
	stagingRel string
	stagedRel  func(digest string) string
	carried    map[string]bool
	tr         *tracker
}

// staged is the absolute path of verified blob d in the staging.
func (imp importing) staged(d string) string { return imp.bundleDir.abs(imp.stagedRel(d)) }

// publish publishes the repos, the files and the images, in that order.
func (c *Carrier) publish(ctx context.Context, imp importing, images []Image, store ImageStore, res *ImportResult) error {
	publishing := func(item string) {
		imp.tr.Update(true, func(p *mirror.ImportProgress) { p.Phase, p.Item = "publish", item })
	}
	for _, r := range imp.bm.Repos {
		publishing("repo " + itemName(r))
		if err := c.publishRepo(ctx, imp, r); err != nil {
			return fmt.Errorf("repo %s: %w (run the import again to finish)", itemName(r), err)
		}
		res.Repos = append(res.Repos, itemName(r))
	}
	if len(imp.bm.Files) > 0 {
		publishing("files")
		if err := publishFiles(imp, res); err != nil {
			return err
		}
	}
	if len(images) == 0 {
		return nil
	}
	publishing("images")
	dir, err := writeLayout(imp, images)
	if err != nil {
		return err
	}
	if err := store.ImportLayout(ctx, dir); err != nil {
		return fmt.Errorf("images: %w (run the import again to finish)", err)
	}
	for _, im := range images {
		res.Images = append(res.Images, im.Name)
	}
	return nil
}

// publishRepo publishes the repo's tree from its pool and the staged
// blobs, through its format (as a sync does), marked as imported.
func (c *Carrier) publishRepo(ctx context.Context, imp importing, r Repo) error {
	files := make([]mirror.TreeFile, len(r.Files))
	for i, f := range r.Files {
		files[i] = mirror.TreeFile{Path: f.Path, Sum: mirror.SHA256(f.Digest), Size: f.Size}
	}
	// The pool is written through a root at the repo's store, opened once
	// the store exists (PublishImported makes it, taking its lock).
	store := c.storeOf(r)
	var pool *rootedDir
	defer func() {
		if pool != nil {
			pool.Close()
		}
	}()
	fromStaging := func(_ context.Context, f mirror.TreeFile, dst string) error {
		if pool == nil {
			var err error
			if pool, err = openRooted(store.Dir); err != nil {
				return err
			}
		}
		rel, err := filepath.Rel(store.Dir, dst)
		if err != nil || !filepath.IsLocal(rel) {
			return fmt.Errorf("%s is outside the repo's store %s", dst, store.Dir)
		}
		return pool.place(imp.staged("sha256:"+f.Sum.Value), filepath.ToSlash(rel), 0)
	}
	origin := mirror.Origin{Bundle: imp.id, Created: imp.bm.Created, Revision: r.Revision}
	return c.publishTree(ctx, r, origin, files, fromStaging)
}

// publishFiles puts each file the bundle carries into mirror.files, each
// by rename, through a root at that folder.
func publishFiles(imp importing, res *ImportResult) error {
	files, err := openRooted(imp.files)
	if err != nil {
		return fmt.Errorf("files folder: %w", err)
	}
	defer files.Close()
	for _, f := range imp.bm.Files {
		if imp.carried[f.Digest] { // the others are in place already (checked before)
			if err := files.place(imp.staged(f.Digest), f.Path, 0o644); err != nil {
				return fmt.Errorf("file %s: %w (run the import again to finish)", f.Path, err)
			}
		}
		res.Files++
	}
	return nil
}
