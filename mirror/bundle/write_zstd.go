package bundle

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/klauspost/compress/zstd"

	"github.com/airgapd/airgapd/internal/atomicfile"
)

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
func writeZstdBundle(ctx context.Context, opts CreateOptions, bm *Manifest, srcs map[string]blobSource) ([]byte, int64, []string, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, 0, nil, err
	}
	defer enc.Close()
	manifestFrame := func() ([]byte, []byte, error) { return zstdManifestFrame(enc, bm) }
	if opts.SplitSize > 0 {
		bm.Split = &Split{PartSize: opts.SplitSize, Parts: 1 << 30, Size: 1 << 62} // as long as the numbers get
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
		bm.Split = &Split{PartSize: opts.SplitSize, Parts: int((total + opts.SplitSize - 1) / opts.SplitSize), Size: total}
	}
	raw, frame, err := manifestFrame()
	if err != nil {
		return nil, 0, nil, err
	}
	if err := writeZstdHead(pw.names[0]+".tmp", frame, room); err != nil {
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

// zstdManifestFrame renders the manifest and its tar entry as one zstd
// frame.
func zstdManifestFrame(enc *zstd.Encoder, bm *Manifest) (raw, frame []byte, err error) {
	raw, err = json.MarshalIndent(bm, "", "  ")
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

// writeZstdHead writes the manifest frame at the start of the first part,
// padded to room with a skippable frame, and syncs the part.
func writeZstdHead(part string, frame []byte, room int64) error {
	pad := room - int64(len(frame)) - 8 // a skippable frame's magic and length
	if pad < 0 {
		return fmt.Errorf("the compressed manifest grew past its room (%d > %d bytes): this is a bug in airgapd", len(frame), room)
	}
	head := make([]byte, room)
	copy(head, frame)
	binary.LittleEndian.PutUint32(head[len(frame):], 0x184D2A50)
	binary.LittleEndian.PutUint32(head[len(frame)+4:], uint32(pad))
	f, err := os.OpenFile(part, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(head, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
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
