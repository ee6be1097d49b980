package rpm

import (
	"github.com/airgapd/airgapd/internal/atomicfile"

	"github.com/airgapd/airgapd/mirror"

	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/klauspost/compress/zstd"
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
	// Platforms (os/arch[/variant], comma lists allowed) filters
	// multi-arch indexes: the index is carried byte for byte, with only
	// these platforms' manifests and blobs. Empty keeps indexes whole.
	Platforms []string
	// Compress is "zstd" for a zstd-compressed tar, "" or "none" for a
	// plain one.
	Compress string
	// Upstreams maps a registry host to where it is reached.
	Upstreams map[string]BundleUpstream
	// FromRegistry, when set, is this instance's own registry: every image
	// is read from it, where ns= pulls cached it and imports stored it
	// under its upstream-qualified name, and not from its upstream.
	FromRegistry *LocalRegistry
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
	switch opts.Compress {
	case "", "none", "zstd":
	default:
		return res, fmt.Errorf("--compress %q: write zstd or none", opts.Compress)
	}
	platforms, err := parsePlatforms(opts.Platforms)
	if err != nil {
		return res, err
	}
	bm := &BundleManifest{Format: BundleFormat, Created: time.Now().UTC().Truncate(time.Second)}
	srcs := map[string]blobSource{}
	need := map[string]bool{} // blobs the base does not cover

	// What the base bundle's host has.
	baseRepo, baseFile, baseImage := map[string]bool{}, map[string]bool{}, map[string]bool{}
	// Image blobs the base's host has: the registry keeps one store for
	// every repository, so a layer is left out whatever image it is in.
	baseImageBlob := map[string]bool{}
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
			for _, b := range im.Blobs {
				baseImageBlob[b] = true
			}
		}
	}

	// Repos: the published tree of each, read under its lock.
	cfg := m.config()
	for _, n := range opts.Repos {
		r, ok := cfg.repo(n)
		if !ok {
			return res, fmt.Errorf("%w %q in the config: bundle a repo this instance mirrors or indexes", ErrUnknownRepo, n)
		}
		st := mirror.RepoStore(m.deps.DataDir, n)
		unlock, err := st.LockWait(ctx)
		if err != nil {
			return res, fmt.Errorf("repo %s: %w", n, err)
		}
		defer unlock()
		cur, err := st.Current()
		if err != nil {
			return res, fmt.Errorf("repo %s: %w", n, err)
		}
		if cur == "" {
			return res, fmt.Errorf("repo %s has nothing published: run `airgapd mirror sync %s` (or `mirror index`) first, or give bundle create --sync", n, n)
		}
		br := BundleRepo{Name: n, Revision: readState(st).Revision}
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

	// Images, byte for byte, with what is attached to them.
	ic := &imageCollector{ctx: ctx, log: m.log, ups: opts.Upstreams, local: opts.FromRegistry, srcs: srcs, base: baseImage, platforms: platforms, manifests: map[string]bool{}}
	listed := map[string]bool{}
	for _, ref := range opts.Images {
		items, err := ic.collect(ref)
		if err != nil {
			return res, err
		}
		for _, im := range items {
			if listed[im.Name+"\x00"+im.Digest] {
				continue // a signature shared by two references
			}
			listed[im.Name+"\x00"+im.Digest] = true
			if !im.InBase {
				for _, b := range im.Blobs {
					if !baseImageBlob[b] {
						need[b] = true
					}
				}
			}
			bm.Images = append(bm.Images, im)
		}
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

	var raw []byte
	var total int64
	var parts []string
	if opts.Compress == "zstd" {
		raw, total, parts, err = writeZstdBundle(ctx, opts, bm, srcs)
	} else {
		if raw, total, err = layoutManifest(bm, opts.SplitSize); err == nil {
			parts, err = writeBundle(ctx, opts, bm, raw, total, srcs)
		}
	}
	if err != nil {
		return res, err
	}
	res = CreateResult{ID: bundleID(raw), Parts: parts, Size: total, Repos: len(bm.Repos), Files: len(bm.Files), Images: len(bm.Images), Blobs: len(bm.Blobs)}
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
		if splitSize > 0 && total > splitSize && n > splitSize {
			return nil, 0, fmt.Errorf("the manifest takes %d bytes and must fit in the first part: give a --split-size of at least %d", n, n)
		}
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
	if err := tw.WriteHeader(tarHeader(bundleManifestName, int64(len(raw)), bm.Created)); err != nil {
		return nil, err
	}
	if _, err := tw.Write(raw); err != nil {
		return nil, err
	}
	if err := writeBlobEntries(ctx, tw, bm, srcs, func(done int64, blobs int) {
		if opts.Progress != nil {
			opts.Progress(CreateProgress{BytesDone: done, Bytes: total, BlobsDone: blobs, Blobs: len(bm.Blobs)})
		}
	}); err != nil {
		return nil, err
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

// CreateProgress is a bundle being written, for the progress bar.
type CreateProgress struct {
	BytesDone int64 // blob bytes written so far
	Bytes     int64 // of this many
	BlobsDone int   // blobs written whole
	Blobs     int
}

// writeBlobEntries writes each blob the manifest lists as a tar entry,
// checking it is still the blob it was when listed. progress hears the
// bytes written so far (within a big blob too) and the blobs done.
func writeBlobEntries(ctx context.Context, tw *tar.Writer, bm *BundleManifest, srcs map[string]blobSource, progress func(done int64, blobs int)) error {
	var done int64
	for i, b := range bm.Blobs {
		if err := ctx.Err(); err != nil {
			return err
		}
		src := srcs[b.Digest]
		if err := tw.WriteHeader(tarHeader(blobEntry(b.Digest), b.Size, bm.Created)); err != nil {
			return err
		}
		rc, err := src.open()
		if err != nil {
			return fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		h := sha256.New()
		pw := &progressWriter{w: tw, report: func(k int64) { progress(done+k, i) }}
		n, err := io.Copy(pw, io.TeeReader(rc, h))
		rc.Close()
		if err != nil {
			return fmt.Errorf("blob %s: %w", b.Digest, err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != b.Digest || n != b.Size {
			return fmt.Errorf("blob %s changed while it was bundled (now %s, %d bytes): run create again", b.Digest, got, n)
		}
		done += n
		progress(done, i+1)
	}
	return nil
}

// progressWriter reports the bytes written through it at every MiB.
type progressWriter struct {
	w       io.Writer
	n, last int64
	report  func(n int64)
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.n += int64(n)
	if p.n-p.last >= 1<<20 {
		p.last = p.n
		p.report(p.n)
	}
	return n, err
}

// manifestRoomSlack is what the zstd manifest frame's room keeps beyond
// the first rendering, for the part count and size written at the end.
const manifestRoomSlack = 256

// writeZstdBundle writes the tar zstd-compressed into OUT or its parts.
// The manifest entry is a zstd frame of its own, padded with a skippable
// frame to a fixed room, and the blob entries and the tar's end follow in
// further frames: decoders read concatenated frames as one stream and skip
// skippable ones. The manifest states the parts and the compressed size,
// known only at the end, so the room is written twice: once with a guess,
// once with the numbers (its size does not depend on them).
func writeZstdBundle(ctx context.Context, opts CreateOptions, bm *BundleManifest, srcs map[string]blobSource) ([]byte, int64, []string, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, 0, nil, err
	}
	defer enc.Close()
	manifestFrame := func() ([]byte, []byte, error) {
		raw, err := json.MarshalIndent(bm, "", "  ")
		if err != nil {
			return nil, nil, err
		}
		raw = append(raw, '\n')
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		if err := tw.WriteHeader(tarHeader(bundleManifestName, int64(len(raw)), bm.Created)); err != nil {
			return nil, nil, err
		}
		if _, err := tw.Write(raw); err != nil {
			return nil, nil, err
		}
		if err := tw.Flush(); err != nil {
			return nil, nil, err
		}
		return raw, enc.EncodeAll(buf.Bytes(), nil), nil
	}
	if opts.SplitSize > 0 {
		bm.Split = &BundleSplit{PartSize: opts.SplitSize, Parts: 1 << 30, Size: 1 << 62} // as long as the numbers get
	}
	_, guess, err := manifestFrame()
	if err != nil {
		return nil, 0, nil, err
	}
	room := int64(len(guess)) + manifestRoomSlack
	if opts.SplitSize > 0 && room > opts.SplitSize {
		return nil, 0, nil, fmt.Errorf("the compressed manifest takes %d bytes and must fit in the first part: give a --split-size of at least %d", room, room)
	}

	partSize := opts.SplitSize
	if partSize <= 0 {
		partSize = math.MaxInt64
	}
	pw := &partWriter{out: opts.Out, partSize: partSize, single: opts.SplitSize <= 0}
	if err := os.MkdirAll(filepath.Dir(opts.Out), 0o755); err != nil {
		return nil, 0, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			pw.abort()
		}
	}()
	bw := bufio.NewWriterSize(pw, 1<<20)
	if _, err := bw.Write(make([]byte, room)); err != nil {
		return nil, 0, nil, err
	}
	zw, err := zstd.NewWriter(bw, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, 0, nil, err
	}
	tw := tar.NewWriter(zw)
	var blobBytes int64
	for _, b := range bm.Blobs {
		blobBytes += b.Size
	}
	if err := writeBlobEntries(ctx, tw, bm, srcs, func(done int64, blobs int) {
		if opts.Progress != nil {
			opts.Progress(CreateProgress{BytesDone: done, Bytes: blobBytes, BlobsDone: blobs, Blobs: len(bm.Blobs)})
		}
	}); err != nil {
		zw.Close()
		return nil, 0, nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, 0, nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, 0, nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, 0, nil, err
	}
	if pw.cur != nil {
		if err := pw.closeCur(); err != nil {
			return nil, 0, nil, err
		}
	}

	total := pw.written
	bm.Split = nil
	if opts.SplitSize > 0 && total > opts.SplitSize {
		bm.Split = &BundleSplit{PartSize: opts.SplitSize, Parts: int((total + opts.SplitSize - 1) / opts.SplitSize), Size: total}
	}
	raw, frame, err := manifestFrame()
	if err != nil {
		return nil, 0, nil, err
	}
	pad := room - int64(len(frame)) - 8 // a skippable frame's magic and length
	if pad < 0 {
		return nil, 0, nil, fmt.Errorf("the compressed manifest grew past its room (%d > %d bytes): this is a bug in airgapd", len(frame), room)
	}
	head := make([]byte, room)
	copy(head, frame)
	binary.LittleEndian.PutUint32(head[len(frame):], 0x184D2A50)
	binary.LittleEndian.PutUint32(head[len(frame)+4:], uint32(pad))
	f, err := os.OpenFile(pw.names[0]+".tmp", os.O_WRONLY, 0)
	if err != nil {
		return nil, 0, nil, err
	}
	if _, err := f.WriteAt(head, 0); err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if err := f.Close(); err != nil {
		return nil, 0, nil, err
	}
	if bm.Split == nil && !pw.single {
		// Asked to split, but it fits in one part: one file, as plain
		// bundles are then.
		if err := os.Rename(pw.names[0]+".tmp", opts.Out+".tmp"); err != nil {
			return nil, 0, nil, err
		}
		pw.names, pw.single = []string{opts.Out}, true
	}
	names, err := pw.finish()
	if err != nil {
		return nil, 0, nil, err
	}
	ok = true
	return raw, total, names, nil
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
	atomicfile.SyncDir(filepath.Dir(w.out))
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
