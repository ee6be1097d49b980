package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A bundle carries repos, files and images across the air gap in one
// verified format (docs/BUNDLE.md): a tar whose first entry is the manifest
// (airgapd-bundle.json) and whose other entries are content-addressed
// blobs (blobs/sha256/HEX). The manifest lists every item — each repo's
// files, each file, each image with its digest — and the blobs each item
// is made of; the tar holds every blob once. A split bundle is the same
// tar cut into parts of part_size bytes (OUT.part001, OUT.part002, …):
// `cat OUT.part*` gives the whole tar back.

// Format is the manifest's format field; import refuses others.
const Format = "airgapd-bundle/v1"

// bundleManifestName is the tar's first entry.
const bundleManifestName = "airgapd-bundle.json"

// maxBundleManifest bounds the manifest an import reads.
const maxBundleManifest = 256 << 20

// Manifest is airgapd-bundle.json.
type Manifest struct {
	Format  string    `json:"format"`
	Created time.Time `json:"created"`
	// Base is the id (sha256:HEX of its manifest) of the bundle this one
	// was made --since: blobs that bundle carried are not carried again,
	// and import requires it to have been imported first.
	Base        string    `json:"base,omitempty"`
	BaseCreated time.Time `json:"base_created,omitzero"`
	// Split is set when the tar is cut into parts.
	Split  *Split  `json:"split,omitempty"`
	Repos  []Repo  `json:"repos,omitempty"`
	Files  []File  `json:"files,omitempty"`
	Images []Image `json:"images,omitempty"`
	// Blobs is what the tar holds after the manifest, in order.
	Blobs []Blob `json:"blobs"`
}

// Split says how the tar was cut: Parts parts of PartSize bytes (the
// last one shorter), Size bytes in all.
type Split struct {
	PartSize int64 `json:"part_size"`
	Parts    int   `json:"parts"`
	Size     int64 `json:"size"`
}

// Repo is one published tree: an RPM repo (Format empty), or a tree of
// a format beside it (apt, pypi, goproxy): every file of it.
type Repo struct {
	Format   string `json:"format,omitempty"`
	Name     string `json:"name"`
	Revision string `json:"revision,omitempty"`
	Files    []File `json:"files"`
}

// File is a file at Path (slash-separated, relative) with the
// sha256 of its content.
type File struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Image is an image or multi-arch index under its upstream-qualified
// name (registry.k8s.io/pause:3.10), with every blob it is made of (child
// manifests, configs, layers). InBase: the base bundle carried it with the
// same digest, so this bundle does not.
type Image struct {
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

// Blob is one blob the tar holds.
type Blob struct {
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
func parseManifest(b []byte) (*Manifest, error) {
	var bm Manifest
	if err := json.Unmarshal(b, &bm); err != nil {
		return nil, fmt.Errorf("%s: %w", bundleManifestName, err)
	}
	if err := bm.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", bundleManifestName, err)
	}
	return &bm, nil
}

// ReadManifest reads a manifest from a file that is either a
// manifest (the OUT.manifest.json create writes beside a bundle) or a
// bundle (its first part); it returns the manifest and its id.
func ReadManifest(path string) (*Manifest, string, error) {
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
