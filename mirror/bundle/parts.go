package bundle

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

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
func findBundle(path string) (*Manifest, []byte, bundleParts, error) {
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
				if _, _, err := ReadManifest(filepath.Join(path, n)); err == nil {
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
