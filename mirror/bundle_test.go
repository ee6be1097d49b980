package mirror

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
	bm := BundleManifest{Format: BundleFormat, Blobs: []BundleBlob{}}
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
		bm.Files = append(bm.Files, BundleFile{Path: p, Digest: d, Size: int64(len(b))})
		bm.Blobs = append(bm.Blobs, BundleBlob{Digest: d, Size: int64(len(b))})
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
	cfg := DefaultConfig()
	cfg.Files = files
	m, err := New(cfg, Deps{DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	content := map[string][]byte{"a.txt": []byte("hello\n"), "k8s/kubeadm": bytes.Repeat([]byte{7}, 10000)}

	bad := filepath.Join(dir, "bad.bundle")
	handBundle(t, bad, content, true)
	_, err = m.ImportBundle(context.Background(), bad, ImportOptions{})
	if err == nil || !strings.Contains(err.Error(), "file k8s/kubeadm") || !strings.Contains(err.Error(), "nothing was published") {
		t.Errorf("damaged bundle: %v", err)
	}
	if es, _ := os.ReadDir(files); len(es) > 0 {
		t.Errorf("a damaged bundle published %d entries", len(es))
	}

	good := filepath.Join(dir, "good.bundle")
	handBundle(t, good, content, false)
	res, err := m.ImportBundle(context.Background(), good, ImportOptions{})
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
	m, err := New(DefaultConfig(), Deps{DataDir: filepath.Join(dir, "data")})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "b.tar")
	res, err := m.CreateBundle(context.Background(), CreateOptions{Files: []string{src}, Out: out, SplitSize: 5000})
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
	info, err := InspectBundle(filepath.Join(dir, "out"))
	if err != nil || info.ID != res.ID || info.Bytes["files"] != 1+511+512+513+20000 {
		t.Errorf("inspect: %+v, %v", info, err)
	}
}
