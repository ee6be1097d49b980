package bundle

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// layoutManifest renders the manifest and works out the tar's size, and
// with a split size the number of parts (which the manifest states, so
// this settles on a fixed point: the count changes the manifest's length
// by a few bytes at most).
func layoutManifest(bm *Manifest, splitSize int64) ([]byte, int64, error) {
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
		want := &Split{PartSize: splitSize, Parts: int((total + splitSize - 1) / splitSize), Size: total}
		if bm.Split != nil && *bm.Split == *want {
			return raw, total, nil
		}
		bm.Split = want
	}
	return nil, 0, errors.New("the bundle's size does not settle: try another --split-size")
}

// writeBundle writes the tar (into parts when split) under temporary
// names, then renames them into place.
func writeBundle(ctx context.Context, opts CreateOptions, bm *Manifest, raw []byte, total int64, srcs map[string]blobSource) ([]string, error) {
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
func writeBlobEntries(ctx context.Context, tw *tar.Writer, bm *Manifest, srcs map[string]blobSource, progress func(done int64, blobs int)) error {
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
