package mirror

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// BundleUpstream is where an image registry is really reached from the
// bastion (registry.mirrors' url and credentials): an image named
// docker.io/library/nginx:1.25 is fetched from URL when the registry
// docker.io has an entry, and keeps its name in the bundle.
type BundleUpstream struct {
	URL      string
	Username string
	Password string
}

// CreateOptions are `airgapd bundle create`'s inputs.
type CreateOptions struct {
	Repos  []string // published repos of this instance, by name
	Files  []string // folders; their contents go to the root of the files folder
	Images []string // image references, with a tag
	Out    string
	// SplitSize > 0 cuts the bundle into parts of this many bytes when it
	// is bigger.
	SplitSize int64
	// Since is an older bundle's manifest (OUT.manifest.json or the
	// bundle itself): blobs it carried are left out.
	Since string
	// Upstreams maps a registry host to where it is reached.
	Upstreams map[string]BundleUpstream
	// Progress, when set, is called as bytes are written.
	Progress func(done, total int64)
}

// CreateResult is what create wrote.
type CreateResult struct {
	ID       string   `json:"id"`
	Parts    []string `json:"parts"`
	Manifest string   `json:"manifest"` // OUT.manifest.json, for a later --since
	Size     int64    `json:"size"`
	Repos    int      `json:"repos"`
	Files    int      `json:"files"`
	Images   int      `json:"images"`
	Blobs    int      `json:"blobs"`
}

// blobSource is where create reads a blob from.
type blobSource struct {
	size int64
	open func() (io.ReadCloser, error)
}

// CreateBundle writes a bundle of the named published repos, the folders'
// files and the images. Repos are read under their locks, so a sync cannot
// swap a tree away underneath. Nothing is left under Out's names unless the
// whole bundle was written.
func (m *Mirror) CreateBundle(ctx context.Context, opts CreateOptions) (CreateResult, error) {
	var res CreateResult
	if opts.Out == "" {
		return res, errors.New("no --out: name the bundle file to write")
	}
	if len(opts.Repos)+len(opts.Files)+len(opts.Images) == 0 {
		return res, errors.New("nothing to bundle: give --repo, --files, --image or --image-list")
	}
	bm := &BundleManifest{Format: BundleFormat, Created: time.Now().UTC().Truncate(time.Second)}
	srcs := map[string]blobSource{}
	need := map[string]bool{} // blobs the base does not cover

	// What the base bundle's host has.
	baseRepo, baseFile, baseImage := map[string]bool{}, map[string]bool{}, map[string]bool{}
	if opts.Since != "" {
		base, id, err := ReadBundleManifest(opts.Since)
		if err != nil {
			return res, fmt.Errorf("--since: %w", err)
		}
		bm.Base, bm.BaseCreated = id, base.Created
		for _, r := range base.Repos {
			for _, f := range r.Files {
				baseRepo[r.Name+"\x00"+f.Digest] = true
			}
		}
		for _, f := range base.Files {
			baseFile[f.Path+"\x00"+f.Digest] = true
		}
		for _, im := range base.Images {
			baseImage[im.Name+"\x00"+im.Digest] = true
		}
	}

	// Repos: the published tree of each, read under its lock.
	cfg := m.config()
	for _, n := range opts.Repos {
		r, ok := cfg.repo(n)
		if !ok {
			return res, fmt.Errorf("%w %q in the config: bundle a repo this instance mirrors or indexes", ErrUnknownRepo, n)
		}
		st := repoStore(m.deps.DataDir, n)
		unlock, err := st.lockWait(ctx)
		if err != nil {
			return res, fmt.Errorf("repo %s: %w", n, err)
		}
		defer unlock()
		cur, err := st.current()
		if err != nil {
			return res, fmt.Errorf("repo %s: %w", n, err)
		}
		if cur == "" {
			return res, fmt.Errorf("repo %s has nothing published: run `airgapd mirror sync %s` (or `mirror index`) first", n, n)
		}
		br := BundleRepo{Name: n, Revision: st.readState().Revision}
		add := func(root, prefix string, skipRepodata bool) error {
			return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(root, p)
				rel = filepath.ToSlash(rel)
				if d.IsDir() {
					if skipRepodata && rel == "repodata" {
						return filepath.SkipDir
					}
					return nil
				}
				if !d.Type().IsRegular() {
					return nil
				}
				f, err := fileSource(p, srcs)
				if err != nil {
					return fmt.Errorf("repo %s: %w", n, err)
				}
				f.Path = prefix + rel
				br.Files = append(br.Files, f)
				if !baseRepo[n+"\x00"+f.Digest] {
					need[f.Digest] = true
				}
				return nil
			})
		}
		if r.Mirrored() {
			err = add(cur, "", false)
		} else if err = add(r.Path, "", true); err == nil {
			// A local repo: its folder as it is, and the published index.
			err = add(filepath.Join(cur, "repodata"), "repodata/", false)
		}
		if err != nil {
			return res, err
		}
		bm.Repos = append(bm.Repos, br)
	}

	// Files: each folder's contents at the root of the files folder.
	seen := map[string]string{}
	for _, dir := range opts.Files {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			fi, err := os.Stat(p) // symlinks to files are followed
			if err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(dir, p)
			rel = filepath.ToSlash(rel)
			f, err := fileSource(p, srcs)
			if err != nil {
				return err
			}
			f.Path = rel
			if prev, ok := seen[rel]; ok {
				if prev != f.Digest {
					return fmt.Errorf("two --files folders hold different files at %s: bundle them separately", rel)
				}
				return nil
			}
			seen[rel] = f.Digest
			bm.Files = append(bm.Files, f)
			if !baseFile[f.Path+"\x00"+f.Digest] {
				need[f.Digest] = true
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("--files %s: %w", dir, err)
		}
	}

	// Images, byte for byte.
	for _, ref := range opts.Images {
		im, err := addImage(ctx, ref, opts.Upstreams, srcs, baseImage)
		if err != nil {
			return res, err
		}
		if !im.InBase {
			for _, b := range im.Blobs {
				need[b] = true
			}
		}
		bm.Images = append(bm.Images, im)
	}

	// The blobs to carry, in the order items name them.
	order := func(d string) {
		if need[d] {
			bm.Blobs = append(bm.Blobs, BundleBlob{Digest: d, Size: srcs[d].size})
			delete(need, d)
		}
	}
	for _, r := range bm.Repos {
		for _, f := range r.Files {
			order(f.Digest)
		}
	}
	for _, f := range bm.Files {
		order(f.Digest)
	}
	for _, im := range bm.Images {
		for _, b := range im.Blobs {
			order(b)
		}
	}
	if bm.Blobs == nil {
		bm.Blobs = []BundleBlob{}
	}

	raw, total, err := layoutManifest(bm, opts.SplitSize)
	if err != nil {
		return res, err
	}
	res = CreateResult{ID: bundleID(raw), Size: total, Repos: len(bm.Repos), Files: len(bm.Files), Images: len(bm.Images), Blobs: len(bm.Blobs)}
	res.Parts, err = writeBundle(ctx, opts, bm, raw, total, srcs)
	if err != nil {
		return res, err
	}
	res.Manifest = opts.Out + ".manifest.json"
	if err := writeFileAtomic(res.Manifest, raw); err != nil {
		return res, fmt.Errorf("write %s: %w", res.Manifest, err)
	}
	m.log.Info("bundle written", "out", opts.Out, "id", res.ID, "bytes", total, "parts", len(res.Parts))
	return res, nil
}

// fileSource hashes the file at p and records it as a blob source.
func fileSource(p string, srcs map[string]blobSource) (BundleFile, error) {
	f, err := os.Open(p)
	if err != nil {
		return BundleFile{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return BundleFile{}, fmt.Errorf("read %s: %w", p, err)
	}
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if _, ok := srcs[d]; !ok {
		srcs[d] = blobSource{size: n, open: func() (io.ReadCloser, error) { return os.Open(p) }}
	}
	return BundleFile{Digest: d, Size: n}, nil
}

// imageName is the upstream-qualified name a reference is stored under,
// with Docker Hub spelled docker.io.
func imageName(ref name.Tag) string {
	reg := ref.RegistryStr()
	if reg == name.DefaultRegistry || reg == "registry-1.docker.io" {
		reg = "docker.io"
	}
	return reg + "/" + ref.RepositoryStr() + ":" + ref.TagStr()
}

// addImage fetches ref's manifest (or index) and describes every blob it is
// made of; the blobs are read when the bundle is written.
func addImage(ctx context.Context, ref string, ups map[string]BundleUpstream, srcs map[string]blobSource, base map[string]bool) (BundleImage, error) {
	var im BundleImage
	pin := ""
	if r, d, ok := strings.Cut(ref, "@"); ok {
		ref, pin = r, d
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return im, fmt.Errorf("image %q: %w (write registry/repository:tag, optionally @sha256:… to pin it)", ref, err)
	}
	im.Name = imageName(tag)
	src := tag
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
	host, _, _ := strings.Cut(im.Name, "/")
	if up, ok := ups[host]; ok && up.URL != "" {
		u, err := url.Parse(up.URL)
		if err != nil || u.Host == "" {
			return im, fmt.Errorf("image %s: registry.mirrors url %q is not a URL", im.Name, up.URL)
		}
		var nopts []name.Option
		if u.Scheme == "http" {
			nopts = append(nopts, name.Insecure)
		}
		repo := strings.Trim(u.Path, "/")
		if repo != "" {
			repo += "/"
		}
		src, err = name.NewTag(u.Host+"/"+repo+tag.RepositoryStr()+":"+tag.TagStr(), nopts...)
		if err != nil {
			return im, fmt.Errorf("image %s via %s: %w", im.Name, up.URL, err)
		}
		if up.Username != "" {
			opts[1] = remote.WithAuth(&authn.Basic{Username: up.Username, Password: up.Password})
		}
	}
	desc, err := remote.Get(src, opts...)
	if err != nil {
		return im, fmt.Errorf("image %s: fetch from %s: %w", im.Name, src.RegistryStr(), err)
	}
	im.Digest, im.MediaType, im.Size = desc.Digest.String(), string(desc.MediaType), desc.Size
	if pin != "" && pin != im.Digest {
		return im, fmt.Errorf("image %s is %s now, not the pinned %s", im.Name, im.Digest, pin)
	}
	if base[im.Name+"\x00"+im.Digest] {
		im.InBase = true
		return im, nil
	}
	addBytes := func(d v1.Hash, b []byte) {
		im.Blobs = append(im.Blobs, d.String())
		if _, ok := srcs[d.String()]; !ok {
			srcs[d.String()] = blobSource{size: int64(len(b)), open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }}
		}
	}
	var addImg func(img v1.Image) error
	addImg = func(img v1.Image) error {
		rawMf, err := img.RawManifest()
		if err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		addBytes(d, rawMf)
		cfgName, err := img.ConfigName()
		if err != nil {
			return err
		}
		rawCfg, err := img.RawConfigFile()
		if err != nil {
			return err
		}
		addBytes(cfgName, rawCfg)
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			ld, err := l.Digest()
			if err != nil {
				return err
			}
			size, err := l.Size()
			if err != nil {
				return err
			}
			im.Blobs = append(im.Blobs, ld.String())
			if _, ok := srcs[ld.String()]; !ok {
				srcs[ld.String()] = blobSource{size: size, open: l.Compressed}
			}
		}
		return nil
	}
	var addIdx func(idx v1.ImageIndex) error
	addIdx = func(idx v1.ImageIndex) error {
		rawIdx, err := idx.RawManifest()
		if err != nil {
			return err
		}
		d, err := idx.Digest()
		if err != nil {
			return err
		}
		addBytes(d, rawIdx)
		mf, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, c := range mf.Manifests {
			switch {
			case c.MediaType.IsIndex():
				child, err := idx.ImageIndex(c.Digest)
				if err != nil {
					return err
				}
				if err := addIdx(child); err != nil {
					return err
				}
			default:
				child, err := idx.Image(c.Digest)
				if err != nil {
					return err
				}
				if err := addImg(child); err != nil {
					return fmt.Errorf("manifest %s: %w", c.Digest, err)
				}
			}
		}
		return nil
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err == nil {
			err = addIdx(idx)
		}
		if err != nil {
			return im, fmt.Errorf("image %s: %w", im.Name, err)
		}
	} else {
		img, err := desc.Image()
		if err == nil {
			err = addImg(img)
		}
		if err != nil {
			return im, fmt.Errorf("image %s: %w", im.Name, err)
		}
	}
	return im, nil
}

// layoutManifest renders the manifest and works out the tar's size, and
// with a split size the number of parts (which the manifest states, so
// this settles on a fixed point: the count changes the manifest's length
// by a few bytes at most).
func layoutManifest(bm *BundleManifest, splitSize int64) ([]byte, int64, error) {
	var blobBytes int64
	for _, b := range bm.Blobs {
		n, err := entrySize(tarHeader(blobEntry(b.Digest), b.Size, bm.Created))
		if err != nil {
			return nil, 0, err
		}
		blobBytes += n
	}
	for range 10 {
		raw, err := json.MarshalIndent(bm, "", "  ")
		if err != nil {
			return nil, 0, err
		}
		raw = append(raw, '\n')
		n, err := entrySize(tarHeader(bundleManifestName, int64(len(raw)), bm.Created))
		if err != nil {
			return nil, 0, err
		}
		total := n + blobBytes + 1024 // two zero blocks end a tar
		if splitSize <= 0 || total <= splitSize {
			if bm.Split == nil {
				return raw, total, nil
			}
			bm.Split = nil
			continue
		}
		want := &BundleSplit{PartSize: splitSize, Parts: int((total + splitSize - 1) / splitSize), Size: total}
		if bm.Split != nil && *bm.Split == *want {
			return raw, total, nil
		}
		bm.Split = want
	}
	return nil, 0, errors.New("the bundle's size does not settle: try another --split-size")
}

// writeBundle writes the tar (into parts when split) under temporary
// names, then renames them into place.
func writeBundle(ctx context.Context, opts CreateOptions, bm *BundleManifest, raw []byte, total int64, srcs map[string]blobSource) ([]string, error) {
	pw := &partWriter{out: opts.Out, partSize: total, single: bm.Split == nil}
	if bm.Split != nil {
		pw.partSize = bm.Split.PartSize
	}
	if err := os.MkdirAll(filepath.Dir(opts.Out), 0o755); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			pw.abort()
		}
	}()
	bw := bufio.NewWriterSize(pw, 1<<20)
	tw := tar.NewWriter(bw)
	var done int64
	if err := tw.WriteHeader(tarHeader(bundleManifestName, int64(len(raw)), bm.Created)); err != nil {
		return nil, err
	}
	if _, err := tw.Write(raw); err != nil {
		return nil, err
	}
	for _, b := range bm.Blobs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		src := srcs[b.Digest]
		if err := tw.WriteHeader(tarHeader(blobEntry(b.Digest), b.Size, bm.Created)); err != nil {
			return nil, err
		}
		rc, err := src.open()
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		h := sha256.New()
		n, err := io.Copy(tw, io.TeeReader(rc, h))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != b.Digest || n != b.Size {
			return nil, fmt.Errorf("blob %s changed while it was bundled (now %s, %d bytes): run create again", b.Digest, got, n)
		}
		done += n
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if pw.written != total {
		return nil, fmt.Errorf("wrote %d bytes, planned %d: this is a bug in airgapd", pw.written, total)
	}
	names, err := pw.finish()
	if err != nil {
		return nil, err
	}
	ok = true
	return names, nil
}

// partWriter writes a stream into OUT (single) or OUT.part001, … of
// partSize bytes each, all first as NAME.tmp.
type partWriter struct {
	out      string
	partSize int64
	single   bool
	cur      *os.File
	inPart   int64
	written  int64
	names    []string
}

func (w *partWriter) name(n int) string {
	if w.single {
		return w.out
	}
	return partName(w.out, n)
}

func (w *partWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		if w.cur == nil || w.inPart == w.partSize {
			if w.cur != nil {
				if err := w.closeCur(); err != nil {
					return written, err
				}
			}
			n := w.name(len(w.names) + 1)
			f, err := os.OpenFile(n+".tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
			if err != nil {
				return written, err
			}
			w.cur, w.inPart = f, 0
			w.names = append(w.names, n)
		}
		chunk := p[:min(int64(len(p)), w.partSize-w.inPart)]
		n, err := w.cur.Write(chunk)
		written += n
		w.inPart += int64(n)
		w.written += int64(n)
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func (w *partWriter) closeCur() error {
	if err := w.cur.Sync(); err != nil {
		w.cur.Close()
		return err
	}
	err := w.cur.Close()
	w.cur = nil
	return err
}

func (w *partWriter) finish() ([]string, error) {
	if w.cur != nil {
		if err := w.closeCur(); err != nil {
			return nil, err
		}
	}
	// Parts of an older bundle under the same name would confuse import.
	if !w.single {
		os.Remove(w.out)
		for i := len(w.names) + 1; ; i++ {
			if os.Remove(partName(w.out, i)) != nil {
				break
			}
		}
	} else {
		for i := 1; ; i++ {
			if os.Remove(partName(w.out, i)) != nil {
				break
			}
		}
	}
	for _, n := range w.names {
		if err := os.Rename(n+".tmp", n); err != nil {
			return nil, err
		}
	}
	syncDir(filepath.Dir(w.out))
	return slices.Clone(w.names), nil
}

func (w *partWriter) abort() {
	if w.cur != nil {
		w.cur.Close()
	}
	for _, n := range w.names {
		os.Remove(n + ".tmp")
	}
}

// writeFileAtomic writes b to p through a temporary file and a rename.
func writeFileAtomic(p string, b []byte) error {
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}
