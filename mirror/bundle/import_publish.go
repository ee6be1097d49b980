package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/airgapd/airgapd/mirror"
)

func mustJSON(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return b
}

// placeFile puts a verified blob at dst by rename of a temporary link or
// copy, so a node never reads half a file.
func placeFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(dst), ".airgapd-"+filepath.Base(dst)+".tmp")
	os.Remove(tmp)
	if err := mirror.LinkOrCopy(src, tmp); err != nil {
		return err
	}
	os.Chmod(tmp, 0o644)
	return os.Rename(tmp, dst)
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// writeLayout makes an OCI image layout of the images out of the staged
// blobs (hard links), naming each in index.json.
func writeLayout(staging string, images []Image, bm *Manifest, staged func(string) string) (string, error) {
	dir := filepath.Join(staging, "layout")
	os.RemoveAll(dir)
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o750); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return "", err
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
			if _, err := os.Stat(staged(b)); err != nil {
				continue // not carried: the registry holds it (checked before publishing)
			}
			if err := mirror.LinkOrCopy(staged(b), filepath.Join(dir, filepath.FromSlash(blobEntry(b)))); err != nil {
				return "", fmt.Errorf("image %s: %w", im.Name, err)
			}
		}
		_, tag, _ := strings.Cut(im.Name[strings.LastIndex(im.Name, "/")+1:], ":")
		index.Manifests = append(index.Manifests, desc{MediaType: im.MediaType, Digest: im.Digest, Size: im.Size,
			Annotations: map[string]string{"io.containerd.image.name": im.Name, "org.opencontainers.image.ref.name": tag}})
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), mustJSON(index), 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// importing is a verified bundle about to be published.
type importing struct {
	bm      *Manifest
	id      string
	files   string // mirror.files
	staging string
	staged  func(digest string) string
	carried map[string]bool
	tr      *tracker
}

// publish publishes the repos, the files and the images, in that order.
func (c *Carrier) publish(ctx context.Context, imp importing, images []Image, store ImageStore, res *ImportResult) error {
	publishing := func(item string) {
		imp.tr.Update(true, func(p *mirror.ImportProgress) { p.Phase, p.Item = "publish", item })
	}
	for _, r := range imp.bm.Repos {
		publishing("repo " + r.Name)
		if err := c.publishRepo(ctx, imp, r); err != nil {
			return fmt.Errorf("repo %s: %w (run the import again to finish)", r.Name, err)
		}
		res.Repos = append(res.Repos, r.Name)
	}
	if len(imp.bm.Files) > 0 {
		publishing("files")
	}
	for _, f := range imp.bm.Files {
		if imp.carried[f.Digest] { // the others are in place already (checked before)
			if err := placeFile(imp.staged(f.Digest), filepath.Join(imp.files, filepath.FromSlash(f.Path))); err != nil {
				return fmt.Errorf("file %s: %w (run the import again to finish)", f.Path, err)
			}
		}
		res.Files++
	}
	if len(images) == 0 {
		return nil
	}
	publishing("images")
	dir, err := writeLayout(imp.staging, images, imp.bm, imp.staged)
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
// blobs, through the RPM mirror (as a sync does), marked as imported.
func (c *Carrier) publishRepo(ctx context.Context, imp importing, r Repo) error {
	files := make([]mirror.TreeFile, len(r.Files))
	for i, f := range r.Files {
		files[i] = mirror.TreeFile{Path: f.Path, Sum: mirror.SHA256(f.Digest), Size: f.Size}
	}
	fromStaging := func(_ context.Context, f mirror.TreeFile, dst string) error {
		return mirror.LinkOrCopy(imp.staged("sha256:"+f.Sum.Value), dst)
	}
	origin := mirror.Origin{Bundle: imp.id, Created: imp.bm.Created, Revision: r.Revision}
	return c.repos.PublishImported(ctx, r.Name, origin, files, fromStaging)
}
