package rpm

import (
	"github.com/airgapd/airgapd/mirror"

	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// ImageStore is where a bundle's images go: the registry, which server
// passes in (mirror does not import registry).
type ImageStore interface {
	// ImportLayout stores every image the OCI image layout at dir lists in
	// its index.json, byte for byte, under the upstream-qualified name its
	// io.containerd.image.name annotation gives (registry.k8s.io/pause:3.10).
	ImportLayout(ctx context.Context, dir string) error
}

// ImportOptions tune ImportBundle.
type ImportOptions struct {
	// Images receives the bundle's images; nil refuses a bundle with images.
	Images ImageStore
	// Progress, when set, is called as the bundle is read and verified
	// (a few times a second) and as each part is published.
	Progress func(mirror.ImportProgress)
}

// setBundleImport publishes an import's progress to the status.
func (m *Mirror) setBundleImport(p *mirror.ImportProgress) {
	m.mu.Lock()
	m.bundleImport = p
	m.mu.Unlock()
}

// bundleImportStatus is the import under way, or the last one.
func (m *Mirror) bundleImportStatus() *mirror.ImportProgress {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.bundleImport == nil {
		return nil
	}
	p := *m.bundleImport
	return &p
}

// ImportResult is what an import published.
type ImportResult struct {
	ID       string   `json:"id"`
	Repos    []string `json:"repos"`
	Files    int      `json:"files"`
	Images   []string `json:"images"`
	Verified int      `json:"verified_blobs"`
	Reused   int      `json:"reused_blobs"` // staged by an interrupted run, or held by the base
}

// bundleDir is data_dir/bundle: staging/ID/ (blobs being verified),
// imported/HEX.json (each imported bundle's manifest), lock.
func (m *Mirror) bundleDir() string { return filepath.Join(m.deps.DataDir, "bundle") }

// ImportBundle verifies every blob of the bundle at path against its
// checksum, and only when all are intact (and an incremental bundle's base
// was imported here) publishes: each repo atomically under its name (served
// even when the config does not list it), files into mirror.files (each by
// rename), images through opts.Images. Verified blobs are kept in staging
// until the import completes, so an interrupted import run again does not
// write them twice; publishing again what was published is harmless.
//
// While it runs, the mirror's status shows its progress (bundle_import),
// and the last import's outcome stays there.
func (m *Mirror) ImportBundle(ctx context.Context, path string, opts ImportOptions) (res ImportResult, err error) {
	bm, raw, parts, err := findBundle(path)
	if err != nil {
		return res, err
	}
	res.ID = bundleID(raw)
	cfg := m.config()
	hexID := strings.TrimPrefix(res.ID, "sha256:")

	// What this host must offer before anything is read.
	if bm.Base != "" {
		if _, err := os.Stat(filepath.Join(m.bundleDir(), "imported", strings.TrimPrefix(bm.Base, "sha256:")+".json")); err != nil {
			return res, fmt.Errorf("this bundle holds only what changed since bundle %s (created %s), which was not imported here: import that bundle first; nothing was published",
				bm.Base, bm.BaseCreated.Format(time.RFC3339))
		}
	}
	if len(bm.Files) > 0 && cfg.Files == "" {
		return res, errors.New("the bundle holds files but this config has no files folder: set mirror.files; nothing was published")
	}
	for _, r := range bm.Repos {
		if cr, ok := cfg.repo(r.Name); ok && !cr.Mirrored() {
			return res, fmt.Errorf("the bundle's repo %s is a local folder (path:) in this config: rename or remove that repo; nothing was published", r.Name)
		}
	}
	var images []BundleImage
	for _, im := range bm.Images {
		if !im.InBase {
			images = append(images, im)
		}
	}
	if len(images) > 0 && opts.Images == nil {
		return res, errors.New("the bundle holds images but the registry is absent or disabled in this config; nothing was published")
	}

	unlock, err := lockFile(filepath.Join(m.bundleDir(), "lock"))
	if err != nil {
		return res, err
	}
	defer unlock()

	tr := mirror.NewTracker(mirror.ImportProgress{
		Bundle: res.ID, Path: path, Phase: "verify", Blobs: len(bm.Blobs), Bytes: bundleSize(parts), Started: time.Now()}, opts.Progress, m.setBundleImport)
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
	staging := filepath.Join(m.bundleDir(), "staging", hexID)
	if err := os.MkdirAll(filepath.Join(staging, "blobs", "sha256"), 0o750); err != nil {
		return res, err
	}
	staged := func(d string) string { return filepath.Join(staging, filepath.FromSlash(blobEntry(d))) }
	verified, reused, err := m.verifyBundle(ctx, bm, parts, staged, tr)
	res.Verified, res.Reused = verified, reused
	if err != nil {
		return res, err
	}

	// 2. Everything the items need and the bundle does not carry must be
	// here already (the base's content).
	carried := map[string]bool{}
	for _, b := range bm.Blobs {
		carried[b.Digest] = true
	}
	var missing []string
	for _, r := range bm.Repos {
		st := mirror.RepoStore(m.deps.DataDir, r.Name)
		for _, f := range r.Files {
			if !carried[f.Digest] {
				if _, err := os.Stat(st.Pool(mirror.SHA256(f.Digest))); err != nil {
					missing = append(missing, "repo "+r.Name+": "+f.Path)
				} else {
					res.Reused++
				}
			}
		}
	}
	for _, f := range bm.Files {
		if !carried[f.Digest] {
			if d, err := hashFile(filepath.Join(cfg.Files, filepath.FromSlash(f.Path))); err != nil || d != f.Digest {
				missing = append(missing, "file "+f.Path)
			} else {
				res.Reused++
			}
		}
	}
	imageMissing, err := missingImageBlobs(ctx, opts.Images, images, carried)
	if err != nil {
		return res, err
	}
	missing = append(missing, imageMissing...)
	if len(missing) > 0 {
		return res, fmt.Errorf("the bundle does not carry %d item(s) and this host does not have them (%s): import the bundle it was made --since first; nothing was published",
			len(missing), strings.Join(mirror.FirstN(missing, 5), ", "))
	}

	// 3. Publish.
	publishing := func(item string) {
		tr.Update(true, func(p *mirror.ImportProgress) { p.Phase, p.Item = "publish", item })
	}
	for _, r := range bm.Repos {
		publishing("repo " + r.Name)
		if err := m.publishBundleRepo(ctx, res.ID, bm, r, staged); err != nil {
			return res, fmt.Errorf("repo %s: %w (run the import again to finish)", r.Name, err)
		}
		res.Repos = append(res.Repos, r.Name)
	}
	if len(bm.Files) > 0 {
		publishing("files")
	}
	for _, f := range bm.Files {
		if carried[f.Digest] { // the others are in place already (checked above)
			if err := placeFile(staged(f.Digest), filepath.Join(cfg.Files, filepath.FromSlash(f.Path))); err != nil {
				return res, fmt.Errorf("file %s: %w (run the import again to finish)", f.Path, err)
			}
		}
		res.Files++
	}
	if len(images) > 0 {
		publishing("images")
		dir, err := writeLayout(staging, images, bm, staged)
		if err != nil {
			return res, err
		}
		if err := opts.Images.ImportLayout(ctx, dir); err != nil {
			return res, fmt.Errorf("images: %w (run the import again to finish)", err)
		}
		for _, im := range images {
			res.Images = append(res.Images, im.Name)
		}
	}

	// 4. Remember it (for incremental bundles on top), drop the staging.
	if err := os.MkdirAll(filepath.Join(m.bundleDir(), "imported"), 0o750); err != nil {
		return res, err
	}
	if err := writeFileAtomic(filepath.Join(m.bundleDir(), "imported", hexID+".json"), raw); err != nil {
		return res, err
	}
	os.RemoveAll(staging)
	m.log.Info("bundle imported", "id", res.ID, "repos", len(res.Repos), "files", res.Files, "images", len(res.Images))
	return res, nil
}

// verifyBundle reads the whole stream, writing each blob not staged yet
// into staging under its digest once its checksum matched. A blob whose
// bytes do not match is named with the items made of it and the part it
// sits in; nothing is published then.
func (m *Mirror) verifyBundle(ctx context.Context, bm *BundleManifest, parts bundleParts, staged func(string) string, track *importTracker) (verified, reused int, err error) {
	want := map[string]int64{}
	for _, b := range bm.Blobs {
		want[b.Digest] = b.Size
	}
	r, closeAll, err := parts.open()
	if err != nil {
		return 0, 0, err
	}
	defer closeAll()
	// A cancelled import (the caller went away) stops inside a big blob
	// too, not only between blobs.
	cr := &countReader{r: r, ctx: ctx}
	cr.onRead = func(n int64) { track.Update(false, func(p *mirror.ImportProgress) { p.BytesDone = n }) }
	blobDone := func() { track.Update(false, func(p *mirror.ImportProgress) { p.BlobsDone++ }) }
	tr := tar.NewReader(cr)
	if _, err := tr.Next(); err != nil { // the manifest, read already
		return 0, 0, err
	}
	seen := map[string]bool{}
	var bad []string
	for {
		if ctx.Err() != nil {
			return verified, reused, stopped(ctx)
		}
		at := cr.n
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil && ctx.Err() != nil {
			return verified, reused, stopped(ctx)
		}
		if err != nil {
			return verified, reused, fmt.Errorf("the bundle is damaged near byte %d, in %s: %w; bring an undamaged copy; nothing was published", at, parts.partOf(at), err)
		}
		d := "sha256:" + strings.TrimPrefix(h.Name, "blobs/sha256/")
		size, ok := want[d]
		if !ok || h.Name != blobEntry(d) || seen[d] {
			return verified, reused, fmt.Errorf("the bundle holds %q, which its manifest does not list: it is damaged or not airgapd's; nothing was published", h.Name)
		}
		seen[d] = true
		dataAt := cr.n
		if _, err := os.Stat(staged(d)); err == nil {
			reused++
			blobDone()
			continue // verified by an earlier, interrupted run
		}
		tmp := staged(d) + ".tmp"
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
		if err != nil {
			return verified, reused, err
		}
		hs := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, hs), tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil && ctx.Err() != nil {
			os.Remove(tmp)
			return verified, reused, stopped(ctx)
		}
		if err != nil {
			os.Remove(tmp)
			return verified, reused, fmt.Errorf("read %s (%s): %w", describeBlob(bm, d), parts.partOf(dataAt), err)
		}
		got := "sha256:" + hex.EncodeToString(hs.Sum(nil))
		if got != d || n != size {
			os.Remove(tmp)
			bad = append(bad, fmt.Sprintf("%s in %s: checksum mismatch (got %s, %d bytes; want %s, %d bytes)", describeBlob(bm, d), parts.partOf(dataAt), got, n, d, size))
			continue
		}
		if err := os.Rename(tmp, staged(d)); err != nil {
			return verified, reused, err
		}
		verified++
		blobDone()
	}
	for _, b := range bm.Blobs {
		if !seen[b.Digest] {
			bad = append(bad, describeBlob(bm, b.Digest)+": not in the bundle")
		}
	}
	if len(bad) > 0 {
		return verified, reused, fmt.Errorf("the bundle is damaged, nothing was published: %s; bring an undamaged copy", strings.Join(mirror.FirstN(bad, 5), "; "))
	}
	return verified, reused, nil
}

// stopped is the error of an import whose ctx ended.
func stopped(ctx context.Context) error {
	return fmt.Errorf("import stopped before anything was published (run it again to finish; what was verified is kept): %w", ctx.Err())
}

// bundleSize is the size of all the bundle's parts together.
func bundleSize(parts bundleParts) int64 {
	var total int64
	for _, s := range parts.sizes {
		total += s
	}
	return total
}

// describeBlob names the items made of blob d.
func describeBlob(bm *BundleManifest, d string) string {
	var items []string
	for _, r := range bm.Repos {
		for _, f := range r.Files {
			if f.Digest == d {
				items = append(items, "repo "+r.Name+" "+f.Path)
			}
		}
	}
	for _, f := range bm.Files {
		if f.Digest == d {
			items = append(items, "file "+f.Path)
		}
	}
	for _, im := range bm.Images {
		if slices.Contains(im.Blobs, d) {
			items = append(items, "image "+im.Name)
		}
	}
	if len(items) == 0 {
		return "blob " + d
	}
	return strings.Join(mirror.FirstN(items, 3), ", ") + " (blob " + d + ")"
}

// countReader counts the bytes read through it, telling onRead (when
// set) the count so far; once ctx (when set) ends, reads fail with its
// error.
type countReader struct {
	r      io.Reader
	n      int64
	onRead func(n int64)
	ctx    context.Context
}

func (c *countReader) Read(p []byte) (int, error) {
	if c.ctx != nil {
		if err := c.ctx.Err(); err != nil {
			return 0, err
		}
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.onRead != nil && n > 0 {
		c.onRead(c.n)
	}
	return n, err
}

// publishBundleRepo builds the repo's tree from staged blobs and its pool,
// and publishes it as a sync does, marked as imported.
func (m *Mirror) publishBundleRepo(ctx context.Context, id string, bm *BundleManifest, r BundleRepo, staged func(string) string) error {
	st := mirror.RepoStore(m.deps.DataDir, r.Name)
	unlock, err := st.LockWait(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	tmp, err := st.NewSnapshot(time.Now())
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var pkgs int
	var bytes int64
	for _, f := range r.Files {
		pool := st.Pool(mirror.SHA256(f.Digest))
		if _, err := os.Stat(pool); err != nil {
			if err := os.MkdirAll(filepath.Dir(pool), 0o750); err != nil {
				return err
			}
			if err := linkOrCopy(staged(f.Digest), pool); err != nil {
				return err
			}
		}
		if err := mirror.Link(pool, tmp, f.Path); err != nil {
			return fmt.Errorf("%s: %w", f.Path, err)
		}
		if strings.HasSuffix(f.Path, ".rpm") {
			pkgs++
			bytes += f.Size
		}
	}
	if err := writeFileAtomic(filepath.Join(st.Dir, importedMarker), mustJSON(importedRepo{Bundle: id, Created: bm.Created, Revision: r.Revision})); err != nil {
		return err
	}
	if _, err := st.Publish(tmp); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	state := readState(st)
	state.Revision, state.Published, state.Packages, state.Bytes = r.Revision, time.Now(), pkgs, bytes
	state.LastResult, state.LastError = "ok", ""
	if err := st.WriteState(state); err != nil {
		return err
	}
	m.mu.Lock()
	m.states[r.Name] = state
	m.mu.Unlock()
	return nil
}

// importedMarker, in a repo's folder, says it came from a bundle: it is
// served under its name even when the config does not list it.
const importedMarker = "imported.json"

type importedRepo struct {
	Bundle   string    `json:"bundle"`
	Created  time.Time `json:"created"`
	Revision string    `json:"revision,omitempty"`
}

func mustJSON(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return b
}

// importedRepos lists the repos under data_dir that came from a bundle.
func (m *Mirror) importedRepos() []string {
	entries, _ := os.ReadDir(filepath.Join(m.deps.DataDir, "mirror", "repos"))
	var names []string
	for _, e := range entries {
		if e.IsDir() && m.isImported(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}

func (m *Mirror) isImported(name string) bool {
	if !mirror.ValidName(name) {
		return false
	}
	_, err := os.Stat(filepath.Join(mirror.RepoStore(m.deps.DataDir, name).Dir, importedMarker))
	return err == nil
}

// placeFile puts a verified blob at dst by rename of a temporary link or
// copy, so a node never reads half a file.
func placeFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(dst), ".airgapd-"+filepath.Base(dst)+".tmp")
	os.Remove(tmp)
	if err := linkOrCopy(src, tmp); err != nil {
		return err
	}
	os.Chmod(tmp, 0o644)
	return os.Rename(tmp, dst)
}

// linkOrCopy hard-links src to dst, or copies it across file systems.
func linkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	if !errors.Is(err, syscall.EXDEV) && !errors.Is(err, syscall.EPERM) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst+".part", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(dst+".part", dst)
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
func writeLayout(staging string, images []BundleImage, bm *BundleManifest, staged func(string) string) (string, error) {
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
			if err := linkOrCopy(staged(b), filepath.Join(dir, filepath.FromSlash(blobEntry(b)))); err != nil {
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

// lockFile takes an exclusive lock without waiting; the kernel drops it
// when the process dies.
func lockFile(p string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another bundle import holds %s: wait for it to finish", p)
		}
		return nil, fmt.Errorf("lock %s: %w", p, err)
	}
	return func() { f.Close() }, nil
}
