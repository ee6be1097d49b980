package bundle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/airgapd/airgapd/internal/atomicfile"
	"github.com/airgapd/airgapd/mirror"
	"github.com/airgapd/airgapd/mirror/rpm"
)

// Upstream is where an image registry is really reached from the
// bastion (registry.mirrors' url and credentials): an image named
// docker.io/library/nginx:1.25 is fetched from URL when the registry
// docker.io has an entry, and keeps its name in the bundle.
type Upstream struct {
	URL      string
	Username string
	Password string
}

// CreateOptions are `airgapd bundle create`'s inputs.
type CreateOptions struct {
	Repos []string // published repos of this instance, by name
	// Trees are the formats beside RPM to carry: format (apt, pypi,
	// goproxy) → the names of its trees (none: every tree it has).
	Trees  map[string][]string
	Files  []string // folders; their contents go to the root of the files folder
	Images []string // image references, with a tag
	Out    string
	// SplitSize > 0 cuts the bundle into parts of this many bytes when it
	// is bigger.
	SplitSize int64
	// Since is an older bundle's manifest (OUT.manifest.json or the
	// bundle itself): blobs it carried are left out.
	Since string
	// Platforms (os/arch[/variant], comma lists allowed) filters
	// multi-arch indexes: the index is carried byte for byte, with only
	// these platforms' manifests and blobs. Empty keeps indexes whole.
	Platforms []string
	// Compress is "zstd" for a zstd-compressed tar, "" or "none" for a
	// plain one.
	Compress string
	// Upstreams maps a registry host to where it is reached.
	Upstreams map[string]Upstream
	// FromRegistry, when set, is this instance's own registry: every image
	// is read from it, where ns= pulls cached it and imports stored it
	// under its upstream-qualified name, and not from its upstream.
	FromRegistry *LocalRegistry
	// Charts are Helm charts of this instance's registry (its charts/
	// namespace, read from ChartsFrom) to carry: NAME (the newest version
	// that is no pre-release) or NAME@RANGE; AllCharts carries every
	// version of every chart there. Each is carried as the OCI artifact it
	// is (media types and digests unchanged) and imported under the same
	// charts/NAME:VERSION.
	Charts     []string
	AllCharts  bool
	ChartsFrom *LocalRegistry
	// Progress, when set, is called as bytes are written (every MiB or so)
	// and after each blob.
	Progress func(CreateProgress)
}

// LocalRegistry is how create reaches this instance's own registry.
type LocalRegistry struct {
	URL   string // https://127.0.0.1:5000 (or http:// with tls: off)
	CAPEM []byte // the appliance CA, trusted beside the system's roots
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

// fileSource hashes the file at p and records it as a blob source.
func fileSource(p string, srcs map[string]blobSource) (File, error) {
	f, err := os.Open(p)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return File{}, fmt.Errorf("read %s: %w", p, err)
	}
	d := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if _, ok := srcs[d]; !ok {
		srcs[d] = blobSource{size: n, open: func() (io.ReadCloser, error) { return os.Open(p) }}
	}
	return File{Digest: d, Size: n}, nil
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

// plan is a bundle being put together: the manifest, where each blob is
// read from, which blobs it must carry, and what the base bundle's host
// has already.
type plan struct {
	bm   *Manifest
	srcs map[string]blobSource
	need map[string]bool // blobs the base does not cover
	// What the base bundle's host has: repo and file items, images, and
	// image blobs (the registry keeps one store for every repository, so a
	// layer is left out whatever image it is in).
	baseRepo, baseFile, baseImage, baseImageBlob map[string]bool
	release                                      []func()        // the repo locks held until the bundle is written
	listed                                       map[string]bool // name\x00digest of the images added
}

// Create writes a bundle of the named published repos, the folders'
// files and the images. Repos are read under their locks, so a sync cannot
// swap a tree away underneath. Nothing is left under Out's names unless the
// whole bundle was written.
func (c *Carrier) Create(ctx context.Context, opts CreateOptions) (CreateResult, error) {
	var res CreateResult
	if err := checkCreate(opts); err != nil {
		return res, err
	}
	platforms, err := parsePlatforms(opts.Platforms)
	if err != nil {
		return res, err
	}
	p := &plan{bm: &Manifest{Format: Format, Created: time.Now().UTC().Truncate(time.Second)}, srcs: map[string]blobSource{}, need: map[string]bool{},
		baseRepo: map[string]bool{}, baseFile: map[string]bool{}, baseImage: map[string]bool{}, baseImageBlob: map[string]bool{}}
	defer p.releaseRepos()
	if err := p.readBase(opts.Since); err != nil {
		return res, err
	}
	if err := c.addRepos(ctx, p, opts.Repos); err != nil {
		return res, err
	}
	if err := c.addFormats(ctx, p, opts.Trees); err != nil {
		return res, err
	}
	if err := p.addFiles(opts.Files); err != nil {
		return res, err
	}
	ic := &imageCollector{ctx: ctx, log: c.log, ups: opts.Upstreams, local: opts.FromRegistry, srcs: p.srcs, base: p.baseImage, platforms: platforms, manifests: map[string]bool{}}
	if err := p.addImages(ic, opts.Images); err != nil {
		return res, err
	}
	if err := p.addCharts(ic, opts); err != nil {
		return res, err
	}
	p.orderBlobs()

	bm := p.bm
	var raw []byte
	var total int64
	var parts []string
	if opts.Compress == "zstd" {
		raw, total, parts, err = writeZstdBundle(ctx, opts, bm, p.srcs)
	} else if raw, total, err = layoutManifest(bm, opts.SplitSize); err == nil {
		parts, err = writeBundle(ctx, opts, bm, raw, total, p.srcs)
	}
	if err != nil {
		return res, err
	}
	res = CreateResult{ID: bundleID(raw), Parts: parts, Size: total, Repos: len(bm.Repos), Files: len(bm.Files), Images: len(bm.Images), Blobs: len(bm.Blobs)}
	res.Manifest = opts.Out + ".manifest.json"
	if err := atomicfile.WriteFile(res.Manifest, raw, 0o644); err != nil {
		return res, err
	}
	c.log.Info("bundle written", "out", opts.Out, "id", res.ID, "bytes", total, "parts", len(res.Parts))
	return res, nil
}

// checkCreate refuses options create cannot act on.
func checkCreate(opts CreateOptions) error {
	if opts.Out == "" {
		return errors.New("no --out: name the bundle file to write")
	}
	if len(opts.Repos)+len(opts.Files)+len(opts.Images)+len(opts.Trees)+len(opts.Charts) == 0 && !opts.AllCharts {
		return errors.New("nothing to bundle: give --repo, --apt, --pypi, --goproxy, --files, --image, --image-list, --chart or --charts")
	}
	if (len(opts.Charts) > 0 || opts.AllCharts) && opts.ChartsFrom == nil {
		return errors.New("--chart and --charts read this instance's registry: none is reachable (a bug)")
	}
	switch opts.Compress {
	case "", "none", "zstd":
		return nil
	}
	return fmt.Errorf("--compress %q: write zstd or none", opts.Compress)
}

func (p *plan) releaseRepos() {
	for _, f := range p.release {
		f()
	}
}

// readBase reads the --since manifest: what its host has is not carried.
func (p *plan) readBase(since string) error {
	if since == "" {
		return nil
	}
	base, id, err := ReadManifest(since)
	if err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	p.bm.Base, p.bm.BaseCreated = id, base.Created
	for _, r := range base.Repos {
		for _, f := range r.Files {
			p.baseRepo[r.Format+"\x00"+r.Name+"\x00"+f.Digest] = true
		}
	}
	for _, f := range base.Files {
		p.baseFile[f.Path+"\x00"+f.Digest] = true
	}
	for _, im := range base.Images {
		p.baseImage[im.Name+"\x00"+im.Digest] = true
		for _, b := range im.Blobs {
			p.baseImageBlob[b] = true
		}
	}
	return nil
}

// addRepos adds the published tree of each repo, read under its lock
// (held until the bundle is written).
func (c *Carrier) addRepos(ctx context.Context, p *plan, names []string) error {
	cfg := c.repos.Config()
	for _, n := range names {
		if _, ok := cfg.Lookup(n); !ok {
			return fmt.Errorf("%w %q in the config: bundle a repo this instance mirrors or indexes", rpm.ErrUnknownRepo, n)
		}
		tree, err := c.repos.Published(ctx, n)
		switch {
		case errors.Is(err, rpm.ErrNotPublished):
			return fmt.Errorf("repo %s has nothing published: run `airgapd mirror sync %s` (or `mirror index`) first, or give bundle create --sync", n, n)
		case err != nil:
			return fmt.Errorf("repo %s: %w", n, err)
		}
		if err := p.addTree("", n, tree); err != nil {
			return err
		}
	}
	return nil
}

// addTree adds one published tree (its lock held until the bundle is
// written) of format ("" for RPM).
func (p *plan) addTree(format, name string, tree mirror.Published) error {
	p.release = append(p.release, tree.Release)
	br := Repo{Format: format, Name: name, Revision: tree.Revision}
	for _, pf := range tree.Files {
		f, err := fileSource(pf.Source, p.srcs)
		if err != nil {
			return fmt.Errorf("%s: %w", itemName(br), err)
		}
		f.Path = pf.Path
		br.Files = append(br.Files, f)
		if !p.baseRepo[format+"\x00"+name+"\x00"+f.Digest] {
			p.need[f.Digest] = true
		}
	}
	p.bm.Repos = append(p.bm.Repos, br)
	return nil
}

// addFiles adds each folder's contents, at the root of the files folder.
func (p *plan) addFiles(dirs []string) error {
	seen := map[string]string{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			fi, err := os.Stat(path) // symlinks to files are followed
			if err != nil || !fi.Mode().IsRegular() {
				return nil
			}
			rel, _ := filepath.Rel(dir, path)
			rel = filepath.ToSlash(rel)
			f, err := fileSource(path, p.srcs)
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
			p.bm.Files = append(p.bm.Files, f)
			if !p.baseFile[f.Path+"\x00"+f.Digest] {
				p.need[f.Digest] = true
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("--files %s: %w", dir, err)
		}
	}
	return nil
}

// addImages adds the images, byte for byte, with what is attached to them.
func (p *plan) addImages(ic *imageCollector, refs []string) error {
	for _, ref := range refs {
		items, err := ic.collect(ref)
		if err != nil {
			return err
		}
		p.addItems(items)
	}
	return nil
}

// addItems adds images (one and what is attached to it), each once.
func (p *plan) addItems(items []Image) {
	if p.listed == nil {
		p.listed = map[string]bool{}
	}
	for _, im := range items {
		if p.listed[im.Name+"\x00"+im.Digest] {
			continue // a signature shared by two references
		}
		p.listed[im.Name+"\x00"+im.Digest] = true
		if !im.InBase {
			for _, b := range im.Blobs {
				if !p.baseImageBlob[b] {
					p.need[b] = true
				}
			}
		}
		p.bm.Images = append(p.bm.Images, im)
	}
}

// orderBlobs lists the blobs to carry, in the order items name them.
func (p *plan) orderBlobs() {
	bm := p.bm
	order := func(d string) {
		if p.need[d] {
			bm.Blobs = append(bm.Blobs, Blob{Digest: d, Size: p.srcs[d].size})
			delete(p.need, d)
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
		bm.Blobs = []Blob{}
	}
}
