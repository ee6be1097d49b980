package bundle

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/airgapd/airgapd/mirror"
)

// verifyBundle reads the whole stream, writing each blob not staged yet
// into staging (through the root at data_dir/bundle, stagedRel naming it)
// under its digest once its checksum matched. A blob whose bytes do not
// match is named with the items made of it and the part it sits in;
// nothing is published then. A blob is never read past the size its
// manifest declares: one whose entry is bigger stops the import at once.
func verifyBundle(ctx context.Context, bm *Manifest, parts bundleParts, staging *rootedDir, stagedRel func(string) string, track *tracker) (verified, reused int, err error) {
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
		if h.Typeflag != tar.TypeReg || h.Size != size {
			return verified, reused, fmt.Errorf("%s in %s: its tar entry holds %d bytes (type %q) but the manifest declares a regular file of %d bytes: the bundle is damaged or forged; nothing was published",
				describeBlob(bm, d), parts.partOf(dataAt), h.Size, h.Typeflag, size)
		}
		rel := filepath.FromSlash(stagedRel(d))
		if _, err := staging.root.Stat(rel); err == nil {
			reused++
			blobDone()
			continue // verified by an earlier, interrupted run
		}
		tmp := rel + ".tmp"
		f, err := staging.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
		if err != nil {
			return verified, reused, staging.explain(stagedRel(d)+".tmp", err)
		}
		hs := sha256.New()
		// One byte past the declared size is enough to know it is too big.
		n, err := io.Copy(io.MultiWriter(f, hs), io.LimitReader(tr, size+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && n > size {
			err = fmt.Errorf("more than the %d bytes its manifest declares: the bundle is damaged or forged", size)
		}
		if err != nil && ctx.Err() != nil {
			staging.root.Remove(tmp)
			return verified, reused, stopped(ctx)
		}
		if err != nil {
			staging.root.Remove(tmp)
			return verified, reused, fmt.Errorf("read %s (%s): %w; nothing was published", describeBlob(bm, d), parts.partOf(dataAt), err)
		}
		got := "sha256:" + hex.EncodeToString(hs.Sum(nil))
		if got != d || n != size {
			staging.root.Remove(tmp)
			bad = append(bad, fmt.Sprintf("%s in %s: checksum mismatch (got %s, %d bytes; want %s, %d bytes)", describeBlob(bm, d), parts.partOf(dataAt), got, n, d, size))
			continue
		}
		if err := staging.root.Rename(tmp, rel); err != nil {
			return verified, reused, staging.explain(stagedRel(d), err)
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
func describeBlob(bm *Manifest, d string) string {
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
