package e2e

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/klauspost/compress/zstd"

	"github.com/airgapd/airgapd/mirror/bundle"
)

// handMade is a bundle written item by item, as a person (or an attacker)
// could, with docs/BUNDLE.md at hand.
type handMade struct {
	bm    bundle.Manifest
	blobs map[string][]byte
	// oversize gives a blob's tar entry that many bytes of zeros.
	oversize map[string]int64
}

func newHandMade() *handMade {
	return &handMade{bm: bundle.Manifest{Format: bundle.Format, Blobs: []bundle.Blob{}}, blobs: map[string][]byte{}, oversize: map[string]int64{}}
}

func (h *handMade) blob(b []byte) string {
	s := sha256.Sum256(b)
	d := "sha256:" + hex.EncodeToString(s[:])
	if _, ok := h.blobs[d]; !ok {
		h.blobs[d] = b
		h.bm.Blobs = append(h.bm.Blobs, bundle.Blob{Digest: d, Size: int64(len(b))})
	}
	return d
}

func (h *handMade) file(p string, b []byte) string {
	d := h.blob(b)
	h.bm.Files = append(h.bm.Files, bundle.File{Path: p, Digest: d, Size: int64(len(b))})
	return d
}

func (h *handMade) repoFile(repo, p string, b []byte) {
	f := bundle.File{Path: p, Digest: h.blob(b), Size: int64(len(b))}
	for i := range h.bm.Repos {
		if h.bm.Repos[i].Name == repo {
			h.bm.Repos[i].Files = append(h.bm.Repos[i].Files, f)
			return
		}
	}
	h.bm.Repos = append(h.bm.Repos, bundle.Repo{Name: repo, Revision: "1", Files: []bundle.File{f}})
}

// randomImage adds a real one-layer image under name.
func (h *handMade) randomImage(t *testing.T, name string) {
	t.Helper()
	img, err := random.Image(2048, 1)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := img.RawManifest()
	cfg, _ := img.RawConfigFile()
	mt, _ := img.MediaType()
	im := bundle.Image{Name: name, Digest: h.blob(raw), MediaType: string(mt), Size: int64(len(raw))}
	im.Blobs = append(im.Blobs, im.Digest, h.blob(cfg))
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, _ := l.Compressed()
		b, _ := io.ReadAll(rc)
		rc.Close()
		im.Blobs = append(im.Blobs, h.blob(b))
	}
	h.bm.Images = append(h.bm.Images, im)
}

// write writes the bundle to path (zstd-compressed when asked).
func (h *handMade) write(t *testing.T, path string, compress bool) {
	t.Helper()
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	var w io.Writer = out
	var enc *zstd.Encoder
	if compress {
		enc, _ = zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedFastest))
		w = enc
	}
	tw := tar.NewWriter(w)
	raw, _ := json.Marshal(h.bm)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "airgapd-bundle.json", Size: int64(len(raw)), Mode: 0o644, Format: tar.FormatPAX})
	tw.Write(raw)
	zeros := make([]byte, 1<<20)
	for _, b := range h.bm.Blobs {
		name := "blobs/sha256/" + strings.TrimPrefix(b.Digest, "sha256:")
		if n, ok := h.oversize[b.Digest]; ok {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: n, Mode: 0o644, Format: tar.FormatPAX})
			for ; n > 0; n -= int64(len(zeros)) {
				tw.Write(zeros[:min(n, int64(len(zeros)))])
			}
			continue
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: b.Size, Mode: 0o644, Format: tar.FormatPAX})
		tw.Write(h.blobs[b.Digest])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if enc != nil {
		if err := enc.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// listTree lists every path under dir (links not followed).
func listTree(dir string) []string {
	var got []string
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil && p != dir {
			got = append(got, p)
		}
		return nil
	})
	return got
}

// TestBundleImportHardening (issue 19, items 6, 7, 8) imports hand-made
// bundles with `airgapd bundle import` into a target with a files folder
// and a real registry: a symlink in mirror.files leading out of it is
// refused and nothing is written outside; a blob far bigger than declared
// (200 MiB of zeros in a small zstd bundle) stops the import at once,
// named, with the staging bounded; a bad image name beside a good image
// publishes nothing (repo, files and registry untouched) and is named.
// Each of the three fails on main.
func TestBundleImportHardening(t *testing.T) {
	t.Run("symlink out of the files folder", func(t *testing.T) {
		tg := newTarget(t)
		outside := filepath.Join(tg.dir, "outside")
		os.MkdirAll(outside, 0o755)
		os.MkdirAll(tg.files, 0o755)
		if err := os.Symlink(outside, filepath.Join(tg.files, "k8s")); err != nil {
			t.Fatal(err)
		}
		h := newHandMade()
		h.file("k8s/kubeadm", []byte("#!/bin/sh\necho pwned\n"))
		h.file("k8s/sub/kubelet", []byte("deeper\n"))
		b := filepath.Join(tg.dir, "link.bundle")
		h.write(t, b, false)
		out, err := tg.importBundle(b)
		if got := listTree(outside); len(got) > 0 {
			t.Errorf("the import wrote outside the files folder: %v", got)
		}
		if err == nil || !strings.Contains(out, "k8s is a symlink to "+outside) {
			t.Errorf("import: %v\n%s\nwant it refused, naming the link", err, out)
		}
	})

	t.Run("blob bigger than declared", func(t *testing.T) {
		tg := newTarget(t)
		h := newHandMade()
		d := h.file("tiny", []byte("hello\n"))
		h.oversize[d] = 200 << 20
		b := filepath.Join(tg.dir, "big.bundle.zst")
		h.write(t, b, true)
		if fi, _ := os.Stat(b); fi.Size() > 4<<20 {
			t.Fatalf("the bundle is %d bytes; want a small one", fi.Size())
		}
		staging := filepath.Join(tg.dir, "data", "bundle", "staging")
		stop := make(chan struct{})
		peak := make(chan int64)
		go func() { // the staging's high-water mark while the import runs
			var most int64
			for {
				var n int64
				for _, p := range listTree(staging) {
					if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
						n += fi.Size()
					}
				}
				most = max(most, n)
				select {
				case <-stop:
					peak <- most
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		out, err := tg.importBundle(b)
		close(stop)
		if most := <-peak; most > 16<<20 {
			t.Errorf("the staging grew to %d bytes", most)
		}
		if err == nil || !strings.Contains(out, "file tiny") || !strings.Contains(out, "6 bytes") {
			t.Errorf("import: %v\n%s\nwant it refused, naming file tiny and its 6 bytes", err, out)
		}
		if got := tg.published(); len(got) > 0 {
			t.Errorf("published: %v", got)
		}
	})

	t.Run("bad image name", func(t *testing.T) {
		tg := newTarget(t)
		h := newHandMade()
		h.repoFile("up", "repodata/repomd.xml", []byte("<repomd/>\n"))
		h.file("a.txt", []byte("hello\n"))
		h.randomImage(t, "registry.k8s.io/pause:3.10")
		h.randomImage(t, "registry.k8s.io/Coredns:v1.11")
		b := filepath.Join(tg.dir, "names.bundle")
		h.write(t, b, false)
		for range 2 { // and again: still refused, still nothing published
			out, err := tg.importBundle(b)
			if err == nil || !strings.Contains(out, `image "registry.k8s.io/Coredns:v1.11"`) {
				t.Errorf("import: %v\n%s\nwant it refused, naming the bad image", err, out)
			}
			if got := tg.published(); len(got) > 0 {
				t.Errorf("published: %v", got)
			}
		}
	})
}
