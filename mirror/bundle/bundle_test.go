package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/airgapd/airgapd/mirror/rpm"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "4G", want: 4 << 30},
		{in: "700M", want: 700 << 20},
		{in: "64k", want: 64 << 10},
		{in: "4.7GB", want: 4_700_000_000},
		{in: "8192", want: 8192},
		{in: "100", bad: true},
		{in: "lots", bad: true},
		{in: "-1G", bad: true},
	} {
		got, err := ParseSize(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseSize(%q) = %d, %v; want %d (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

// handBundle writes a bundle as docs/BUNDLE.md tells a person to: a pax
// tar with the manifest first and one entry per blob.
func handBundle(t *testing.T, path string, files map[string][]byte, damage bool) {
	t.Helper()
	bm := Manifest{Format: Format, Blobs: []Blob{}}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	blobs := map[string][]byte{}
	// In a fixed order, so the damaged and the good bundle have one
	// manifest, hence one ID: the good import then resumes the damaged
	// one's staging and clears it.
	for _, p := range slices.Sorted(maps.Keys(files)) {
		b := files[p]
		s := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(s[:])
		bm.Files = append(bm.Files, File{Path: p, Digest: d, Size: int64(len(b))})
		bm.Blobs = append(bm.Blobs, Blob{Digest: d, Size: int64(len(b))})
		blobs[d] = b
	}
	raw, _ := json.Marshal(bm)
	tw.WriteHeader(&tar.Header{Name: "airgapd-bundle.json", Size: int64(len(raw)), Mode: 0o644, Format: tar.FormatPAX})
	tw.Write(raw)
	for _, b := range bm.Blobs {
		data := bytes.Clone(blobs[b.Digest])
		if damage {
			data[0] ^= 1
		}
		tw.WriteHeader(&tar.Header{Name: "blobs/sha256/" + strings.TrimPrefix(b.Digest, "sha256:"), Size: b.Size, Mode: 0o644, Format: tar.FormatPAX})
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestBundleWrittenByHand(t *testing.T) {
	dir := t.TempDir()
	files := filepath.Join(dir, "files")
	cfg := rpm.DefaultConfig()
	cfg.Files = files
	m, err := newCarrier(cfg, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	content := map[string][]byte{"a.txt": []byte("hello\n"), "k8s/kubeadm": bytes.Repeat([]byte{7}, 10000)}

	bad := filepath.Join(dir, "bad.bundle")
	handBundle(t, bad, content, true)
	_, err = m.Import(context.Background(), bad, ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "file k8s/kubeadm") || !strings.Contains(err.Error(), "nothing was published") {
		t.Errorf("damaged bundle: %v", err)
	}
	if es, _ := os.ReadDir(files); len(es) > 0 {
		t.Errorf("a damaged bundle published %d entries", len(es))
	}

	good := filepath.Join(dir, "good.bundle")
	handBundle(t, good, content, false)
	res, err := m.Import(context.Background(), good, ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Files != 2 || res.Verified != 2 {
		t.Errorf("import: %+v", res)
	}
	for p, want := range content {
		if got, err := os.ReadFile(filepath.Join(files, p)); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %v, %q", p, err, got)
		}
	}
	if es, _ := os.ReadDir(filepath.Join(dir, "data", "bundle", "staging")); len(es) != 0 {
		t.Errorf("staging left behind: %d entries", len(es))
	}
}

// TestBundleSizeAsPlanned: create writes exactly the size its manifest
// states, into parts of exactly part_size, which read back as one tar.
func TestBundleSizeAsPlanned(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	for i, n := range []int{0, 1, 511, 512, 513, 20000} {
		os.WriteFile(filepath.Join(src, "sub", string(rune('a'+i))), bytes.Repeat([]byte{byte(i)}, n), 0o644)
	}
	m, err := newCarrier(rpm.DefaultConfig(), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "b.tar")
	res, err := m.Create(context.Background(), CreateOptions{Files: []string{src}, Out: out, SplitSize: 5000})
	if err != nil {
		t.Fatal(err)
	}
	var whole []byte
	for i, p := range res.Parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if i < len(res.Parts)-1 && len(b) != 5000 {
			t.Errorf("%s is %d bytes; want 5000", p, len(b))
		}
		whole = append(whole, b...)
	}
	if int64(len(whole)) != res.Size {
		t.Errorf("parts hold %d bytes; the manifest says %d", len(whole), res.Size)
	}
	tr := tar.NewReader(bytes.NewReader(whole))
	n := 0
	for {
		if _, err := tr.Next(); err != nil {
			break
		}
		n++
	}
	if n != 1+res.Blobs {
		t.Errorf("the joined parts hold %d entries; want the manifest and %d blobs", n, res.Blobs)
	}
	info, err := Inspect(filepath.Join(dir, "out"))
	if err != nil || info.ID != res.ID || info.Bytes["files"] != 1+511+512+513+20000 {
		t.Errorf("inspect: %+v, %v", info, err)
	}
}

// TestBundleZstd: --compress zstd writes a zstd stream (whole or in parts)
// that decodes to the same tar a plain bundle is, and that inspect and
// import read; so does a bundle compressed by hand (tar, then zstd).
func TestBundleZstd(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	rnd := rand.New(rand.NewPCG(1, 2))
	content := map[string][]byte{}
	for i, n := range []int{0, 700, 30000, 90000} {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rnd.IntN(256))
		}
		p := string(rune('a' + i))
		content[p] = b
		os.WriteFile(filepath.Join(src, p), b, 0o644)
	}
	creator, err := newCarrier(rpm.DefaultConfig(), filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	handPlain := filepath.Join(dir, "hand.tar")
	handBundle(t, handPlain, content, false)
	for _, tc := range []struct {
		name      string
		splitSize int64
		byHand    bool
		wantParts int
		// damage flips a byte in the middle of the last part: import
		// names the part and publishes nothing. (It cannot always name the
		// item: the decoder checks a frame's checksum as it reads ahead.)
		damage bool
	}{
		{name: "whole", wantParts: 1},
		{name: "split", splitSize: 40000, wantParts: 4},
		{name: "split but small enough", splitSize: 1 << 20, wantParts: 1},
		{name: "by hand", byHand: true, wantParts: 1},
		{name: "damaged", splitSize: 40000, wantParts: 4, damage: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"), "b.tar.zst")
			var parts []string
			var size int64
			if tc.byHand {
				os.MkdirAll(filepath.Dir(out), 0o755)
				enc, _ := zstd.NewWriter(nil)
				if err := os.WriteFile(out, enc.EncodeAll(mustReadFile(t, handPlain), nil), 0o644); err != nil {
					t.Fatal(err)
				}
				parts = []string{out}
			} else {
				res, err := creator.Create(context.Background(), CreateOptions{Files: []string{src}, Out: out, SplitSize: tc.splitSize, Compress: "zstd"})
				if err != nil {
					t.Fatal(err)
				}
				parts, size = res.Parts, res.Size
			}
			if len(parts) != tc.wantParts {
				t.Fatalf("%d parts (%v); want %d", len(parts), parts, tc.wantParts)
			}
			var whole []byte
			for i, p := range parts {
				b := mustReadFile(t, p)
				if tc.splitSize > 0 && i < len(parts)-1 && int64(len(b)) != tc.splitSize {
					t.Errorf("%s is %d bytes; want %d", p, len(b), tc.splitSize)
				}
				whole = append(whole, b...)
			}
			if !tc.byHand && int64(len(whole)) != size {
				t.Errorf("parts hold %d bytes; create said %d", len(whole), size)
			}
			if !bytes.HasPrefix(whole, zstdMagic) {
				t.Errorf("the bundle starts % x; want zstd's magic", whole[:4])
			}
			dec, err := zstd.NewReader(bytes.NewReader(whole))
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			tr := tar.NewReader(dec)
			var names []string
			for {
				h, err := tr.Next()
				if err != nil {
					if err != io.EOF {
						t.Fatalf("the decompressed tar: %v", err)
					}
					break
				}
				names = append(names, h.Name)
			}
			if len(names) != 1+len(content) || names[0] != bundleManifestName {
				t.Errorf("the decompressed tar holds %v; want the manifest and %d blobs", names, len(content))
			}
			info, err := Inspect(parts[0])
			if err != nil || len(info.Parts) != tc.wantParts || len(info.Manifest.Files) != len(content) {
				t.Fatalf("inspect: %+v, %v", info, err)
			}
			if tc.wantParts > 1 && (info.Manifest.Split == nil || info.Manifest.Split.Size != int64(len(whole))) {
				t.Errorf("the manifest's split %+v does not state the compressed size %d", info.Manifest.Split, len(whole))
			}
			cfg := rpm.DefaultConfig()
			cfg.Files = filepath.Join(filepath.Dir(out), "files")
			m, err := newCarrier(cfg, filepath.Join(filepath.Dir(out), "data"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.damage {
				last := parts[len(parts)-1]
				b := mustReadFile(t, last)
				b[len(b)/2] ^= 1
				os.WriteFile(last, b, 0o644)
				_, err := m.Import(context.Background(), parts[0], ImportOptions{})
				if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), filepath.Base(last)) || !strings.Contains(err.Error(), "nothing was published") {
					t.Errorf("import of a damaged zstd bundle: %v; want it to say damaged, name %s and that nothing was published", err, filepath.Base(last))
				}
				if es, _ := os.ReadDir(cfg.Files); len(es) > 0 {
					t.Errorf("a damaged bundle published %d files", len(es))
				}
				return
			}
			if _, err := m.Import(context.Background(), parts[0], ImportOptions{}); err != nil {
				t.Fatalf("import: %v", err)
			}
			for p, want := range content {
				if got, err := os.ReadFile(filepath.Join(cfg.Files, p)); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s after import: %v, %d bytes; want %d", p, err, len(got), len(want))
				}
			}
		})
	}
}

func mustReadFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newCarrier is a Carrier over a mirror with cfg on dataDir.
func newCarrier(cfg rpm.Config, dataDir string) (*Carrier, error) {
	m, err := rpm.New(cfg, rpm.Deps{DataDir: dataDir})
	if err != nil {
		return nil, err
	}
	return New(m, Deps{DataDir: dataDir}), nil
}
