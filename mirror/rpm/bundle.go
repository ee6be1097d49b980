package rpm

import (
	"github.com/airgapd/airgapd/mirror"

	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
)

// A bundle carries repos, files and images across the air gap in one
// verified format (docs/BUNDLE.md): a tar whose first entry is the manifest
// (airgapd-bundle.json) and whose other entries are content-addressed
// blobs (blobs/sha256/HEX). The manifest lists every item — each repo's
// files, each file, each image with its digest — and the blobs each item
// is made of; the tar holds every blob once. A split bundle is the same
// tar cut into parts of part_size bytes (OUT.part001, OUT.part002, …):
// `cat OUT.part*` gives the whole tar back.

// BundleFormat is the manifest's format field; import refuses others.
const BundleFormat = "airgapd-bundle/v1"

// bundleManifestName is the tar's first entry.
const bundleManifestName = "airgapd-bundle.json"

// maxBundleManifest bounds the manifest an import reads.
const maxBundleManifest = 256 << 20

// BundleManifest is airgapd-bundle.json.
type BundleManifest struct {
	Format  string    `json:"format"`
	Created time.Time `json:"created"`
	// Base is the id (sha256:HEX of its manifest) of the bundle this one
	// was made --since: blobs that bundle carried are not carried again,
	// and import requires it to have been imported first.
	Base        string    `json:"base,omitempty"`
	BaseCreated time.Time `json:"base_created,omitzero"`
	// Split is set when the tar is cut into parts.
	Split  *BundleSplit  `json:"split,omitempty"`
	Repos  []BundleRepo  `json:"repos,omitempty"`
	Files  []BundleFile  `json:"files,omitempty"`
	Images []BundleImage `json:"images,omitempty"`
	// Blobs is what the tar holds after the manifest, in order.
	Blobs []BundleBlob `json:"blobs"`
}

// BundleSplit says how the tar was cut: Parts parts of PartSize bytes (the
// last one shorter), Size bytes in all.
type BundleSplit struct {
	PartSize int64 `json:"part_size"`
	Parts    int   `json:"parts"`
	Size     int64 `json:"size"`
}

// BundleRepo is one published RPM repo: every file of its tree.
type BundleRepo struct {
	Name     string       `json:"name"`
	Revision string       `json:"revision,omitempty"`
	Files    []BundleFile `json:"files"`
}

// BundleFile is a file at Path (slash-separated, relative) with the
// sha256 of its content.
type BundleFile struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// BundleImage is an image or multi-arch index under its upstream-qualified
// name (registry.k8s.io/pause:3.10), with every blob it is made of (child
// manifests, configs, layers). InBase: the base bundle carried it with the
// same digest, so this bundle does not.
type BundleImage struct {
	Name      string   `json:"name"`
	Digest    string   `json:"digest"`
	MediaType string   `json:"media_type"`
	Size      int64    `json:"size"`
	Blobs     []string `json:"blobs"`
	InBase    bool     `json:"in_base,omitempty"`
	// Platforms is set when --platform left some of an index's manifests
	// out: the index is carried byte for byte, Blobs holds only these
	// platforms' manifests, configs and layers.
	Platforms []string `json:"platforms,omitempty"`
	// Subject is set on what is attached to another manifest of the
	// bundle: a cosign tag (Name ends :sha256-HEX.sig, .att or .sbom) or an
	// OCI referrer (Name is repository@digest), so import stores it where
	// signature and referrers lookups find it.
	Subject string `json:"subject,omitempty"`
}

// BundleBlob is one blob the tar holds.
type BundleBlob struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// digestRE is the only digest form a bundle uses.
var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// blobEntry is the tar entry name of a blob.
func blobEntry(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}

// bundleID is a bundle's identity: the sha256 of its manifest's bytes.
func bundleID(manifest []byte) string {
	s := sha256.Sum256(manifest)
	return "sha256:" + hex.EncodeToString(s[:])
}

// tarHeader is the header every bundle entry gets, so its size can be
// measured before writing.
func tarHeader(name string, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: mtime.UTC().Truncate(time.Second), Format: tar.FormatPAX}
}

// entrySize is how many bytes an entry takes in the tar: its header
// blocks and its data padded to 512.
func entrySize(h *tar.Header) (int64, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(h); err != nil {
		return 0, err
	}
	return int64(buf.Len()) + (h.Size+511)/512*512, nil
}

// Validate checks what import relies on: known format, well-formed
// digests, safe paths, every referenced blob described.
func (bm *BundleManifest) Validate() error {
	if bm.Format != BundleFormat {
		return fmt.Errorf("format %q is not %q: this bundle needs a newer airgapd", bm.Format, BundleFormat)
	}
	if bm.Base != "" && !digestRE.MatchString(bm.Base) {
		return fmt.Errorf("base %q is not a sha256 digest", bm.Base)
	}
	for _, b := range bm.Blobs {
		if !digestRE.MatchString(b.Digest) || b.Size < 0 {
			return fmt.Errorf("blob %q is not a sha256 digest", b.Digest)
		}
	}
	checkFile := func(what string, f BundleFile) error {
		if !digestRE.MatchString(f.Digest) {
			return fmt.Errorf("%s %s: %q is not a sha256 digest", what, f.Path, f.Digest)
		}
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) || strings.Contains(f.Path, "\\") {
			return fmt.Errorf("%s: path %q leaves its folder", what, f.Path)
		}
		return nil
	}
	for _, r := range bm.Repos {
		if !mirror.ValidName(r.Name) {
			return fmt.Errorf("%q is not a usable repo name", r.Name)
		}
		for _, f := range r.Files {
			if err := checkFile("repo "+r.Name, f); err != nil {
				return err
			}
		}
	}
	for _, f := range bm.Files {
		if err := checkFile("file", f); err != nil {
			return err
		}
	}
	for _, im := range bm.Images {
		if !digestRE.MatchString(im.Digest) {
			return fmt.Errorf("image %s: %q is not a sha256 digest", im.Name, im.Digest)
		}
		for _, b := range im.Blobs {
			if !digestRE.MatchString(b) {
				return fmt.Errorf("image %s: blob %q is not a sha256 digest", im.Name, b)
			}
		}
		if im.Subject != "" && !digestRE.MatchString(im.Subject) {
			return fmt.Errorf("image %s: subject %q is not a sha256 digest", im.Name, im.Subject)
		}
		if _, d, ok := strings.Cut(im.Name, "@"); ok && d != im.Digest {
			return fmt.Errorf("image %s: its name pins %s but its digest is %s", im.Name, d, im.Digest)
		}
	}
	if bm.Split != nil && (bm.Split.PartSize <= 0 || bm.Split.Parts < 1 || bm.Split.Size <= 0 ||
		int64(bm.Split.Parts) != (bm.Split.Size+bm.Split.PartSize-1)/bm.Split.PartSize) {
		return fmt.Errorf("split %+v does not add up", *bm.Split)
	}
	return nil
}

// partName is the file name of part n (1-based) of a bundle written to out.
func partName(out string, n int) string { return fmt.Sprintf("%s.part%03d", out, n) }

// partRE recognises a part's file name.
var partRE = regexp.MustCompile(`^(.*)\.part([0-9]{3,})$`)

// ParseSize reads a --split-size: bytes, or a number with K, M, G, T
// (powers of 1024) or KB, MB, GB, TB (powers of 1000), e.g. 4G or 4.7GB.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := float64(1)
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSuffix(t, u.suffix), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("%q is not a size: write bytes or a number with K, M, G (e.g. 4G, 700M, 4.7GB)", s)
	}
	n := int64(f * mult)
	if n < 4096 {
		return 0, fmt.Errorf("%q is too small: a part holds at least 4 KiB", s)
	}
	return n, nil
}

// readManifestFrom reads the manifest entry at the start of a bundle
// stream and returns its bytes.
func readManifestFrom(r io.Reader) ([]byte, error) {
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("not an airgapd bundle (not a tar): %w", err)
	}
	if h.Name != bundleManifestName {
		return nil, fmt.Errorf("not an airgapd bundle: its first entry is %q, not %s", h.Name, bundleManifestName)
	}
	if h.Size > maxBundleManifest {
		return nil, fmt.Errorf("%s is %d bytes: too big to be a manifest", bundleManifestName, h.Size)
	}
	return io.ReadAll(tr)
}

// parseManifest decodes and validates a manifest.
func parseManifest(b []byte) (*BundleManifest, error) {
	var bm BundleManifest
	if err := json.Unmarshal(b, &bm); err != nil {
		return nil, fmt.Errorf("%s: %w", bundleManifestName, err)
	}
	if err := bm.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", bundleManifestName, err)
	}
	return &bm, nil
}

// ReadBundleManifest reads a manifest from a file that is either a
// manifest (the OUT.manifest.json create writes beside a bundle) or a
// bundle (its first part); it returns the manifest and its id.
func ReadBundleManifest(path string) (*BundleManifest, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var b []byte
	if head, _ := br.Peek(1); len(head) == 1 && head[0] == '{' {
		b, err = io.ReadAll(io.LimitReader(br, maxBundleManifest))
	} else {
		b, err = readStreamManifest(br)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	bm, err := parseManifest(b)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return bm, bundleID(b), nil
}

// bundleParts is a bundle on disk: one file, or its parts in order.
type bundleParts struct {
	files []string
	sizes []int64
	// compressed: the parts hold a zstd stream of the tar. Offsets into
	// the tar then say nothing about parts; rawRead counts the compressed
	// bytes open's reader has consumed, so partOf names the part being
	// read when a problem shows (the decoder reads a little ahead).
	compressed bool
	rawRead    *int64
}

// findBundle resolves what the user named — a bundle file, its first part
// (or any part), the name given to --out, or a folder holding one bundle —
// into its manifest and parts. Missing or short parts are named.
func findBundle(path string) (*BundleManifest, []byte, bundleParts, error) {
	parts := bundleParts{rawRead: new(int64)}
	first := path
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		entries, err := os.ReadDir(path)
		if err != nil {
			return nil, nil, parts, err
		}
		var cands []string
		for _, e := range entries {
			n := e.Name()
			if m := partRE.FindStringSubmatch(n); m != nil {
				if n2, _ := strconv.Atoi(m[2]); n2 == 1 {
					cands = append(cands, filepath.Join(path, n))
				}
				continue
			}
			if !e.IsDir() && !strings.HasSuffix(n, ".manifest.json") && !strings.HasSuffix(n, ".tmp") {
				if _, _, err := ReadBundleManifest(filepath.Join(path, n)); err == nil {
					cands = append(cands, filepath.Join(path, n))
				}
			}
		}
		if len(cands) != 1 {
			return nil, nil, parts, fmt.Errorf("%s holds %d bundles (%s): name the one to use", path, len(cands), strings.Join(cands, ", "))
		}
		first = cands[0]
	} else if err != nil {
		if _, perr := os.Stat(partName(path, 1)); perr == nil {
			first = partName(path, 1)
		} else {
			return nil, nil, parts, fmt.Errorf("%w (nor is there a %s)", err, filepath.Base(partName(path, 1)))
		}
	}
	stem := ""
	if m := partRE.FindStringSubmatch(first); m != nil {
		stem = m[1]
		first = partName(stem, 1)
	}
	f, err := os.Open(first)
	if err != nil {
		if stem != "" {
			return nil, nil, parts, fmt.Errorf("part 1 (%s) is missing: bring it from the media; nothing was published", first)
		}
		return nil, nil, parts, err
	}
	raw, err := readStreamManifest(f)
	f.Close()
	if err != nil {
		return nil, nil, parts, fmt.Errorf("%s: %w", first, err)
	}
	bm, err := parseManifest(raw)
	if err != nil {
		return nil, nil, parts, fmt.Errorf("%s: %w", first, err)
	}
	if bm.Split == nil {
		if stem != "" {
			return nil, nil, parts, fmt.Errorf("%s is named as a part but its manifest says the bundle is not split", first)
		}
		fi, err := os.Stat(first)
		if err != nil {
			return nil, nil, parts, err
		}
		parts.files, parts.sizes = []string{first}, []int64{fi.Size()}
		parts.compressed, err = isZstd(first)
		return bm, raw, parts, err
	}
	if stem == "" {
		return nil, nil, parts, fmt.Errorf("%s holds a split bundle's manifest but is not named NAME.part001", first)
	}
	var problems []string
	for i := 1; i <= bm.Split.Parts; i++ {
		p := partName(stem, i)
		want := bm.Split.PartSize
		if i == bm.Split.Parts {
			want = bm.Split.Size - int64(bm.Split.Parts-1)*bm.Split.PartSize
		}
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("part %d of %d (%s) is missing", i, bm.Split.Parts, filepath.Base(p)))
		case fi.Size() != want:
			problems = append(problems, fmt.Sprintf("part %d of %d (%s) is damaged: %d bytes, want %d", i, bm.Split.Parts, filepath.Base(p), fi.Size(), want))
		}
		parts.files, parts.sizes = append(parts.files, p), append(parts.sizes, want)
	}
	if len(problems) > 0 {
		return nil, nil, parts, fmt.Errorf("%s; copy the part(s) from the media next to %s and run again; nothing was published", strings.Join(problems, "; "), filepath.Base(first))
	}
	parts.compressed, err = isZstd(first)
	return bm, raw, parts, err
}

// partOf names the part holding byte offset off of the tar stream (of a
// compressed bundle: near where its reader is).
func (p bundleParts) partOf(off int64) string {
	if len(p.files) == 1 {
		return filepath.Base(p.files[0])
	}
	if p.compressed && p.rawRead != nil {
		off = *p.rawRead
	}
	for i, s := range p.sizes {
		if off < s {
			return fmt.Sprintf("part %d (%s)", i+1, filepath.Base(p.files[i]))
		}
		off -= s
	}
	return fmt.Sprintf("part %d (%s)", len(p.files), filepath.Base(p.files[len(p.files)-1]))
}

// open returns the whole tar stream: the parts concatenated, and
// decompressed when they hold zstd.
func (p bundleParts) open() (io.Reader, func(), error) {
	r, closeFiles, err := p.openRaw()
	if err != nil || !p.compressed {
		return r, closeFiles, err
	}
	dec, err := zstd.NewReader(&rawCounter{r: r, n: p.rawRead}, zstd.WithDecoderConcurrency(1))
	if err != nil {
		closeFiles()
		return nil, nil, err
	}
	return damagedZstd{dec}, func() { dec.Close(); closeFiles() }, nil
}

// damagedZstd says what a decoder's error means for the user: the
// compressed bytes are not what was written (zstd checks each frame).
type damagedZstd struct{ r io.Reader }

func (d damagedZstd) Read(b []byte) (int, error) {
	n, err := d.r.Read(b)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("the zstd-compressed stream is damaged (%w)", err)
	}
	return n, err
}

// rawCounter counts the compressed bytes read into n (when set).
type rawCounter struct {
	r io.Reader
	n *int64
}

func (c *rawCounter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	if c.n != nil {
		*c.n += int64(n)
	}
	return n, err
}

// openRaw returns the parts concatenated, as they are on disk.
func (p bundleParts) openRaw() (io.Reader, func(), error) {
	var rs []io.Reader
	var fs []*os.File
	closeAll := func() {
		for _, f := range fs {
			f.Close()
		}
	}
	for _, name := range p.files {
		f, err := os.Open(name)
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		fs = append(fs, f)
		rs = append(rs, f)
	}
	return io.MultiReader(rs...), closeAll, nil
}

// zstdMagic starts a zstd frame; a skippable frame starts with 0x50..0x5F
// then the same three bytes as skippableMagic.
var (
	zstdMagic      = []byte{0x28, 0xb5, 0x2f, 0xfd}
	skippableMagic = []byte{0x2a, 0x4d, 0x18}
)

// looksZstd tells a zstd stream from a tar by its first four bytes (a tar
// starts with an entry name, printable text).
func looksZstd(head []byte) bool {
	if len(head) < 4 {
		return false
	}
	return bytes.Equal(head[:4], zstdMagic) || (head[0]&0xf0 == 0x50 && bytes.Equal(head[1:4], skippableMagic))
}

// isZstd reports whether the file at p starts a zstd stream.
func isZstd(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	return looksZstd(head[:n]), nil
}

// readStreamManifest reads the manifest at the start of a bundle stream,
// plain tar or zstd-compressed tar.
func readStreamManifest(r io.Reader) ([]byte, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(4)
	if !looksZstd(head) {
		return readManifestFrom(br)
	}
	dec, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	b, err := readManifestFrom(dec)
	if err != nil {
		return nil, fmt.Errorf("zstd-compressed: %w", err)
	}
	return b, nil
}

// BundleInfo is what `bundle inspect` shows.
type BundleInfo struct {
	ID       string          `json:"id"`
	Parts    []string        `json:"parts"`
	Manifest *BundleManifest `json:"manifest"`
	// Compressed: the parts hold the tar zstd-compressed.
	Compressed bool `json:"compressed"`
	// Bytes is what the bundle carries per kind (repos, files, images);
	// a blob shared by several kinds counts for the first.
	Bytes map[string]int64 `json:"bytes"`
}

// InspectBundle reads a bundle's manifest and checks its parts are there.
// It reads no blob (import verifies them).
func InspectBundle(path string) (BundleInfo, error) {
	bm, raw, parts, err := findBundle(path)
	if err != nil {
		return BundleInfo{}, err
	}
	info := BundleInfo{ID: bundleID(raw), Parts: parts.files, Manifest: bm, Compressed: parts.compressed, Bytes: map[string]int64{}}
	carried := map[string]int64{}
	for _, b := range bm.Blobs {
		carried[b.Digest] = b.Size
	}
	count := func(kind, d string) {
		if n, ok := carried[d]; ok {
			info.Bytes[kind] += n
			delete(carried, d)
		}
	}
	for _, r := range bm.Repos {
		for _, f := range r.Files {
			count("repos", f.Digest)
		}
	}
	for _, f := range bm.Files {
		count("files", f.Digest)
	}
	for _, im := range bm.Images {
		for _, b := range im.Blobs {
			count("images", b)
		}
	}
	return info, nil
}

// ImageBlobChecker is an ImageStore that can tell which blobs it lacks.
// With one, an incremental bundle's image need not carry the blobs the
// registry holds already (the layers it shares with the base's images);
// without one, every blob of an image must be in the bundle.
type ImageBlobChecker interface {
	MissingBlobs(ctx context.Context, digests []string) ([]string, error)
}

// missingImageBlobs names, for the images an import stores, each blob the
// bundle does not carry and the store does not hold.
func missingImageBlobs(ctx context.Context, store ImageStore, images []BundleImage, carried map[string]bool) ([]string, error) {
	var ask []string
	asked := map[string]bool{}
	for _, im := range images {
		for _, b := range im.Blobs {
			if !carried[b] && !asked[b] {
				asked[b] = true
				ask = append(ask, b)
			}
		}
	}
	if len(ask) == 0 {
		return nil, nil
	}
	absent := ask
	if bc, ok := store.(ImageBlobChecker); ok {
		var err error
		if absent, err = bc.MissingBlobs(ctx, ask); err != nil {
			return nil, fmt.Errorf("ask the registry which blobs it holds: %w", err)
		}
	}
	isAbsent := map[string]bool{}
	for _, b := range absent {
		isAbsent[b] = true
	}
	var missing []string
	for _, im := range images {
		for _, b := range im.Blobs {
			if !carried[b] && isAbsent[b] {
				missing = append(missing, "image "+im.Name+": blob "+b)
			}
		}
	}
	return missing, nil
}
